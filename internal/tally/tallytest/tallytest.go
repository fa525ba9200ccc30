// Package tallytest gives tests and benchmarks days of figures without
// waiting for them.
package tallytest

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// Repeat copies the figures counted on day (UTC) to each of the days the
// given numbers of days before it, failing t on an error.
func Repeat(t testing.TB, db *store.DB, day time.Time, daysBefore ...int) {
	t.Helper()
	if err := db.Write(context.Background(), func(tx *store.Tx) error {
		for _, n := range daysBefore {
			if _, err := tx.Exec(`INSERT INTO daily_tallies (day, measure, subject, contacts, counted_at)
				SELECT $1, measure, subject, contacts, counted_at FROM daily_tallies WHERE day = $2`,
				day.UTC().AddDate(0, 0, -n).Format("2006-01-02"), day.UTC().Format("2006-01-02")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
