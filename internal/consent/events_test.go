package consent_test

import (
	"context"
	"testing"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/events/eventstest"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// Stopping processing writes the opt-out, a withdrawal per consent given
// on the legal basis of consent, and processing.stopped; stopping again
// changes nothing and writes nothing; a grant refused on the locked
// record writes no event (on PostgreSQL, the one-statement write is rolled
// back with it), and a withdrawal writes its own.
func TestStopProcessingWritesItsEvents(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		cs, people := services(db)
		addSharePurpose(t, cs)
		c := newWithConsents(t, cs, people, "cai@example.com", "E-marketing", "Share with partners", "Sales and service")
		ev := eventstest.From(t, db)
		stop := func() {
			t.Helper()
			if err := db.Write(ctx, func(tx *store.Tx) error {
				k, err := contactstate.Load(tx, c.ID)
				if err != nil {
					return err
				}
				return cs.StopProcessingTx(tx, k, contactActor, consent.Evidence{Method: consent.MethodPreferencesPage}, cs.Now())
			}); err != nil {
				t.Fatal(err)
			}
		}
		stop()
		got := ev.Next(t)
		types := eventstest.Types(got)
		if len(got) != 4 || types[0] != events.OptInChanged || types[1] != events.ConsentWithdrawn || types[2] != events.ConsentWithdrawn ||
			types[3] != events.ProcessingStopped {
			t.Fatalf("stopping wrote %v", types)
		}
		withdrawn := map[string]bool{}
		for _, e := range got[1:3] {
			d := eventstest.Data[events.ConsentData](t, e)
			withdrawn[d.Purpose] = d.State == consent.StateWithdrawn && d.ContactID == c.ID && d.ActorKind == consent.ActorContact &&
				d.Method == consent.MethodPreferencesPage && d.Source == "Preferences page"
		}
		if !withdrawn["E-marketing"] || !withdrawn["Share with partners"] {
			t.Errorf("withdrawals: %v", withdrawn)
		}
		if d := eventstest.Data[events.ProcessingStoppedData](t, got[3]); d.ContactID != c.ID || got[3].ContactID != c.ID {
			t.Errorf("processing.stopped %+v", d)
		}
		stop()
		if got := ev.Next(t); len(got) != 0 {
			t.Fatalf("stopping again wrote %v", eventstest.Types(got))
		}
		if _, err := cs.Record(ctx, c.ID, consent.RecordInput{Purpose: "E-marketing", State: consent.StateGranted, Source: "Phone",
			Actor: apiActor, Evidence: apiEvidence}); !errs.Is(err, errs.KindLocked) {
			t.Fatalf("a grant on a locked record: %v", err)
		}
		if got := ev.Next(t); len(got) != 0 {
			t.Fatalf("a refused grant wrote %v", eventstest.Types(got))
		}
		if _, err := cs.Record(ctx, c.ID, consent.RecordInput{Purpose: "Sales and service", State: consent.StateWithdrawn, Source: "Phone",
			Actor: apiActor, Evidence: apiEvidence}); err != nil {
			t.Fatal(err)
		}
		got = ev.Next(t)
		if len(got) != 1 || got[0].Type != events.ConsentWithdrawn {
			t.Fatalf("a withdrawal wrote %v", eventstest.Types(got))
		}
		if d := eventstest.Data[events.ConsentData](t, got[0]); d.Purpose != "Sales and service" || d.Source != "Phone" || d.ActorKind != consent.ActorAPIToken {
			t.Errorf("consent.withdrawn %+v", d)
		}
	})
}
