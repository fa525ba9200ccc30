package workflow_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// BenchmarkRunEvents measures the runner on batches of consent events, each
// about its own contact, with two rules on the trigger: one whose
// condition holds and which sets a field, one whose condition does not.
// Reported per event.
func BenchmarkRunEvents(b *testing.B) {
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		w := newWorld(b, db)
		w.rule(`{"name": "Holds", "trigger": "consent.granted", "condition": "event.purpose == \"Share with partners\" && country != \"US\"",
			"actions": [{"type": "set_field", "field": "stage", "value": "shared"}]}`)
		w.rule(`{"name": "Does not", "trigger": "consent.granted", "condition": "event.purpose == \"E-marketing\"",
			"actions": [{"type": "double_opt_in"}]}`)
		const n = 200
		ids := make([]string, n)
		for i := range ids {
			ids[i] = w.person(fmt.Sprintf("p%d@example.com", i), contactstate.SingleOptInUser, nil)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if err := db.Write(context.Background(), func(tx *store.Tx) error {
				for _, id := range ids {
					if err := events.Emit(tx, events.ConsentGranted, id, map[string]any{"purpose": "Share with partners", "state": "granted"}, w.now); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if got := w.runDue(); got != n {
				b.Fatalf("%d runs, want %d", got, n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/event")
	})
}
