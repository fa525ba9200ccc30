package optin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// seedContacts stores n contacts with an address and no opt-in, written
// directly, one statement for all, so that setting up 100,000 takes
// seconds; it returns their ids. Their first names are names different
// ones, as on a real list, where many people share a first name.
func seedContacts(b testing.TB, db *store.DB, tag string, n, names int) []string {
	ctx := context.Background()
	prefix, from := storetest.Series(db)
	err := db.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(prefix+`INSERT INTO contacts (id, ref, kind, email, email_key, first_name, created_at, updated_at)
			SELECT $2 || i, 'ref-' || $2 || i, 'lead', $2 || i || '@example.com', $2 || i || '@example.com', 'Name' || (i % $3), 1, 1 `+from,
			n, tag, names)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	// A database of this size has been analysed by autovacuum; rows
	// written a moment ago have not.
	if err := db.Write(ctx, func(tx *store.Tx) error { _, err := tx.Exec(`ANALYZE`); return err }); err != nil {
		b.Fatal(err)
	}
	ids, err := store.QueryAll(ctx, db.Read, func(row store.Scanner) (string, error) {
		var id string
		return id, row.Scan(&id)
	}, `SELECT id FROM contacts WHERE id LIKE $1 ORDER BY id`, tag+"%")
	if err != nil {
		b.Fatal(err)
	}
	return ids
}

// BenchmarkBulkInvite queues double opt-in invitations for 100,000
// contacts with 5,000 different first names: a bulk run is started, as the
// API starts it, and its job run to the end. It reports invitations queued
// per second, the seconds it all took, and the longest batch transaction.
// Run it once per database:
//
//	go test -run '^$' -bench BenchmarkBulkInvite -benchtime 1x ./internal/optin/
//
// Target: 100,000 invitations queued in at most 10 s on each database,
// no batch transaction much over 50 ms.
func BenchmarkBulkInvite(b *testing.B) { benchmarkBulkInvite(b, 5_000) }

// BenchmarkBulkRunEveryNameDifferent is BenchmarkBulkInvite with a
// different first name for every contact, so that no two emails read the
// same: the worst case for rendering.
func BenchmarkBulkRunEveryNameDifferent(b *testing.B) { benchmarkBulkInvite(b, 100_000) }

func benchmarkBulkInvite(b *testing.B, names int) {
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		const n = 100_000
		for i := range b.N {
			b.StopTimer()
			f := setUp(b, db)
			f.svc.Now = time.Now
			ids := seedContacts(b, db, fmt.Sprintf("bulk%d-", i), n, names)
			var longest time.Duration
			batches := 0
			f.svc.ObserveBatches(func(_ int, took time.Duration) { longest = max(longest, took); batches++ })
			b.StartTimer()
			start := time.Now()
			run, err := f.svc.StartBulk(context.Background(), ids, optin.TriggerAPI, nil)
			if err != nil {
				b.Fatal(err)
			}
			payload, _ := json.Marshal(map[string]string{"id": run.ID})
			if err := f.svc.RunBulk(context.Background(), &jobs.Job{Kind: optin.BulkJob, Payload: payload, Attempt: 1, MaxAttempts: 5}); err != nil {
				b.Fatal(err)
			}
			took := time.Since(start)
			b.StopTimer()
			got, err := f.svc.GetBulk(context.Background(), run.ID)
			if err != nil || got.Status != optin.BulkDone || got.Invited != n {
				b.Fatalf("run ended %+v: %v", got, err)
			}
			b.ReportMetric(float64(n)/took.Seconds(), "invitations/s")
			b.ReportMetric(took.Seconds(), "s-total")
			b.ReportMetric(float64(longest.Microseconds())/1000, "longest-tx-ms")
			b.ReportMetric(float64(batches), "batches")
		}
	})
}
