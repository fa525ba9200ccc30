package contact_test

import (
	"context"
	"testing"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// BenchmarkCountMillion counts the contacts matching
// region == "EU" && consent("E-marketing") == "granted" among 1,000,000.
// Target: at most 1 s on each database.
func BenchmarkCountMillion(b *testing.B) {
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		const n = 1_000_000
		contacttest.SeedMillion(b, db, n)
		people := contact.NewService(db, consent.NewService(db))
		ctx := context.Background()
		const cond = `region == "EU" && consent("E-marketing") == "granted"`
		var got int64
		for b.Loop() {
			var err error
			if got, err = people.Count(ctx, cond, contact.Asker{}); err != nil {
				b.Fatal(err)
			}
		}
		// i % 5 < 2 and i % 4 < 2 are independent: 2/5 * 1/2 of n.
		if want := int64(n / 5); got != want {
			b.Fatalf("count = %d, want %d", got, want)
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/count")
	})
}
