package webhook

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
)

// wakeTopic is the store signal that deliveries are due.
const wakeTopic = "webhooks"

// dispatchBatch is how many events one Dispatch reads.
const dispatchBatch = 500

var deliveryTypes = []string{"text", "bigint", "text", "text", "text", "bigint", "bigint"}

// Dispatch reads the next events for the webhooks consumer and writes a
// delivery of each to every endpoint that wants its type and existed when
// it happened, in the transaction that moves the consumer's cursor: each
// event is dispatched exactly once, whichever instance reads it. An
// endpoint that is turned off gets its deliveries too: they wait, pending
// (claim takes only enabled endpoints'), and go in order once it is turned
// on again; none is skipped because the endpoint was off when its event
// was read. It returns how many events it read (0 when none was new).
//
// While no endpoint exists it moves the cursor past every event without
// reading one: an endpoint made later gets only what happens after it
// anyway, and a large import's millions of events would otherwise be
// read, a batch at a time in the writer's transaction, for nothing.
func (s *Service) Dispatch(ctx context.Context) (int, error) {
	var n, written int
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		written, n = 0, 0
		eps, err := store.QueryAll(ctx, tx, scanEndpoint, `SELECT `+endpointColumns+` FROM webhook_endpoints`)
		if err != nil {
			return fmt.Errorf("webhook: read endpoints: %w", err)
		}
		if len(eps) == 0 {
			return events.Skip(tx, Consumer)
		}
		evs, err := events.Next(tx, Consumer, dispatchBatch)
		n = len(evs)
		if err != nil || n == 0 {
			return err
		}
		now := store.Micros(s.now())
		var rows [][]any
		for _, e := range evs {
			for _, ep := range eps {
				if ep.Wants(e.Type) && !ep.CreatedAt.After(e.OccurredAt) {
					rows = append(rows, []any{ep.ID, e.Seq, e.Type, e.ContactID, StatusPending, now, now})
				}
			}
		}
		if len(rows) == 0 {
			return nil
		}
		tx.WakeAfterCommit(wakeTopic)
		written = len(rows)
		// A workflow rule may have queued the same event to an endpoint
		// already (QueueTx): it is delivered once.
		return tx.ExecRows(store.Prefix("webhook: write deliveries"), insertDeliveries, deliveryTypes, rows)
	})
	if err == nil && written > 0 {
		s.analyzeAfter(ctx, written)
	}
	return n, err
}

// analyzeAfter keeps PostgreSQL's statistics of the deliveries in step
// with a table that grows fast: once the deliveries this instance wrote
// since the last ANALYZE reach a fifth of the table as it was then (and at
// least analyzeEvery), at most once every analyzeGap, it analyses the
// table. Without it, a table that grew from nothing in seconds keeps the
// statistics of an empty one until autovacuum comes by (a minute or
// more), and the claims' plan for the per-contact order reads far too
// much: deliveries then waited 170 ms at the median instead of 20. A
// failure is logged: the statistics are a help, not a duty.
func (s *Service) analyzeAfter(ctx context.Context, written int) {
	if s.DB.Dialect != store.Postgres {
		return
	}
	a := &s.analyzed
	a.mu.Lock()
	a.written += int64(written)
	due := a.written >= max(analyzeEvery, a.base/5) && time.Since(a.at) >= analyzeGap
	if due {
		a.base += a.written
		a.written, a.at = 0, time.Now()
	}
	a.mu.Unlock()
	if !due {
		return
	}
	if _, err := s.DB.Read.ExecContext(ctx, `ANALYZE webhook_deliveries`); err != nil && ctx.Err() == nil {
		s.log().Warn("webhook: analyse the deliveries", "err", err)
	}
}

// analyzeEvery and analyzeGap bound how often analyzeAfter analyses.
const (
	analyzeEvery = 1000
	analyzeGap   = 2 * time.Second
)

const insertDeliveries = `INSERT INTO webhook_deliveries (endpoint_id, event_seq, event_type, contact_id, status, next_at, created_at) ` +
	store.RowsHere + ` ON CONFLICT (endpoint_id, event_seq) DO NOTHING`

// QueueTx queues a delivery of e to the endpoint endpointID inside tx, as a
// workflow rule's webhook action does: whatever event types the endpoint
// takes, it gets this one. An event already queued to it is delivered
// once. An endpoint that is turned off gets the delivery as Dispatch gives
// it every other: it waits, pending, and goes in its order once the
// endpoint is turned on again; note then says so (WaitingNote), for the
// run log, and is empty otherwise. It returns a not-found error (field
// "endpoint_id") for an endpoint that does not exist.
func QueueTx(tx *store.Tx, endpointID string, e events.Event, now time.Time) (note string, err error) {
	ep, err := getEndpoint(context.Background(), tx, endpointID)
	if err != nil {
		return "", errs.WithField(err, errs.Field("endpoint_id"))
	}
	at := store.Micros(now)
	tx.WakeAfterCommit(wakeTopic)
	if !ep.Enabled {
		note = WaitingNote
	}
	return note, tx.ExecRows(store.Prefix("webhook: queue delivery"), insertDeliveries, deliveryTypes,
		[][]any{{ep.ID, e.Seq, e.Type, e.ContactID, StatusPending, at, at}})
}

// WaitingNote is what QueueTx says of a delivery queued to an endpoint
// that is turned off.
const WaitingNote = "the endpoint is turned off: the call waits, pending, and is made once the endpoint is turned on again"

// DispatchAll runs Dispatch until no event is new, and returns how many
// events it read.
func (s *Service) DispatchAll(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.Dispatch(ctx)
		total += n
		if err != nil || n < dispatchBatch {
			return total, err
		}
	}
}
