package webhook

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// Backlog returns how many deliveries are pending (not yet delivered nor
// given up on), and how long the oldest of them has waited since it was
// made (0 when none is pending).
func Backlog(ctx context.Context, q store.Querier, now time.Time) (int64, time.Duration, error) {
	var n int64
	var oldest sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT count(*), min(created_at) FROM webhook_deliveries WHERE status = 'pending'`).
		Scan(&n, &oldest); err != nil {
		return 0, 0, fmt.Errorf("webhook: read backlog: %w", err)
	}
	return n, store.Age(now, oldest), nil
}
