package webhook

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
)

// Pruning: the delivery log keeps KeepFor, then housekeeping removes it.
const (
	KeepFor       = 30 * 24 * time.Hour
	PruneJob      = "webhook.prune"
	PruneInterval = time.Hour
	pruneBatch    = 5000
)

// Prune removes, a batch to a transaction so that other writes are never
// held up for long, the deliveries that finished (delivered or failed)
// before before, with their attempts, and then the events older than
// before that every consumer has read and no remaining delivery needs. It
// returns how many deliveries and events it removed.
func (s *Service) Prune(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for _, step := range []func(*store.Tx) (int64, error){
		func(tx *store.Tx) (int64, error) { return pruneDeliveries(tx, before) },
		func(tx *store.Tx) (int64, error) { return pruneEvents(tx, before) },
	} {
		for {
			var n int64
			err := s.DB.Write(ctx, func(tx *store.Tx) (err error) {
				n, err = step(tx)
				return err
			})
			total += int(n)
			if err != nil {
				return total, err
			}
			if n < pruneBatch {
				break
			}
		}
	}
	return total, nil
}

func pruneDeliveries(tx *store.Tx, before time.Time) (int64, error) {
	ids, err := store.QueryAll(context.Background(), tx, func(row store.Scanner) (int64, error) {
		var id int64
		return id, row.Scan(&id)
	}, `SELECT id FROM webhook_deliveries WHERE status IN ('delivered', 'failed') AND finished_at < $1 LIMIT $2`,
		store.Micros(before), pruneBatch)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	in, args := store.InList(tx.Dialect(), 1, ids)
	if _, err := tx.Exec(`DELETE FROM webhook_attempts WHERE delivery_id IN (`+in+`)`, args...); err != nil {
		return 0, fmt.Errorf("webhook: prune attempts: %w", err)
	}
	if _, err := tx.Exec(`DELETE FROM webhook_deliveries WHERE id IN (`+in+`)`, args...); err != nil {
		return 0, fmt.Errorf("webhook: prune deliveries: %w", err)
	}
	return int64(len(ids)), nil
}

// pruneEvents removes old events below the oldest one a delivery still
// refers to.
func pruneEvents(tx *store.Tx, before time.Time) (int64, error) {
	var held int64
	if err := tx.QueryRow(`SELECT COALESCE(MIN(event_seq), 0) FROM webhook_deliveries`).Scan(&held); err != nil {
		return 0, fmt.Errorf("webhook: oldest event held: %w", err)
	}
	return events.PurgeTx(tx, before, held, pruneBatch)
}
