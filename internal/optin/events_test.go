package optin_test

import (
	"context"
	"slices"
	"testing"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/events/eventstest"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// Inviting writes no event; confirming writes the opt-in change, its
// confirmation and the consent granted, in that order; a used link writes
// nothing.
func TestConfirmingWritesItsEvents(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := setUp(t, db)
		id := f.contact(t, "anna@example.com", "")
		ev := eventstest.From(t, db)
		if _, err := f.svc.Invite(ctx, []string{id}, optin.TriggerAPI); err != nil {
			t.Fatal(err)
		}
		links := f.links(t, id)
		if got := ev.Next(t); len(got) != 0 {
			t.Fatalf("inviting wrote %v", eventstest.Types(got))
		}
		if _, err := f.svc.Confirm(ctx, links[0], optin.Evidence{IP: "192.0.2.9", UserAgent: "ua"}); err != nil {
			t.Fatal(err)
		}
		got := ev.Next(t)
		want := []string{events.OptInChanged, events.DoubleOptInConfirmed, events.ConsentGranted}
		if !slices.Equal(eventstest.Types(got), want) {
			t.Fatalf("confirming wrote %v, want %v", eventstest.Types(got), want)
		}
		change := eventstest.Data[events.OptInChangedData](t, got[0])
		if change.From != contactstate.OptInNone || change.To != contactstate.DoubleOptIn || change.ContactID != id || change.ActorKind != "contact" {
			t.Errorf("opt_in.changed %+v", change)
		}
		confirmed := eventstest.Data[events.DoubleOptInConfirmedData](t, got[1])
		if confirmed.ChangeID != change.ChangeID || confirmed.Method != "double_opt_in_link" || confirmed.ContactID != id {
			t.Errorf("double_opt_in.confirmed %+v", confirmed)
		}
		granted := eventstest.Data[events.ConsentData](t, got[2])
		if granted.Purpose != "E-marketing" || granted.State != "granted" || granted.Method != "double_opt_in_link" || granted.RecordID == "" {
			t.Errorf("consent.granted %+v", granted)
		}
		if _, err := f.svc.Confirm(ctx, links[0], optin.Evidence{}); err == nil {
			t.Fatal("a used link confirmed again")
		}
		if got := ev.Next(t); len(got) != 0 {
			t.Fatalf("a used link wrote %v", eventstest.Types(got))
		}
	})
}
