package webhook

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// outcome is one attempt made, to be recorded.
type outcome struct {
	c  claimed
	at time.Time
	r  result
}

var (
	attemptTypes = []string{"bigint", "bigint", "bigint", "text", "bigint", "text"}
	outcomeTypes = []string{"bigint", "text", "bigint", "bigint", "bigint", "text", "bigint"}
)

// record writes the attempts of batch in one transaction, and moves each
// delivery on: delivered, tried again later, or failed once GiveUpAfter
// has passed since its first attempt. A delivery this worker no longer
// holds (its lease ran out and another took it) keeps its state; its
// attempt is still logged. Each endpoint's success or failure is noted,
// and a failure may turn the endpoint off (failed).
func (w *Worker) record(ctx context.Context, batch []outcome) error {
	return w.DB.Write(ctx, func(tx *store.Tx) error {
		now := w.now()
		attempts := make([][]any, 0, len(batch))
		moves := make([][]any, 0, len(batch))
		var succeeded []string
		type failure struct{ endpoint, why string }
		var failures []failure
		for _, o := range batch {
			attempts = append(attempts, []any{o.c.id, store.Micros(o.at), o.r.status, truncate(o.r.err), o.r.latency.Microseconds(), o.r.response})
			first := o.at
			if o.c.first.Valid {
				first = store.FromMicros(o.c.first.Int64)
			}
			status, next, finished := StatusDelivered, now, any(store.Micros(now))
			if o.r.ok() {
				if !slices.Contains(succeeded, o.c.endpointID) {
					succeeded = append(succeeded, o.c.endpointID)
				}
			} else {
				failures = append(failures, failure{o.c.endpointID, o.r.err})
				status = StatusFailed
				if t, again := nextTry(o.c.attempts+1, first, now, w.Backoff); again {
					status, next, finished = StatusPending, t, nil
				}
			}
			moves = append(moves, []any{o.c.id, status, store.Micros(first), store.Micros(next), o.r.status, truncate(o.r.err), finished})
		}
		if err := tx.InsertRows(store.Prefix("webhook: record attempts"), `INSERT INTO webhook_attempts
			(delivery_id, attempted_at, status_code, error, latency_us, response)`, attemptTypes, attempts); err != nil {
			return err
		}
		if err := tx.ExecRows(store.Prefix("webhook: record deliveries"), `WITH v(id, status, first_at, next_at, last_status, last_error, finished_at)
			AS (`+store.RowsHere+`)
			UPDATE webhook_deliveries SET status = v.status, attempts = webhook_deliveries.attempts + 1, first_attempt_at = v.first_at,
				next_at = v.next_at, last_status = v.last_status, last_error = v.last_error, finished_at = v.finished_at,
				locked_by = '', locked_until = 0
			FROM v WHERE webhook_deliveries.id = v.id AND webhook_deliveries.locked_by = '`+w.id+`' AND webhook_deliveries.status = 'pending'`,
			outcomeTypes, moves); err != nil {
			return err
		}
		for _, id := range succeeded {
			if err := w.succeeded(tx, id, now); err != nil {
				return err
			}
		}
		for _, f := range failures {
			if err := w.failed(tx, f.endpoint, now, f.why); err != nil {
				return fmt.Errorf("webhook: record a failure: %w", err)
			}
		}
		return nil
	})
}
