package consent_test

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

var apiActor = consent.Actor{Kind: consent.ActorAPIToken, ID: "tok"}
var apiEvidence = consent.Evidence{Method: consent.MethodAPI}

func ptr[T any](v T) *T { return &v }

func services(db *store.DB) (*consent.Service, *contact.Service) {
	cs := consent.NewService(db)
	return cs, contact.NewService(db, cs)
}

func TestRecordConsentAndHistory(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		cs, people := services(db)
		c, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("Anna@Example.com")}, Actor: apiActor, Evidence: apiEvidence})
		if err != nil {
			t.Fatal(err)
		}
		if c.OptInStatus != contactstate.OptInNone || c.Kind != contact.KindLead {
			t.Fatalf("new contact: %+v", c)
		}
		r, err := cs.Record(ctx, c.ID, consent.RecordInput{Purpose: "e-marketing", State: consent.StateGranted, Source: "Web form",
			Actor: apiActor, Evidence: consent.Evidence{Method: consent.MethodAPI, IP: "192.0.2.1"}})
		if err != nil {
			t.Fatal(err)
		}
		if r.LegalBasis != consent.BasisConsent || r.TextVersion != 1 || r.Source != "Web form" || r.LedgerSeq != 1 {
			t.Fatalf("record: %+v", r)
		}
		if _, err := cs.Record(ctx, c.ID, consent.RecordInput{Purpose: "E-marketing", State: consent.StateWithdrawn, Source: "email",
			Actor: apiActor, Evidence: apiEvidence}); err != nil {
			t.Fatal(err)
		}
		cur, err := cs.CurrentConsents(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, x := range cur {
			got[x.PurposeName] = x.State
		}
		if got["E-marketing"] != consent.StateWithdrawn || got["Sales and service"] != consent.StateNone {
			t.Fatalf("current: %v", got)
		}
		hist, err := cs.History(ctx, c.ID)
		if err != nil || len(hist) != 2 || hist[0].State != consent.StateGranted || hist[0].Evidence.IP != "192.0.2.1" {
			t.Fatalf("history %v: %+v", err, hist)
		}
		rep, err := cs.VerifyLedger(ctx)
		if err != nil || !rep.OK || rep.Events != 2 {
			t.Fatalf("verify %v: %+v %+v", err, rep, rep.Problem)
		}
		if _, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("anna@example.COM")}, Actor: apiActor, Evidence: apiEvidence}); !errs.Is(err, errs.KindConflict) {
			t.Fatalf("duplicate email regardless of case: %v", err)
		}
	})
}

func TestExpiredConsentCountsAsNone(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		cs, people := services(db)
		now := time.Now()
		cs.Now = func() time.Time { return now }
		c, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("e@example.com")}, Actor: apiActor, Evidence: apiEvidence})
		if err != nil {
			t.Fatal(err)
		}
		in := time.Now().Add(time.Hour).In(time.FixedZone("CEST", 7200))
		r, err := cs.Record(ctx, c.ID, consent.RecordInput{Purpose: "E-marketing", State: consent.StateGranted, Source: "API",
			ExpiresAt: &in, Actor: apiActor, Evidence: apiEvidence})
		if err != nil {
			t.Fatal(err)
		}
		if r.ExpiresAt.Location() != time.UTC || !r.ExpiresAt.Equal(in.Truncate(time.Microsecond)) {
			t.Fatalf("expiry is kept as stored, in UTC microseconds: %v", r.ExpiresAt)
		}
		state := func() consent.Current {
			cur, err := cs.CurrentConsents(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range cur {
				if x.PurposeName == "E-marketing" {
					return x
				}
			}
			t.Fatal("no E-marketing")
			return consent.Current{}
		}
		if s := state(); s.State != consent.StateGranted || s.Expired {
			t.Fatalf("before expiry: %+v", s)
		}
		now = now.Add(2 * time.Hour)
		if s := state(); s.State != consent.StateNone || !s.Expired || s.RecordID != r.ID {
			t.Fatalf("after expiry: %+v", s)
		}
		if rep, err := cs.VerifyLedger(ctx); err != nil || !rep.OK {
			t.Fatalf("verify: %v %+v", err, rep)
		}
	})
}
