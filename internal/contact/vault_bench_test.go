package contact_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/vault/vaulttest"
)

// sensitivePopulation makes n contacts, each with an encrypted national id.
func sensitivePopulation(b *testing.B, db *store.DB, n int) (*contact.Service, []string) {
	ctx := context.Background()
	people := contact.NewService(db, consent.NewService(db))
	people.Vault = vaulttest.New(b)
	if _, err := people.CreateField(ctx, audit.Actor{Kind: "user"}, contact.FieldInput{Name: ptr("national_id"), Type: ptr("text"), Sensitive: ptr(true)}); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				c, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr(fmt.Sprintf("v%d@example.com", i)),
					Fields: map[string]any{"national_id": fmt.Sprintf("19%010d", i)}},
					Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
				if err != nil {
					failed.Store(&err)
					return
				}
				ids[i] = c.ID
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	return people, ids
}

// concurrently runs b.N calls of fn over 16 goroutines and reports the rate.
func concurrently(b *testing.B, unit string, fn func(i int) error) {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) || failed.Load() != nil {
					return
				}
				if err := fn(int(i)); err != nil {
					failed.Store(&err)
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), unit)
}

// BenchmarkEncryptedWrites changes a sensitive value of existing contacts:
// encrypt with the contact's data key, blind index, mask, commit.
func BenchmarkEncryptedWrites(b *testing.B) {
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		people, ids := sensitivePopulation(b, db, 1000)
		concurrently(b, "writes/s", func(i int) error {
			_, err := people.Update(context.Background(), ids[i%len(ids)], contact.Input{Fields: map[string]any{"national_id": fmt.Sprintf("20%010d", i)}})
			return err
		})
	})
}

// BenchmarkReveal decrypts sensitive values through Reveal: unwrap the data
// key, decrypt, and commit the access-log entry.
func BenchmarkReveal(b *testing.B) {
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		people, ids := sensitivePopulation(b, db, 1000)
		actor := consent.Actor{Kind: consent.ActorAPIToken, ID: "billing"}
		concurrently(b, "reveals/s", func(i int) error {
			_, err := people.Reveal(context.Background(), ids[i%len(ids)], "national_id", actor, "127.0.0.1")
			return err
		})
	})
}

// BenchmarkListMasked lists 10,000 contacts with masked sensitive values,
// in pages of 500. Target: at most 200 ms for all 10,000.
func BenchmarkListMasked(b *testing.B) {
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		people, _ := sensitivePopulation(b, db, 10000)
		ctx := context.Background()
		for b.Loop() {
			n, after := 0, ""
			for {
				page, next, err := people.List(ctx, contact.ListQuery{Limit: 500, After: after})
				if err != nil {
					b.Fatal(err)
				}
				for _, c := range page {
					if s, _ := c.Fields["national_id"].(string); len(s) < 4 || s[:3] != "•" {
						b.Fatalf("not masked: %v", c.Fields)
					}
				}
				n += len(page)
				if after = next; after == "" {
					break
				}
			}
			if n != 10000 {
				b.Fatalf("listed %d", n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/10k")
	})
}
