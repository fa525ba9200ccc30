package campaign

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/settings"
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
// in one statement (a few on SQLite). Only the events of recipients who
// may still be tracked are written (trackable): none of a contact erased
// or deleted since (the erasure, in the same writer, came first and must
// not be undone), who stopped processing, or who withdrew the tracking
// consent since the message went.
func (k *Tracker) write(ctx context.Context, evs []event) error {
	return k.DB.Write(ctx, func(tx *store.Tx) error {
		ok, err := trackable(tx, evs, store.Now(k.Now))
		if err != nil {
			return err
		}
		rows := make([][]any, 0, len(evs))
		for _, e := range evs {
			if ok[e.recipient] {
				rows = append(rows, []any{e.recipient, e.kind, int64(e.link), store.Micros(e.at)})
			}
		}
		if len(rows) == 0 {
			return nil
		}
		return tx.ExecRows(store.Prefix("campaign: record events"), `WITH v(rid, kind, link, at) AS (`+store.RowsHere+`)
			INSERT INTO campaign_events (campaign_no, recipient_id, contact_id, kind, link, at)
			SELECT r.campaign_no, r.id, r.contact_id, v.kind, v.link, v.at FROM v
			JOIN campaign_recipients r ON r.id = v.rid
			JOIN contacts c ON c.id = r.contact_id
			WHERE r.tracked AND c.erased_at IS NULL`, eventTypes, rows)
	})
}

// trackable returns, of the recipients of evs, those whose opens and
// clicks may still be recorded at now: marked tracked when their message
// went, not erased, not stopped, and, as the setting engagement_tracking
// says now, tracked for everyone or with the tracking consent in force.
func trackable(tx *store.Tx, evs []event, now time.Time) (map[int64]bool, error) {
	st, err := settings.InTx(tx)
	if err != nil {
		return nil, err
	}
	g := &gate{tracking: st.EngagementTracking, trackPur: strings.ToLower(st.TrackingPurpose), now: now}
	a := &sqlArgs{}
	tracked := g.tracked(a)
	ids := make([]int64, 0, len(evs))
	for _, e := range evs {
		ids = append(ids, e.recipient)
	}
	in, args := store.InList(tx.Dialect(), len(a.args)+1, ids)
	got, err := store.QueryAll(context.Background(), tx, func(row store.Scanner) (int64, error) {
		var id int64
		return id, row.Scan(&id)
	}, `SELECT r.id FROM campaign_recipients r JOIN contacts c ON c.id = r.contact_id
		WHERE r.id IN (`+in+`) AND r.tracked AND c.erased_at IS NULL AND c.processing_stopped_at IS NULL AND `+tracked, append(a.args, args...)...)
	if err != nil {
		return nil, fmt.Errorf("campaign: read tracked recipients: %w", err)
	}
	out := make(map[int64]bool, len(got))
	for _, id := range got {
		out[id] = true
	}
	return out, nil
}

// eventTypes are the columns of the events write passes.
var eventTypes = []string{"bigint", "text", "integer", "bigint"}
