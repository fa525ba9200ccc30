package campaign

import (
	"context"
	"log/slog"
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
	recipient int64
	kind      string
	link      int
	at        time.Time
}

// NewTracker returns a tracker that flushes every 200 ms or 1,000 events.
func NewTracker(db *store.DB, log *slog.Logger) *Tracker {
	return &Tracker{DB: db, Log: log, Now: time.Now, Every: 200 * time.Millisecond, Batch: 1000, in: make(chan event, 100_000)}
}

// Record keeps an open (link -1) or a click on link n of a recipient (its
// row's id, from a link whose signature was checked) for the next flush,
// which writes it only if the recipient is tracked. Nothing is read here,
// so an open costs the request no database round trip. When the buffer is
// full the event is dropped rather than the request held.
func (k *Tracker) Record(recipient int64, kind string, link int) {
	select {
	case k.in <- event{recipient: recipient, kind: kind, link: link, at: store.Now(k.Now)}:
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

// write inserts events, each with its recipient's campaign and contact,
// in one statement (a few on SQLite). Only tracked recipients' events are
// written, and none of a contact erased or deleted since: the erasure, in
// the same writer, came first and must not be undone.
func (k *Tracker) write(ctx context.Context, evs []event) error {
	rows := make([][]any, len(evs))
	for i, e := range evs {
		rows[i] = []any{e.recipient, e.kind, int64(e.link), store.Micros(e.at)}
	}
	return k.DB.Write(ctx, func(tx *store.Tx) error {
		return tx.ExecRows(store.Prefix("campaign: record events"), `WITH v(rid, kind, link, at) AS (`+store.RowsHere+`)
			INSERT INTO campaign_events (campaign_no, recipient_id, contact_id, kind, link, at)
			SELECT r.campaign_no, r.id, r.contact_id, v.kind, v.link, v.at FROM v
			JOIN campaign_recipients r ON r.id = v.rid
			JOIN contacts c ON c.id = r.contact_id
			WHERE r.tracked AND c.erased_at IS NULL`, eventTypes, rows)
	})
}

// eventTypes are the columns of the events write passes.
var eventTypes = []string{"bigint", "text", "integer", "bigint"}
