package mail

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// Backlog returns the messages waiting in the outbox (queued, or being
// sent) by kind, and how long the message due longest has waited (0 when
// none is due). A kind with nothing waiting is absent from the map.
func Backlog(ctx context.Context, q store.Querier, now time.Time) (map[string]int64, time.Duration, error) {
	byKind, err := store.CountBy(ctx, q, `SELECT kind, count(*) FROM outbox WHERE status IN ('queued', 'sending') GROUP BY kind`)
	if err != nil {
		return nil, 0, fmt.Errorf("mail: read backlog: %w", err)
	}
	var oldest sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT min(run_at) FROM outbox WHERE status = 'queued' AND run_at <= $1`,
		store.Micros(now)).Scan(&oldest); err != nil {
		return nil, 0, fmt.Errorf("mail: read backlog: %w", err)
	}
	return byKind, store.Age(now, oldest), nil
}
