package webform_test

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webform"
	"github.com/consentry/consentry/internal/webform/webformtest"
)

// outbox sends what is due and keeps it.
type outbox struct {
	d    *mail.Deliverer
	sent []*mail.Envelope
}

func newOutbox(db *store.DB) *outbox {
	o := &outbox{}
	o.d = &mail.Deliverer{DB: db, Transport: o, Log: slog.New(slog.DiscardHandler), From: "Acme <news@acme.example>", Domain: "acme.example",
		Now: time.Now, Batch: 50, Lease: time.Minute, MaxAttempts: 3, Poll: time.Second, BaseURL: "https://consent.example"}
	return o
}

func (o *outbox) Name() string { return "test" }
func (o *outbox) Send(_ context.Context, envs []*mail.Envelope) []error {
	o.sent = append(o.sent, envs...)
	return make([]error, len(envs))
}
func (o *outbox) Close() error { return nil }

var heldLinkRE = regexp.MustCompile(`/f/confirm/([A-Za-z0-9_-]{43})`)

// links sends what is due and returns the confirmation links sent to to,
// oldest first.
func (o *outbox) links(t testing.TB, to string) []string {
	t.Helper()
	if _, err := o.d.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range o.sent {
		if m := heldLinkRE.FindStringSubmatch(e.Text); m != nil && e.To == to {
			out = append(out, m[1])
		}
	}
	return out
}

func known(t testing.TB, s *webform.Service, email string) string {
	t.Helper()
	c, err := s.Contacts.Create(context.Background(), contact.NewContact{Input: contact.Input{Email: ptr(email), FirstName: ptr("Kim")}})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// TestHeldPostsPerDay: at most MaxHeldPerDay posts about one known address
// are held in a day; past that a post writes nothing, and the last one held
// still confirms.
func TestHeldPostsPerDay(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s := webformtest.New(db)
		w := webformtest.Form(t, s)
		ctx := context.Background()
		id := known(t, s, "kim@example.com")
		for i := range webform.MaxHeldPerDay {
			if _, err := s.Submit(ctx, w.ID, webform.Submission{Form: post("kim@example.com", "last_name", string(rune('A'+i)))}); err != nil {
				t.Fatal(err)
			}
		}
		before := webformtest.Rows(t, db)
		if _, err := s.Submit(ctx, w.ID, webform.Submission{Form: post("kim@example.com", "last_name", "Z")}); err != nil {
			t.Fatal(err)
		}
		if after := webformtest.Rows(t, db); after != before {
			t.Fatalf("a post past the daily limit wrote %d rows", after-before)
		}
		held, _ := s.HeldPosts(ctx, id)
		if len(held) != webform.MaxHeldPerDay || held[0].Status != webform.StatusPending || held[1].Status != webform.StatusSuperseded {
			t.Fatalf("held posts: %+v", held)
		}
		links := newOutbox(db).links(t, "kim@example.com")
		if len(links) != 1 { // the superseded emails were never sent
			t.Fatalf("%d links sent", len(links))
		}
		if _, err := s.Confirm(ctx, links[0], webform.Evidence{IP: "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Contacts.Get(ctx, id); c.LastName != string(rune('A'+webform.MaxHeldPerDay-1)) {
			t.Fatalf("last name %q", c.LastName)
		}
	})
}

// TestConfirmAfterProcessingStopped: a contact who stopped processing
// after the post is not changed by its link; the post stays pending.
func TestConfirmAfterProcessingStopped(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s := webformtest.New(db)
		w := webformtest.Form(t, s)
		ctx := context.Background()
		id := known(t, s, "lo@example.com")
		if _, err := s.Submit(ctx, w.ID, webform.Submission{Form: post("lo@example.com", "first_name", "Lo", "marketing.checked", "yes",
			"consents[0].checked", "yes")}); err != nil {
			t.Fatal(err)
		}
		link := newOutbox(db).links(t, "lo@example.com")[0]
		if err := db.Write(ctx, func(tx *store.Tx) error {
			return contactstate.StopProcessingTx(tx, id, time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		before := webformtest.Rows(t, db)
		if _, err := s.Confirm(ctx, link, webform.Evidence{}); !errors.Is(err, webform.ErrNotApplied) {
			t.Fatalf("confirming for a stopped contact: %v", err)
		}
		c, _ := s.Contacts.Get(ctx, id)
		held, _ := s.HeldPosts(ctx, id)
		if after := webformtest.Rows(t, db); after != before || c.FirstName != "Kim" || c.OptInStatus != contactstate.OptInNone || held[0].Status != webform.StatusPending {
			t.Fatalf("%d rows written, contact %+v, held %+v", after-before, c, held)
		}
		if _, err := s.Pending(ctx, link); err != nil {
			t.Fatalf("the link after a refusal: %v", err)
		}
	})
}
