package workflow_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
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
					if err := events.Emit(tx, events.ConsentGranted, id, events.ConsentData{ContactID: id, Purpose: "Share with partners", State: "granted"}, w.now); err != nil {
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

// BenchmarkConsentChangesWithRules measures durable consent changes per
// second from 16 callers, as BenchmarkConsentChanges16Writers in package
// consent does, with the workflow runner running beside them: with no
// rule, and with ten active rules on consent events. Each change sets off
// five of them, whose conditions are evaluated on the contact; a rule
// acts (sets a field) the first time it holds for a contact, 1,000 times
// in all, and after that its condition no longer holds. The runner's work
// is its own transactions, which the changes share the writer with.
//
// Target: with ten rules, within 10% of the figure without.
func BenchmarkConsentChangesWithRules(b *testing.B) {
	for _, rules := range []int{0, 10} {
		b.Run(fmt.Sprintf("rules=%d", rules), func(b *testing.B) {
			storetest.Each(b, func(t testing.TB, db *store.DB) {
				b := t.(*testing.B)
				w := newWorld(b, db)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				for i := range rules {
					trigger := []string{"consent.granted", "consent.withdrawn"}[i%2]
					w.rule(fmt.Sprintf(`{"name": "R%d", "trigger": %q, "condition": "event.purpose == \"Share with partners\" && region == \"R%d\" && stage != \"s%d\"",
						"actions": [{"type": "set_field", "field": "stage", "value": "s%d"}]}`, i, trigger, i, i, i))
				}
				const writers, nContacts = 16, 1000
				ids := make([]string, nContacts)
				for i := range ids {
					c, err := w.people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr(fmt.Sprintf("w%d@example.com", i)),
						Region: ptr(fmt.Sprintf("R%d", i%10))}, Actor: api, Evidence: consent.Evidence{Method: consent.MethodAPI}})
					if err != nil {
						b.Fatal(err)
					}
					ids[i] = c.ID
				}
				w.runDue()
				w.runner.Poll = time.Second
				done := make(chan struct{})
				go func() { defer close(done); w.runner.Run(ctx) }()

				b.ResetTimer()
				elapsed, err := storetest.Concurrently(int64(b.N), writers, func(i int64) error {
					// Every contact's changes alternate granted, withdrawn,
					// granted, ... as the changes sweep over the contacts.
					state := consent.StateGranted
					if (i/nContacts)%2 == 1 {
						state = consent.StateWithdrawn
					}
					_, err := w.consent.Record(ctx, ids[i%nContacts], consent.RecordInput{Purpose: "Share with partners", State: state,
						Source: "API", Actor: api, Evidence: consent.Evidence{Method: consent.MethodAPI}})
					return err
				})
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "changes/s")
				cancel()
				<-done
				w.runDue() // what the runner had not reached yet
				var runs int
				if err := db.Read.QueryRow(`SELECT count(*) FROM workflow_runs`).Scan(&runs); err != nil {
					b.Fatal(err)
				}
				if rules > 0 && runs == 0 {
					b.Fatal("no rule ran")
				}
			})
		})
	}
}
