package preferences_test

import (
	"context"
	"log/slog"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/events/eventstest"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/preferences"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// sent is a transport that keeps what it is given.
type sent struct{ envs []*mail.Envelope }

func (s *sent) Name() string { return "test" }
func (s *sent) Send(_ context.Context, envs []*mail.Envelope) []error {
	s.envs = append(s.envs, envs...)
	return make([]error, len(envs))
}
func (s *sent) Close() error { return nil }

var confirmRE = regexp.MustCompile(`/p/confirm/([A-Za-z0-9_-]{43})`)

// Asking for a change writes no event; confirming it writes an event per
// part of it and then preferences.confirmed, which names what it covered;
// the used link writes nothing more.
func TestConfirmedChangeWritesItsEvents(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		cs := consent.NewService(db)
		people := contact.NewService(db, cs)
		ls := &lists.Service{DB: db, Now: time.Now}
		tmpl, err := mail.NewTemplates()
		if err != nil {
			t.Fatal(err)
		}
		svc := &preferences.Service{DB: db, Consent: cs, Contacts: people, Lists: ls, Log: slog.New(slog.DiscardHandler), Now: time.Now,
			BaseURL: "https://consent.example", Sender: "Acme", Mail: tmpl}
		// What a confirmed grant causes (a receipt email) runs in the
		// confirming transaction, for grants only.
		var granted []*consent.Record
		svc.AfterGrant = func(tx *store.Tx, r *consent.Record, lang string, now time.Time) error {
			if lang != "sv" {
				t.Errorf("AfterGrant in %q, want the contact's language", lang)
			}
			granted = append(granted, r)
			return nil
		}
		email := "pia@example.com"
		c, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: &email, LastName: ptr("Old"), Language: ptr("sv")},
			Consents: []consent.RecordInput{{Purpose: "E-marketing", State: consent.StateGranted, Source: "Phone",
				Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}}},
			Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
		if err != nil {
			t.Fatal(err)
		}
		l, err := ls.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("News")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ls.Set(ctx, c.ID, l.ID, lists.Subscribed, lists.SourceAPI, nil); err != nil {
			t.Fatal(err)
		}
		purposes, err := cs.Purposes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var marketing string
		for _, p := range purposes {
			if p.Name == "E-marketing" {
				marketing = p.ID
			}
		}
		ev := eventstest.From(t, db)
		change := &preferences.Change{
			Consents: []preferences.ConsentChange{{PurposeID: marketing, Name: "E-marketing", State: consent.StateWithdrawn, TextVersion: 1}},
			Lists:    []preferences.ListChange{{ListID: l.ID, Name: "News", Status: lists.Unsubscribed}},
			Profile:  []preferences.Correction{{Field: "last_name", Value: "New"}},
		}
		changeID, err := svc.Request(ctx, c.ID, change, "sv", preferences.Evidence{IP: "192.0.2.1"})
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.Next(t); len(got) != 0 {
			t.Fatalf("asking wrote %v", eventstest.Types(got))
		}
		box := &sent{}
		d := &mail.Deliverer{DB: db, Transport: box, Log: slog.New(slog.DiscardHandler), From: "Acme <news@acme.example>", Domain: "acme.example",
			Now: time.Now, Batch: 50, Lease: time.Minute, MaxAttempts: 3, Poll: time.Second, BaseURL: "https://consent.example"}
		if _, err := d.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		var link string
		for _, e := range box.envs {
			if m := confirmRE.FindStringSubmatch(e.Text); m != nil {
				link = m[1]
			}
		}
		if link == "" {
			t.Fatal("no confirmation link was sent")
		}
		if _, err := svc.Confirm(ctx, link, preferences.Evidence{IP: "192.0.2.2"}); err != nil {
			t.Fatal(err)
		}
		got := ev.Next(t)
		types := eventstest.Types(got)
		if len(got) == 0 || types[len(types)-1] != events.PreferencesConfirmed {
			t.Fatalf("confirming wrote %v", types)
		}
		for _, want := range []string{events.ConsentWithdrawn, events.ListUnsubscribed, events.ContactUpdated, events.RequestCreated, events.RequestDone} {
			if !slices.Contains(types, want) {
				t.Errorf("confirming wrote %v, without %s", types, want)
			}
		}
		pc := eventstest.Data[events.PreferencesConfirmedData](t, got[len(got)-1])
		if pc.ContactID != c.ID || pc.ChangeID != changeID || !slices.Equal(pc.PurposeIDs, []string{marketing}) || !slices.Equal(pc.ListIDs, []string{l.ID}) ||
			!slices.Equal(pc.Fields, []string{"last_name"}) || pc.OptOut || pc.StopProcessing || pc.Erasure {
			t.Errorf("preferences.confirmed %+v", pc)
		}
		for _, e := range got {
			if e.Type == events.ContactUpdated {
				if d := eventstest.Data[events.ContactUpdatedData](t, e); !slices.Equal(d.Fields, []string{"last_name"}) {
					t.Errorf("contact.updated %+v", d)
				}
			}
		}
		if _, err := svc.Confirm(ctx, link, preferences.Evidence{}); err == nil {
			t.Fatal("the used link confirmed again")
		}
		if got := ev.Next(t); len(got) != 0 {
			t.Fatalf("the used link wrote %v", eventstest.Types(got))
		}
		if len(granted) != 0 {
			t.Fatalf("a withdrawal ran AfterGrant: %+v", granted)
		}

		// Granting it again, confirmed, runs AfterGrant with the record.
		grant := &preferences.Change{Consents: []preferences.ConsentChange{{PurposeID: marketing, Name: "E-marketing", State: consent.StateGranted, TextVersion: 1}}}
		if _, err := svc.Request(ctx, c.ID, grant, "sv", preferences.Evidence{IP: "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
		box.envs = nil
		if _, err := d.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		link = ""
		for _, e := range box.envs {
			if m := confirmRE.FindStringSubmatch(e.Text); m != nil {
				link = m[1]
			}
		}
		if _, err := svc.Confirm(ctx, link, preferences.Evidence{IP: "192.0.2.2"}); err != nil {
			t.Fatal(err)
		}
		var current string
		if err := db.Read.QueryRow(`SELECT record_id FROM consent_current WHERE contact_id = $1 AND purpose_id = $2`, c.ID, marketing).Scan(&current); err != nil {
			t.Fatal(err)
		}
		if len(granted) != 1 || granted[0].ID != current || granted[0].State != consent.StateGranted {
			t.Fatalf("AfterGrant ran with %+v, want the granted record %s", granted, current)
		}
	})
}

func ptr[T any](v T) *T { return &v }
