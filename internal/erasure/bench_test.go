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

// seedErasable inserts n contacts with ids prefix1..prefixn directly (set-up only; the
// ledger is not involved), each with what an erasure must go through: core
// fields, a custom field, two consent records and an opt-in change with IP
// address and user agent, and an email in the outbox.
func seedErasable(b testing.TB, db *store.DB, prefix string, n int) {
	series, from := storetest.Series(db)
	now := store.Micros(time.Now())
	stmts := []string{
		series + `INSERT INTO contacts (id, ref, kind, email, email_key, first_name, last_name, phone, country, region, language,
			fields, opt_in_status, created_at, updated_at)
			SELECT $3 || i, $3 || 'r' || i, 'lead', upper($3) || i || '@example.com', $3 || i || '@example.com', 'Anna', 'Andersson', '+46 70 000',
			'SE', 'Skåne', 'sv', '{"street":"Storgatan 1"}', 'single_opt_in_user', $2, $2 ` + from,
		series + `INSERT INTO consent_records (id, contact_id, purpose_id, state, legal_basis, source_id, source, text_version,
			recorded_at, actor_kind, method, ip, user_agent, ledger_seq, text_language)
			SELECT $3 || 'm' || i, $3 || i, '01930000-0000-7000-8000-000000000002', 'granted', 'consent',
			'01930000-0000-7000-8001-000000000008', 'API', 1, $2, 'api_token', 'api', '203.0.113.7', 'Browser/1.0', 0, 'sv' ` + from,
		series + `INSERT INTO consent_records (id, contact_id, purpose_id, state, legal_basis, source_id, source, text_version,
			recorded_at, actor_kind, method, ip, user_agent, ledger_seq, text_language)
			SELECT $3 || 's' || i, $3 || i, '01930000-0000-7000-8000-000000000001', 'granted', 'contract',
			'01930000-0000-7000-8001-000000000008', 'API', 1, $2, 'api_token', 'api', '203.0.113.7', 'Browser/1.0', 0, 'sv' ` + from,
		series + `INSERT INTO opt_in_changes (id, contact_id, from_status, to_status, recorded_at, actor_kind, method, ip, user_agent, ledger_seq)
			SELECT $3 || 'o' || i, $3 || i, 'none', 'single_opt_in_user', $2, 'api_token', 'api', '203.0.113.7', 'Browser/1.0', 0 ` + from,
		series + `INSERT INTO outbox (id, contact_id, kind, to_address, subject, text_body, status, run_at, created_at)
			SELECT $3 || 'x' || i, $3 || i, 'adhoc', upper($3) || i || '@example.com', 'Hello Anna', 'Dear Anna', 'sent', $2, $2 ` + from,
	}
	ctx := context.Background()
	for _, q := range stmts {
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(q, n, now, prefix)
			return err
		}); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
}

// BenchmarkErase erases contacts in batches of 200 per transaction, as
// retention does, and reports contacts erased per second and how long the
// slowest batch held the writer (targets: at least 2,000/s on SQLite and
// 1,000/s on PostgreSQL, batches under 100 ms). Each iteration is one
// batch: "many" erases it with one EraseManyTx, "one_by_one" with an
// EraseTx per contact (what a per-contact caller such as ForRetention
// costs).
//
//	go test ./internal/erasure/ -run '^$' -bench BenchmarkErase -benchtime 50x
func BenchmarkErase(b *testing.B) {
	const batch = 200
	why := erasure.Why{Actor: consent.Actor{Kind: consent.ActorSystem}, Rule: "benchmark"}
	ways := []struct {
		name  string
		erase func(tx *store.Tx, ids []string) (int, error)
	}{
		{"many", func(tx *store.Tx, ids []string) (int, error) {
			out, err := erasure.EraseManyTx(tx, ids, why, time.Now())
			return len(out), err
		}},
		{"one_by_one", func(tx *store.Tx, ids []string) (int, error) {
			for _, id := range ids {
				if _, err := erasure.EraseTx(tx, id, why, time.Now()); err != nil {
					return 0, err
				}
			}
			return len(ids), nil
		}},
	}
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		for _, way := range ways {
			t.(*testing.B).Run(way.name, func(b *testing.B) {
				benchErase(b, db, way.erase, batch)
			})
		}
	})
}

var benchRun int

func benchErase(b *testing.B, db *store.DB, erase func(tx *store.Tx, ids []string) (int, error), batch int) {
	benchRun++
	prefix := fmt.Sprintf("e%d-", benchRun) // each run seeds its own contacts
	seedErasable(b, db, prefix, b.N*batch)
	ctx := context.Background()
	ids := make([]string, batch)
	var slowest time.Duration
	b.ResetTimer()
	for i := range b.N {
		for j := range ids {
			ids[j] = fmt.Sprintf("%s%d", prefix, i*batch+j+1)
		}
		start := time.Now()
		err := db.Write(ctx, func(tx *store.Tx) error {
			n, err := erase(tx, ids)
			if err == nil && n != batch {
				err = fmt.Errorf("%d erased, want %d", n, batch)
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
}
