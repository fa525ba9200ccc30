package requests_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// BenchmarkRequestsPage reads what the Requests page shows, the open
// requests (up to 500) and the latest 50 closed ones, among 100,000 closed
// and 1,000 open requests, on both databases:
//
//	go test ./internal/requests/ -run '^$' -bench RequestsPage
func BenchmarkRequestsPage(b *testing.B) {
	storetest.Each(b, func(tb testing.TB, db *store.DB) {
		b := tb.(*testing.B)
		ctx := context.Background()
		series, from := storetest.Series(db)
		now := time.Now()
		day := int64(24 * time.Hour / time.Microsecond)
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(series+`INSERT INTO subject_requests (id, kind, channel, contact_id, contact_ref, status, received_at, due_at,
				actor_kind, updated_at, closed_at)
				SELECT 'q' || i, 'access', 'api', 'c' || i, 'r' || i, CASE WHEN i % 101 = 0 THEN 'verified' ELSE 'done' END,
				CAST($2 AS BIGINT) - CAST(i AS BIGINT) * 60000000, CAST($2 AS BIGINT) - CAST(i AS BIGINT) * 60000000 + 30 * CAST($3 AS BIGINT), 'api_token', CAST($2 AS BIGINT),
				CASE WHEN i % 101 = 0 THEN NULL ELSE CAST($2 AS BIGINT) - CAST(i AS BIGINT) * 60000000 + CAST($3 AS BIGINT) END `+from,
				101_000, store.Micros(now), day)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Read.ExecContext(ctx, "ANALYZE"); err != nil && db.Dialect == store.Postgres {
			b.Fatal(err)
		}
		var times []time.Duration
		for b.Loop() {
			t0 := time.Now()
			open, err := requests.List(ctx, db.Read, requests.Query{Open: true, Limit: 500}, now)
			if err != nil || len(open) != 500 {
				b.Fatalf("open: %d %v", len(open), err)
			}
			closed, err := requests.List(ctx, db.Read, requests.Query{Closed: true, Limit: 50}, now)
			if err != nil || len(closed) != 50 || !closed[0].ClosedAt.After(*closed[49].ClosedAt) {
				b.Fatalf("closed: %d %v", len(closed), err)
			}
			times = append(times, time.Since(t0))
		}
		slices.Sort(times)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(times[len(times)/2]), "p50-ms")
		b.ReportMetric(ms(times[len(times)*99/100]), "p99-ms")
	})
}
