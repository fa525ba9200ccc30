// Package contacttest fills a database with many contacts for benchmarks.
package contacttest

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// SeedMillion inserts n contacts directly with one set-based statement each
// for contacts and consents (set-up only; the ledger is not involved): 40%
// in region EU, and E-marketing granted for half and withdrawn for a
// quarter of them, spread so that the two conditions are independent.
func SeedMillion(b testing.TB, db *store.DB, n int) {
	seed(b, db, n, "none", "CASE WHEN i % 4 < 2 THEN 'granted' ELSE 'withdrawn' END", " WHERE i % 4 < 3")
}

// SeedReachable inserts n contacts as SeedMillion does, but every one can
// get marketing email: double opt-in, and E-marketing granted. Contact i
// has the id "c<i>" and the address "c<i>@example.com".
func SeedReachable(b testing.TB, db *store.DB, n int) {
	seed(b, db, n, "double_opt_in", "'granted'", "")
}

// seed inserts n contacts with the opt-in status optIn and an E-marketing
// consent record in the state the SQL expression state gives, for the
// contacts where (a WHERE clause on i, or "" for all).
func seed(b testing.TB, db *store.DB, n int, optIn, state, where string) {
	series, from := storetest.Series(db)
	now := store.Micros(time.Now())
	stmts := []string{
		series + `INSERT INTO contacts (id, ref, kind, email, email_key, region, stage, fields, opt_in_status, created_at, updated_at)
			SELECT 'c' || i, 'r' || i, 'lead', 'c' || i || '@example.com', 'c' || i || '@example.com',
			CASE WHEN i % 5 < 2 THEN 'EU' WHEN i % 5 = 2 THEN 'US' ELSE 'APAC' END,
			CASE WHEN i % 3 = 0 THEN 'ready to buy' ELSE 'lead in' END, '{}', $3, $2, $2 ` + from,
		series + `INSERT INTO consent_records (id, contact_id, purpose_id, state, legal_basis, source_id, source, text_version,
			recorded_at, actor_kind, method, ledger_seq)
			SELECT 'r' || i, 'c' || i, '01930000-0000-7000-8000-000000000002',
			` + state + `, 'consent', '01930000-0000-7000-8001-000000000008', 'API', 1, $2, 'api_token', 'api', 0 ` + from + where,
		`INSERT INTO consent_current (contact_id, purpose_id, record_id, state)
			SELECT contact_id, purpose_id, id, state FROM consent_records`,
	}
	ctx := context.Background()
	for i, q := range stmts {
		args := []any{n, now}
		switch i {
		case 0:
			args = append(args, optIn)
		case len(stmts) - 1:
			args = nil
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(q, args...)
			return err
		}); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	if db.Dialect == store.Postgres {
		if _, err := db.Read.ExecContext(ctx, "ANALYZE"); err != nil {
			b.Fatal(err)
		}
	} else if err := db.Write(ctx, func(tx *store.Tx) error { _, err := tx.Exec("ANALYZE"); return err }); err != nil {
		b.Fatal(err)
	}
}
