package webhook

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/store"
)

// Worker defaults.
const (
	DefaultLease       = time.Minute
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 32
	DefaultPerEndpoint = 8
)

// Worker makes deliveries from events and sends them. Several may run,
// in one process or in several sharing a database: a delivery is claimed
// with a lease in a write, and writes take turns (package store), so two
// workers never hold one delivery at once. One whose instance dies is
// taken over when the lease runs out, and sent again with the same id.
type Worker struct {
	*Service
	// Client sends the requests; nil means NewClient(Policy, Timeout).
	Client *http.Client
	// Lease is how long a claimed delivery stays this worker's.
	Lease time.Duration
	// Timeout bounds one attempt, connection to last byte read.
	Timeout time.Duration
	// Concurrency bounds the attempts under way in this worker, and
	// PerEndpoint those to one endpoint across all workers.
	Concurrency int
	PerEndpoint int
	// Poll is how often to look for work that other instances wrote or
	// that came due.
	Poll time.Duration

	id string
}

// NewWorker returns a worker for s with the defaults.
func NewWorker(s *Service) *Worker {
	b := make([]byte, 6)
	rand.Read(b)
	w := &Worker{Service: s, Lease: DefaultLease, Timeout: DefaultTimeout, Concurrency: DefaultConcurrency,
		PerEndpoint: DefaultPerEndpoint, Poll: time.Second, id: hex.EncodeToString(b)}
	w.Client = NewClient(s.Policy, w.Timeout)
	return w
}

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

// claim takes up to want due deliveries: pending, due, not held by a live
// lease, to an enabled endpoint with fewer than PerEndpoint attempts under
// way, and with no earlier delivery to the same endpoint about the same
// contact still pending.
func (w *Worker) claim(ctx context.Context, want int) ([]claimed, error) {
	var out []claimed
	err := w.DB.Write(ctx, func(tx *store.Tx) error {
		out = out[:0]
		now := store.Micros(w.now())
		busy, err := store.CountBy(ctx, tx, `SELECT endpoint_id, count(*) FROM webhook_deliveries
			WHERE status = 'pending' AND locked_until >= $1 GROUP BY endpoint_id`, now)
		if err != nil {
			return fmt.Errorf("webhook: count attempts under way: %w", err)
		}
		rows, err := tx.Query(`SELECT d.id, d.endpoint_id, d.attempts, d.first_attempt_at, e.url, e.secret, e.previous_secret, e.previous_until,
				v.seq, v.type, v.version, COALESCE(v.contact_id, ''), v.occurred_at, v.data
			FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id JOIN events v ON v.seq = d.event_seq
			WHERE d.status = 'pending' AND d.next_at <= $1 AND d.locked_until < $1 AND e.enabled
			AND (d.contact_id = '' OR NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id
				AND p.contact_id = d.contact_id AND p.event_seq < d.event_seq AND p.status = 'pending'))
			ORDER BY d.next_at, d.id LIMIT $2`, now, want*4)
		if err != nil {
			return fmt.Errorf("webhook: claim: %w", err)
		}
		defer rows.Close()
		var ids []int64
		for rows.Next() {
			var c claimed
			var secret, previous, data string
			var until, at int64
			if err := rows.Scan(&c.id, &c.endpointID, &c.attempts, &c.first, &c.url, &secret, &previous, &until,
				&c.event.Seq, &c.event.Type, &c.event.Version, &c.event.ContactID, &at, &data); err != nil {
				return fmt.Errorf("webhook: claim: %w", err)
			}
			if len(out) == want || busy[c.endpointID] >= int64(w.PerEndpoint) {
				continue
			}
			busy[c.endpointID]++
			c.secrets = []string{secret}
			if previous != "" && until > now {
				c.secrets = append(c.secrets, previous)
			}
			c.event.OccurredAt, c.event.Data = store.FromMicros(at), json.RawMessage(data)
			out = append(out, c)
			ids = append(ids, c.id)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("webhook: claim: %w", err)
		}
		rows.Close()
		if len(ids) == 0 {
			return nil
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

// deliver attempts c and records the outcome. An attempt cut short
// because the worker is stopping is not counted: the delivery is let go,
// to be sent by whichever worker comes next.
func (w *Worker) deliver(ctx context.Context, c claimed) {
	at := w.now()
	r := w.attempt(ctx, c, at)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var err error
	if ctx.Err() != nil && !r.ok() {
		err = w.release(fctx, c.id)
	} else {
		err = w.finish(fctx, c, at, r)
	}
	if err != nil {
		w.log().Error("webhook: record an attempt", "delivery", c.id, "err", err)
	}
}

// release lets go of a claimed delivery without counting an attempt.
func (w *Worker) release(ctx context.Context, id int64) error {
	return w.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`UPDATE webhook_deliveries SET locked_by = '', locked_until = 0 WHERE id = $1 AND locked_by = $2`, id, w.id)
		return err
	})
}

// SendDue claims and sends every delivery due now, in turns, until none
// is left, and returns how many attempts it made. Run does the same as
// work comes; tests call it after moving the clock.
func (w *Worker) SendDue(ctx context.Context) (int, error) {
	total := 0
	for {
		cs, err := w.claim(ctx, w.Concurrency)
		if err != nil || len(cs) == 0 {
			return total, err
		}
		done := make(chan struct{}, len(cs))
		for _, c := range cs {
			go func() { w.deliver(ctx, c); done <- struct{}{} }()
		}
		for range cs {
			<-done
		}
		total += len(cs)
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// Run makes deliveries from events (at once when this process commits
// one, and every Poll for those of other instances) and sends them, up to
// Concurrency at a time, until ctx ends; then it waits for the attempts
// under way.
func (w *Worker) Run(ctx context.Context) {
	dispatcher := make(chan struct{})
	go func() {
		defer close(dispatcher)
		jobs.Loop(ctx, events.Wakes(w.DB), w.Poll, w.log(), "webhook: make deliveries", w.DispatchAll)
	}()
	wakes := w.DB.Wakes(wakeTopic)
	done := make(chan struct{}, w.Concurrency)
	poll := time.NewTimer(0)
	defer poll.Stop()
	inflight, look := 0, false
	for {
		if look && inflight < w.Concurrency {
			cs, err := w.claim(ctx, w.Concurrency-inflight)
			if err != nil && ctx.Err() == nil {
				w.log().Error("webhook: claim deliveries", "err", err)
			}
			for _, c := range cs {
				inflight++
				go func() { w.deliver(ctx, c); done <- struct{}{} }()
			}
			look = false
		}
		select {
		case <-ctx.Done():
			for ; inflight > 0; inflight-- {
				<-done
			}
			<-dispatcher
			return
		case <-done:
			inflight--
			for drained := false; !drained; { // one claim for every attempt that ended meanwhile
				select {
				case <-done:
					inflight--
				default:
					drained = true
				}
			}
		case <-wakes:
		case <-poll.C:
			poll.Reset(w.Poll)
		}
		look = true
	}
}
