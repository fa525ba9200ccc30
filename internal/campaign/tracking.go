package campaign

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// Tracker records opens and clicks without making the request wait for
// the database writer, which consent changes share: events are kept in
// memory and written in batches, one multi-row INSERT per flush. An event
// still in memory when the process dies is lost; an open or a click is a
// statistic, not a record anything depends on.
type Tracker struct {
	DB  *store.DB
	Log *slog.Logger
	Now func() time.Time
	// Every is how long an event may wait; Batch how many make a flush.
	Every time.Duration
	Batch int

	in chan event
}

type event struct {
	t    *Target
	kind string
	link int
	at   time.Time
}

// NewTracker returns a tracker that flushes every 200 ms or 1,000 events.
func NewTracker(db *store.DB, log *slog.Logger) *Tracker {
	return &Tracker{DB: db, Log: log, Now: time.Now, Every: 200 * time.Millisecond, Batch: 1000, in: make(chan event, 100_000)}
}

// Record keeps an open (link -1) or a click on link n of recipient t for
// the next flush, when t is tracked; otherwise it does nothing. When the
// buffer is full the event is dropped rather than the request held.
func (k *Tracker) Record(t *Target, kind string, link int) {
	if !t.Tracked {
		return
	}
	select {
	case k.in <- event{t: t, kind: kind, link: link, at: store.Now(k.Now)}:
	default:
		k.Log.Warn("engagement event dropped: the buffer is full")
	}
}

// Run writes the buffered events until ctx ends, then writes what is
// left.
func (k *Tracker) Run(ctx context.Context) {
	tick := time.NewTicker(k.Every)
	defer tick.Stop()
	var buf []event
	flush := func(ctx context.Context) {
		if len(buf) == 0 {
			return
		}
		if err := k.write(ctx, buf); err != nil {
			k.Log.Error("record engagement events", "events", len(buf), "err", err)
		}
		buf = buf[:0]
	}
	for {
		select {
		case e := <-k.in:
			buf = append(buf, e)
			if len(buf) >= k.Batch {
				flush(ctx)
			}
		case <-tick.C:
			flush(ctx)
		case <-ctx.Done():
			for {
				select {
				case e := <-k.in:
					buf = append(buf, e)
					continue
				default:
				}
				break
			}
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			flush(fctx)
			cancel()
			return
		}
	}
}

// write inserts events in one statement. Events of a contact erased or
// deleted since they happened are not written: the erasure, in the same
// writer, came first and must not be undone.
func (k *Tracker) write(ctx context.Context, evs []event) error {
	return k.DB.Write(ctx, func(tx *store.Tx) error {
		live, err := liveContacts(tx, evs)
		if err != nil {
			return err
		}
		var sb strings.Builder
		args := make([]any, 0, len(evs)*6)
		for _, e := range evs {
			if !live[e.t.ContactID] {
				continue
			}
			if len(args) > 0 {
				sb.WriteString(", ")
			}
			n := len(args)
			fmt.Fprintf(&sb, "($%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6)
			args = append(args, e.t.CampaignNo, e.t.Recipient, e.t.ContactID, e.kind, e.link, store.Micros(e.at))
		}
		if len(args) == 0 {
			return nil
		}
		_, err = tx.Exec(`INSERT INTO campaign_events (campaign_no, recipient_id, contact_id, kind, link, at) VALUES `+sb.String(), args...)
		if err != nil {
			return fmt.Errorf("campaign: record events: %w", err)
		}
		return nil
	})
}

// liveContacts returns which of the events' contacts exist and are not
// erased.
func liveContacts(tx *store.Tx, evs []event) (map[string]bool, error) {
	seen := map[string]bool{}
	var ids []string
	for _, e := range evs {
		if !seen[e.t.ContactID] {
			seen[e.t.ContactID] = true
			ids = append(ids, e.t.ContactID)
		}
	}
	live := map[string]bool{}
	for start := 0; start < len(ids); start += 500 {
		part := ids[start:min(start+500, len(ids))]
		ph, args := store.In(1, part)
		rows, err := tx.Query(`SELECT id FROM contacts WHERE erased_at IS NULL AND id IN (`+ph+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("campaign: record events: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			live[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return live, nil
}
