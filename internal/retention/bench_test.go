package retention_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/erasure"
	"github.com/consentry/consentry/internal/retention"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// seedDue stores n contacts, each with one consent record for a purpose
// whose one-day retention period passed long ago, flagged due long ago: a
// retention run erases them all. Rows are written directly, many to a
// statement, so that setting up 100,000 contacts takes seconds.
func seedDue(b *testing.B, db *store.DB, n int) {
	ctx := context.Background()
	cs := consent.NewService(db)
	p, err := cs.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: ptr("Old offers"), LegalBasis: ptr("consent"), Text: ptr("Offers."),
		RetentionDays: ptr(1)})
	if err != nil {
		b.Fatal(err)
	}
	src, err := cs.ActiveSource(ctx, "API")
	if err != nil {
		b.Fatal(err)
	}
	long := store.Micros(time.Now().AddDate(-1, 0, 0))
	const chunk = 500
	for start := 0; start < n; start += chunk {
		err := db.Write(ctx, func(tx *store.Tx) error {
			var contacts, records, current []string
			var cArgs, rArgs, kArgs []any
			for i := start; i < min(start+chunk, n); i++ {
				id, rec := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
				email := fmt.Sprintf("due%07d@example.com", i)
				cArgs = append(cArgs, id, "ref"+id, email, email, long)
				k := len(cArgs)
				contacts = append(contacts, fmt.Sprintf("($%d, $%d, 'lead', $%d, $%d, 'Due', $%d, $%d, $%d)", k-4, k-3, k-2, k-1, k, k, k))
				rArgs = append(rArgs, rec, id, p.ID, src.ID, long)
				k = len(rArgs)
				records = append(records, fmt.Sprintf("($%d, $%d, $%d, 'granted', 'consent', $%d, 'API', 1, $%d, 'api_token', 'api', '192.0.2.1', 'bench', %d)",
					k-4, k-3, k-2, k-1, k, i+1))
				kArgs = append(kArgs, id, p.ID, rec)
				k = len(kArgs)
				current = append(current, fmt.Sprintf("($%d, $%d, $%d, 'granted')", k-2, k-1, k))
			}
			if _, err := tx.Exec(`INSERT INTO contacts (id, ref, kind, email, email_key, first_name, created_at, updated_at, retention_due_at)
				VALUES `+strings.Join(contacts, ", "), cArgs...); err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO consent_records (id, contact_id, purpose_id, state, legal_basis, source_id, source, text_version,
				recorded_at, actor_kind, method, ip, user_agent, ledger_seq) VALUES `+strings.Join(records, ", "), rArgs...); err != nil {
				return err
			}
			_, err := tx.Exec(`INSERT INTO consent_current (contact_id, purpose_id, record_id, state) VALUES `+strings.Join(current, ", "), kArgs...)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	// A database of this size has been analysed by autovacuum; rows
	// written a moment ago have not, and without statistics PostgreSQL
	// plans the due check as scans of whole tables.
	if err := db.Write(ctx, func(tx *store.Tx) error { _, err := tx.Exec(`ANALYZE`); return err }); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRetention erases 100,000 due contacts in one retention run
// and reports contacts erased per second and the longest an erasing
// transaction took. Run it once per database:
//
//	go test -run '^$' -bench BenchmarkRetention -benchtime 1x ./internal/retention/
//
// Targets: 2,000 contacts/s on SQLite and 1,000/s on PostgreSQL, no
// transaction longer than 100 ms.
func BenchmarkRetention(b *testing.B) {
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		const n = 100_000
		for range b.N {
			b.StopTimer()
			seedDue(b, db, n)
			svc := &retention.Service{DB: db, Erase: erasure.ForRetentionMany, Now: time.Now}
			b.StartTimer()
			start := time.Now()
			got, err := svc.Run(context.Background())
			took := time.Since(start)
			if err != nil || got != n {
				b.Fatalf("erased %d of %d: %v", got, n, err)
			}
			b.ReportMetric(float64(n)/took.Seconds(), "contacts/s")
			b.ReportMetric(float64(svc.Longest.Microseconds())/1000, "longest-tx-ms")
		}
	})
}
