// Package webformtest builds a webform service on a test database, with a
// form to post to, and counts what submissions write, for the tests of the
// webform package, the public pages and the benchmarks.
package webformtest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/webform"
)

// New returns a webform service on db with the wall clock, its links on
// https://consent.example. It panics if the email templates do not parse,
// which every test would catch.
func New(db *store.DB) *webform.Service {
	tmpl, err := mail.NewTemplates()
	if err != nil {
		panic(err)
	}
	cs := consent.NewService(db)
	people := contact.NewService(db, cs)
	s, err := webform.New(&webform.Service{DB: db, Consent: cs, Contacts: people, Lists: &lists.Service{DB: db, Now: time.Now},
		OptIn: &optin.Service{DB: db, Consent: cs, Log: slog.New(slog.DiscardHandler), Now: time.Now,
			BaseURL: "https://consent.example", Sender: "Acme", Mail: tmpl},
		BaseURL: "https://consent.example", Sender: "Acme", Mail: tmpl, Now: time.Now})
	if err != nil {
		panic(err)
	}
	return s
}

// Form creates a list "Newsletter" and a purpose "Share with partners",
// then a form that asks for email, first and last name, offers the list,
// asks for the purpose (consent box 0) and has the marketing box.
func Form(t testing.TB, s *webform.Service) *webform.Webform {
	t.Helper()
	ctx := context.Background()
	name, text, basis := "Share with partners", "We may share your name and address with our partners.", consent.BasisConsent
	if _, err := s.Consent.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: &name, Text: &text, LegalBasis: &basis}); err != nil {
		t.Fatal(err)
	}
	list := "Newsletter"
	if _, err := s.Lists.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: &list}); err != nil {
		t.Fatal(err)
	}
	w, err := s.Create(ctx, audit.Actor{Kind: "user"}, webform.Definition{Name: "signup", Title: "Sign up", Language: "en",
		Fields:           []webform.Field{{Name: "email"}, {Name: "first_name"}, {Name: "last_name"}},
		Lists:            []webform.ListBox{{List: "Newsletter"}},
		Consents:         []webform.ConsentBox{{Purpose: "Share with partners"}},
		Marketing:        &webform.MarketingBox{},
		PrivacyPolicyURL: "https://acme.example/privacy"})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// Rows counts every row a submission can write: contacts, consent records
// and current state, opt-in changes, invitations, tokens, emails, list
// subscriptions, ledger events, posts held for confirmation and events.
func Rows(t testing.TB, db *store.DB) int {
	t.Helper()
	var n int
	err := db.Read.QueryRowContext(context.Background(), `SELECT (SELECT count(*) FROM contacts) + (SELECT count(*) FROM consent_records)
		+ (SELECT count(*) FROM consent_current) + (SELECT count(*) FROM opt_in_changes) + (SELECT count(*) FROM optin_invitations)
		+ (SELECT count(*) FROM tokens) + (SELECT count(*) FROM outbox) + (SELECT count(*) FROM list_subscriptions)
		+ (SELECT count(*) FROM ledger_events) + (SELECT count(*) FROM webform_confirmations) + (SELECT count(*) FROM events)`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
