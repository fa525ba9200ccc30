package webhook

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
)

// claimed is a delivery this worker holds, with what sending it needs.
type claimed struct {
	id         int64
	endpointID string
	url        string
	secrets    []string // the current secret, then the previous while it still signs
	attempts   int
	first      sql.NullInt64
	event      events.Event
}

// target is an enabled endpoint as a claim sees it.
type target struct {
	id, url, secret, previous string
	until                     int64
}

// claim takes up to want due deliveries: pending, due, not held by a live
// lease, to an enabled endpoint to which fewer than its held() deliveries
// are held, and with no earlier delivery to the same endpoint about the
// same contact still pending. Endpoints are taken one at a time, in a
// random order so that none starves the others, each with the room it has
// left; one that had nothing to take is passed over until its next
// delivery is recorded or the next poll (idle).
func (w *Worker) claim(ctx context.Context, want int) ([]claimed, error) {
	var out []claimed
	err := w.DB.Write(ctx, func(tx *store.Tx) error {
		out = out[:0]
		now := store.Micros(w.now())
		// Read row by row, so that the index on locked_until finds the
		// few held ones (a GROUP BY would walk the index by endpoint).
		held, err := store.QueryAll(ctx, tx, scanText, `SELECT endpoint_id FROM webhook_deliveries WHERE locked_until >= $1`, now)
		if err != nil {
			return fmt.Errorf("webhook: count deliveries held: %w", err)
		}
		busy := map[string]int{}
		for _, id := range held {
			busy[id]++
		}
		targets, err := store.QueryAll(ctx, tx, func(row store.Scanner) (target, error) {
			var t target
			return t, row.Scan(&t.id, &t.url, &t.secret, &t.previous, &t.until)
		}, `SELECT id, url, secret, previous_secret, previous_until FROM webhook_endpoints WHERE enabled`)
		if err != nil {
			return fmt.Errorf("webhook: claim: %w", err)
		}
		rand.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
		for _, t := range targets {
			ep := w.endpoint(t.id)
			room := min(ep.held(w)-busy[t.id], want-len(out))
			if room <= 0 || ep.idle() {
				continue
			}
			n := len(out)
			if out, err = claimFrom(tx, t, now, room, out); err != nil {
				return err
			}
			if len(out) == n {
				ep.setIdle(time.Now().Add(w.Poll))
			}
		}
		if len(out) == 0 {
			return nil
		}
		ids := make([]int64, len(out))
		for i, c := range out {
			ids[i] = c.id
		}
		in, args := store.InList(tx.Dialect(), 3, ids)
		if _, err := tx.Exec(`UPDATE webhook_deliveries SET locked_by = $1, locked_until = $2 WHERE id IN (`+in+`)`,
			append([]any{w.id, now + w.Lease.Microseconds()}, args...)...); err != nil {
			return fmt.Errorf("webhook: claim: %w", err)
		}
		return nil
	})
	return out, err
}

func scanText(row store.Scanner) (string, error) {
	var s string
	return s, row.Scan(&s)
}

// claimFrom appends to out up to room due deliveries to the endpoint t.
func claimFrom(tx *store.Tx, t target, now int64, room int, out []claimed) ([]claimed, error) {
	rows, err := tx.Query(`SELECT d.id, d.attempts, d.first_attempt_at,
			v.seq, v.type, v.version, COALESCE(v.contact_id, ''), v.occurred_at, v.data
		FROM webhook_deliveries d JOIN events v ON v.seq = d.event_seq
		WHERE d.endpoint_id = $1 AND d.status = 'pending' AND d.next_at <= $2 AND d.locked_until < $2
		AND (d.contact_id = '' OR NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id
			AND p.contact_id = d.contact_id AND p.status = 'pending' AND p.event_seq < d.event_seq))
		ORDER BY d.next_at, d.id LIMIT $3`, t.id, now, room)
	if err != nil {
		return out, fmt.Errorf("webhook: claim: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		c := claimed{endpointID: t.id, url: t.url, secrets: []string{t.secret}}
		if t.previous != "" && t.until > now {
			c.secrets = append(c.secrets, t.previous)
		}
		var at int64
		var data string
		if err := rows.Scan(&c.id, &c.attempts, &c.first, &c.event.Seq, &c.event.Type, &c.event.Version, &c.event.ContactID,
			&at, &data); err != nil {
			return out, fmt.Errorf("webhook: claim: %w", err)
		}
		c.event.OccurredAt, c.event.Data = store.FromMicros(at), json.RawMessage(data)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("webhook: claim: %w", err)
	}
	return out, nil
}
