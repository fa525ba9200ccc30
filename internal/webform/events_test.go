package webform_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/events/eventstest"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webform"
	"github.com/consentry/consentry/internal/webform/webformtest"
)

// A post from a new address writes the contact's creation, its opt-in
// change, its consents and its subscription; a post about a known address
// writes nothing until the contact confirms it, and the confirmation
// writes what it changed: the details (by name), the confirmed address.
func TestWebformWritesItsEvents(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s := webformtest.New(db)
		// A confirmed grant's consequences (a receipt email) run in the
		// confirming transaction; a post nobody confirmed has none.
		var granted []*consent.Record
		s.AfterGrant = func(tx *store.Tx, r *consent.Record, lang string, now time.Time) error {
			granted = append(granted, r)
			return nil
		}
		w := webformtest.Form(t, s)
		ctx := context.Background()
		ev := eventstest.From(t, db)
		if _, err := s.Submit(ctx, w.ID, webform.Submission{Form: post("anna@example.com", "first_name", "Anna", "marketing.checked", "yes",
			"marketing.version", "1", "consents[0].checked", "yes", "lists[0].checked", "yes")}); err != nil {
			t.Fatal(err)
		}
		got := ev.Next(t)
		types := eventstest.Types(got)
		slices.Sort(types)
		want := []string{events.ConsentGranted, events.ConsentGranted, events.ContactCreated, events.ListSubscribed, events.OptInChanged}
		if !slices.Equal(types, want) {
			t.Fatalf("a new address's post wrote %v, want %v", types, want)
		}
		for _, e := range got {
			switch e.Type {
			case events.ContactCreated:
				if d := eventstest.Data[events.ContactCreatedData](t, e); d.ActorKind != consent.ActorContact || d.Method != consent.MethodWebform {
					t.Errorf("contact.created %+v", d)
				}
			case events.ListSubscribed:
				if d := eventstest.Data[events.ListData](t, e); d.Source != "webform" || d.List == "" || d.State != "subscribed" {
					t.Errorf("list.subscribed %+v", d)
				}
			case events.ConsentGranted:
				if d := eventstest.Data[events.ConsentData](t, e); d.Method != consent.MethodWebform || d.Source != "Web form" {
					t.Errorf("consent.granted %+v", d)
				}
			}
		}

		if len(granted) != 0 {
			t.Fatalf("a post nobody confirmed ran AfterGrant: %+v", granted)
		}
		id := known(t, s, "kim@example.com")
		ev.Next(t)
		if _, err := s.Submit(ctx, w.ID, webform.Submission{Form: post("kim@example.com", "first_name", "Kim", "last_name", "Berg",
			"marketing.checked", "yes", "consents[0].checked", "yes", "consents[0].version", "1")}); err != nil {
			t.Fatal(err)
		}
		if got := ev.Next(t); len(got) != 0 {
			t.Fatalf("a known address's post wrote %v", eventstest.Types(got))
		}
		links := newOutbox(db).links(t, "kim@example.com")
		if _, err := s.Confirm(ctx, links[0], webform.Evidence{IP: "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
		got = ev.Next(t)
		byType := map[string]events.Event{}
		for _, e := range got {
			byType[e.Type] = e
		}
		if d := eventstest.Data[events.ContactUpdatedData](t, byType[events.ContactUpdated]); d.ContactID != id || !slices.Equal(d.Fields, []string{"last_name"}) {
			t.Errorf("contact.updated %+v (of %v)", d, eventstest.Types(got))
		}
		if d := eventstest.Data[events.DoubleOptInConfirmedData](t, byType[events.DoubleOptInConfirmed]); d.ContactID != id || d.ChangeID == "" ||
			d.Method != consent.MethodWebformConfirmed {
			t.Errorf("double_opt_in.confirmed %+v (of %v)", d, eventstest.Types(got))
		}
		// The marketing box and the consent box: a record each.
		if len(granted) != 2 || granted[0].PurposeID == granted[1].PurposeID {
			t.Fatalf("confirming ran AfterGrant %d times, want once for each box", len(granted))
		}
		for _, r := range granted {
			if r.ContactID != id || r.State != consent.StateGranted {
				t.Errorf("AfterGrant with %+v, want a granted record of %s", r, id)
			}
		}
	})
}
