package erasure_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/erasure"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// seedErasable inserts n contacts named e1..en directly (set-up only; the
// ledger is not involved), each with what an erasure must go through: core
// fields, a custom field, two consent records and an opt-in change with IP
// address and user agent, and an email in the outbox.
func seedErasable(b testing.TB, db *store.DB, n int) {
	series, from := storetest.Series(db)
	now := store.Micros(time.Now())
	stmts := []string{
		series + `INSERT INTO contacts (id, ref, kind, email, email_key, first_name, last_name, phone, country, region, language,
			fields, opt_in_status, created_at, updated_at)
			SELECT 'e' || i, 'r' || i, 'lead', 'E' || i || '@example.com', 'e' || i || '@example.com', 'Anna', 'Andersson', '+46 70 000',
			'SE', 'Skåne', 'sv', '{"street":"Storgatan 1"}', 'single_opt_in_user', $2, $2 ` + from,
		series + `INSERT INTO consent_records (id, contact_id, purpose_id, state, legal_basis, source_id, source, text_version,
			recorded_at, actor_kind, method, ip, user_agent, ledger_seq, text_language)
			SELECT 'm' || i, 'e' || i, '01930000-0000-7000-8000-000000000002', 'granted', 'consent',
			'01930000-0000-7000-8001-000000000008', 'API', 1, $2, 'api_token', 'api', '203.0.113.7', 'Browser/1.0', 0, 'sv' ` + from,
		series + `INSERT INTO consent_records (id, contact_id, purpose_id, state, legal_basis, source_id, source, text_version,
			recorded_at, actor_kind, method, ip, user_agent, ledger_seq, text_language)
			SELECT 's' || i, 'e' || i, '01930000-0000-7000-8000-000000000001', 'granted', 'contract',
			'01930000-0000-7000-8001-000000000008', 'API', 1, $2, 'api_token', 'api', '203.0.113.7', 'Browser/1.0', 0, 'sv' ` + from,
		series + `INSERT INTO opt_in_changes (id, contact_id, from_status, to_status, recorded_at, actor_kind, method, ip, user_agent, ledger_seq)
			SELECT 'o' || i, 'e' || i, 'none', 'single_opt_in_user', $2, 'api_token', 'api', '203.0.113.7', 'Browser/1.0', 0 ` + from,
		series + `INSERT INTO outbox (id, contact_id, kind, to_address, subject, text_body, status, run_at, created_at)
			SELECT 'x' || i, 'e' || i, 'adhoc', 'E' || i || '@example.com', 'Hello Anna', 'Dear Anna', 'sent', $2, $2 ` + from,
	}
	ctx := context.Background()
	for _, q := range stmts {
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(q, n, now)
			return err
		}); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
}

// BenchmarkErase erases contacts in batches of 200 per transaction, as
// retention does, and reports contacts erased per second and how long one
// batch holds the writer (targets: at least 2,000/s on SQLite and 1,000/s
// on PostgreSQL, batches under 100 ms). Each iteration is one batch.
//
//	go test ./internal/erasure/ -run '^$' -bench BenchmarkErase -benchtime 50x
func BenchmarkErase(b *testing.B) {
	const batch = 200
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		seedErasable(b, db, b.N*batch)
		why := erasure.Why{Actor: consent.Actor{Kind: consent.ActorSystem}, Rule: "benchmark"}
		ctx := context.Background()
		ids := make([]string, batch)
		var slowest time.Duration
		b.ResetTimer()
		for i := range b.N {
			for j := range ids {
				ids[j] = fmt.Sprintf("e%d", i*batch+j+1)
			}
			start := time.Now()
			err := db.Write(ctx, func(tx *store.Tx) error {
				out, err := erasure.EraseManyTx(tx, ids, why, time.Now())
				if err == nil && len(out) != batch {
					err = fmt.Errorf("%d outcomes, want %d", len(out), batch)
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			slowest = max(slowest, time.Since(start))
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "contacts/s")
		b.ReportMetric(float64(slowest.Microseconds())/1000, "ms/slowest-batch")
	})
}
