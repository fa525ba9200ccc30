package consent_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/ledgertree"
	"github.com/consentry/consentry/internal/signing"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// BenchmarkConsentChanges16Writers measures durable consent changes per
// second when 16 callers record consent at once: each change is a
// consent.Service.Record, committed (through the group commit of
// store.DB.Write) with its ledger event before the call returns.
//
// Target: at least 5,000 changes/s on SQLite and 3,000/s on PostgreSQL on a
// 2-core machine.
func BenchmarkConsentChanges16Writers(b *testing.B) {
	storetest.Each(b, func(t testing.TB, db *store.DB) { consentChanges(t.(*testing.B), db, nil) })
}

// BenchmarkConsentChangesWithTree is BenchmarkConsentChanges16Writers
// with the ledger's Merkle tree kept current beside the changes, as the
// service runs it (ledgertree.Service.Run, woken by every append), and
// without. Target: with the tree, within 10% of without. Compare the two
// in alternating runs: one run varies more than that on a 2-core machine.
//
//	go test -c -o /tmp/consent.test ./internal/consent && cd internal/consent
//	for i in 1 2 3; do for t in off on; do /tmp/consent.test -test.run XXX -test.bench "WithTree/tree=$t/sqlite" -test.benchtime 60000x; done; done
func BenchmarkConsentChangesWithTree(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "tree=off"
		if on {
			name = "tree=on"
		}
		b.Run(name, func(b *testing.B) {
			storetest.Each(b, func(t testing.TB, db *store.DB) {
				if !on {
					consentChanges(t.(*testing.B), db, nil)
					return
				}
				tree := &ledgertree.Service{DB: db, Signing: &signing.Service{DB: db, Name: "bench.example/ledger"}}
				consentChanges(t.(*testing.B), db, func(ctx context.Context) func() {
					ctx, cancel := context.WithCancel(ctx)
					done := make(chan struct{})
					go func() { defer close(done); tree.Run(ctx, time.Second) }()
					return func() {
						cancel()
						<-done
						size, err := tree.CatchUp(context.Background())
						head, _ := ledger.Head(context.Background(), db.Read)
						if err != nil || size != head {
							t.Fatalf("the tree covers %d events (%v), want %d", size, err, head)
						}
					}
				})
			})
		})
	}
}

// consentChanges times b.N consent changes from 16 writers; beside, when
// not nil, starts what runs beside them and returns what stops it, which
// is called once the changes are done, inside the timing.
func consentChanges(b *testing.B, db *store.DB, beside func(context.Context) func()) {
	const writers, nContacts = 16, 1000
	ctx := context.Background()
	cs, people := services(db)
	ids := createContacts(b, people, nContacts, writers)

	b.ResetTimer()
	stop := func() {}
	if beside != nil {
		stop = beside(ctx)
	}
	elapsed, err := storetest.Concurrently(int64(b.N), writers, func(i int64) error {
		// Every contact's changes alternate granted, withdrawn,
		// granted, ... as the changes sweep over the contacts.
		state := consent.StateGranted
		if (i/nContacts)%2 == 1 {
			state = consent.StateWithdrawn
		}
		_, err := cs.Record(ctx, ids[i%nContacts], consent.RecordInput{Purpose: "E-marketing", State: state,
			Source: "API", Actor: apiActor, Evidence: apiEvidence})
		return err
	})
	stop()
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "changes/s")

	rep, err := cs.VerifyLedger(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if !rep.OK || rep.Events != int64(b.N) {
		b.Fatalf("ledger after %d changes: ok=%v events=%d problem=%+v", b.N, rep.OK, rep.Events, rep.Problem)
	}
}

// createContacts creates n contacts through the contact service from several
// goroutines and returns their ids.
func createContacts(b *testing.B, people *contact.Service, n, workers int) []string {
	b.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	var next atomic.Int64
	errc := make(chan error, workers)
	for range workers {
		go func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					errc <- nil
					return
				}
				c, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr(fmt.Sprintf("writer%d@example.com", i))},
					Actor: apiActor, Evidence: apiEvidence})
				if err != nil {
					errc <- err
					return
				}
				ids[i] = c.ID
			}
		}()
	}
	for range workers {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

// BenchmarkCurrentConsentRead measures the latency of reading one random
// contact's current consents among 100,000 contacts, about half of whom have
// a consent recorded. It reports the median and 99th percentile.
//
// Target: a median of at most 1 ms.
func BenchmarkCurrentConsentRead(b *testing.B) {
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		ctx := context.Background()
		cs, _ := services(db)
		// b.Loop runs this function once per -count, so the set-up below
		// is done once per database and never timed.
		ids := seedContacts(b, cs, 100_000)

		rng := mrand.New(mrand.NewPCG(1, 2))
		lat := make([]time.Duration, 0, 1<<16)
		for b.Loop() {
			id := ids[rng.IntN(len(ids))]
			t0 := time.Now()
			cur, err := cs.CurrentConsents(ctx, id)
			lat = append(lat, time.Since(t0))
			if err != nil || len(cur) != 2 {
				b.Fatalf("current consents of %s: %v %+v", id, err, cur)
			}
		}
		slices.Sort(lat)
		us := func(q float64) float64 {
			return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))]) / float64(time.Microsecond)
		}
		b.ReportMetric(us(0.50), "median-µs")
		b.ReportMetric(us(0.99), "p99-µs")
	})
}

// seedContacts inserts n contacts straight into the tables, in large
// multi-row INSERTs, and gives every other one a granted E-marketing consent
// (a consent record and the current state pointing at it). It is set-up only:
// it writes no ledger events, so the ledger does not verify afterwards.
func seedContacts(b *testing.B, cs *consent.Service, n int) []string {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	p, err := cs.Purpose(ctx, "E-marketing")
	if err != nil {
		b.Fatal(err)
	}
	now := store.Micros(time.Now())
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
	}
	ref := make([]byte, 16)
	// Rows per INSERT. On SQLite, parsing and binding $N parameters takes
	// time that grows with the square of their number (100,000 contacts load
	// in about 28 s at 1,000 rows per INSERT, 2.6 s at 20), so keep
	// statements small there.
	chunk := 500
	if cs.DB.Dialect == store.SQLite {
		chunk = 20
	}
	err = cs.DB.Write(ctx, func(tx *store.Tx) error {
		for lo := 0; lo < n; lo += chunk {
			part := ids[lo:min(lo+chunk, n)]
			args := make([]any, 0, len(part)*7)
			for j, id := range part {
				rand.Read(ref)
				email := "reader" + strconv.Itoa(lo+j) + "@example.com"
				args = append(args, id, hex.EncodeToString(ref), contact.KindLead, email, email, now, now)
			}
			if _, err := tx.Exec("INSERT INTO contacts (id, ref, kind, email, email_key, created_at, updated_at) VALUES "+
				placeholders(len(part), 7), args...); err != nil {
				return fmt.Errorf("insert contacts: %w", err)
			}

			var recArgs, curArgs []any
			for j, id := range part {
				if (lo+j)%2 != 0 {
					continue
				}
				rid := uuid.Must(uuid.NewV7()).String()
				recArgs = append(recArgs, rid, id, p.ID, consent.StateGranted, p.LegalBasis, "01930000-0000-7000-8001-000000000008", "API", p.TextVersion, now,
					apiActor.Kind, apiActor.ID, apiEvidence.Method, int64(lo+j+1))
				curArgs = append(curArgs, id, p.ID, rid, consent.StateGranted)
			}
			if _, err := tx.Exec(`INSERT INTO consent_records (id, contact_id, purpose_id, state, legal_basis, source_id, source, text_version,
				recorded_at, actor_kind, actor_id, method, ledger_seq) VALUES `+placeholders(len(recArgs)/13, 13), recArgs...); err != nil {
				return fmt.Errorf("insert consent records: %w", err)
			}
			if _, err := tx.Exec("INSERT INTO consent_current (contact_id, purpose_id, record_id, state) VALUES "+
				placeholders(len(curArgs)/4, 4), curArgs...); err != nil {
				return fmt.Errorf("insert current consents: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d contacts in %v", n, time.Since(start).Round(time.Millisecond))
	return ids
}

// placeholders returns "($1,...,$cols),(...)" for rows rows.
func placeholders(rows, cols int) string {
	var sb strings.Builder
	for r := range rows {
		if r > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('(')
		for c := range cols {
			if c > 0 {
				sb.WriteByte(',')
			}
			sb.WriteByte('$')
			sb.WriteString(strconv.Itoa(r*cols + c + 1))
		}
		sb.WriteByte(')')
	}
	return sb.String()
}
