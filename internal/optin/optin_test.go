package optin_test

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

type fixture struct {
	db     *store.DB
	people *contact.Service
	svc    *optin.Service
	now    time.Time
	outbox *mail.Deliverer
	sent   *sentMail
}

func setUp(t testing.TB, db *store.DB) *fixture {
	f := &fixture{db: db, now: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	cs := consent.NewService(db)
	cs.Now = func() time.Time { return f.now }
	f.people = contact.NewService(db, cs)
	f.people.Now = cs.Now
	tmpl, err := mail.NewTemplates()
	if err != nil {
		t.Fatal(err)
	}
	f.svc = &optin.Service{DB: db, Consent: cs, Log: slog.New(slog.DiscardHandler), Now: cs.Now, BaseURL: "https://consent.example",
		Sender: "Acme", Mail: tmpl}
	f.sent = &sentMail{}
	f.outbox = &mail.Deliverer{DB: db, Transport: f.sent, Log: slog.New(slog.DiscardHandler), From: "Acme <news@acme.example>",
		Domain: "acme.example", Now: cs.Now, Batch: 50, Lease: time.Minute, MaxAttempts: 3, Poll: time.Second, BaseURL: "https://consent.example"}
	return f
}

func (f *fixture) contact(t testing.TB, email, optIn string) string {
	t.Helper()
	c, err := f.people.Create(context.Background(), contact.NewContact{Input: contact.Input{Email: &email}, OptInStatus: optIn,
		Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func (f *fixture) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	f.write(t, func(tx *store.Tx) error { _, err := tx.Exec(q, args...); return err })
}

func (f *fixture) write(t testing.TB, fn func(tx *store.Tx) error) {
	t.Helper()
	if err := f.db.Write(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

var linkRE = regexp.MustCompile(`/confirm/([A-Za-z0-9_-]{43})`)

// links sends the email that is due, through the send gate, and returns
// the confirmation links the contact has received, oldest first. The
// links' tokens are made as the email is sent: the outbox holds none.
func (f *fixture) links(t testing.TB, contactID string) []string {
	t.Helper()
	if _, err := f.outbox.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	var email string
	if err := f.db.Read.QueryRow(`SELECT email FROM contacts WHERE id = $1`, contactID).Scan(&email); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, env := range f.sent.envs {
		if m := linkRE.FindStringSubmatch(env.Text); m != nil && env.To == email {
			out = append(out, m[1])
		}
	}
	var held, placeholders int
	if err := f.db.Read.QueryRow(`SELECT count(*) FROM outbox WHERE contact_id = $1 AND text_body NOT LIKE '%/confirm/link-%'`, contactID).
		Scan(&held); err != nil || held != 0 {
		t.Fatalf("%d messages in the outbox hold something other than the link's placeholder (%v)", held, err)
	}
	if err := f.db.Read.QueryRow(`SELECT count(*) FROM outbox WHERE contact_id = $1`, contactID).Scan(&placeholders); err != nil || placeholders < len(out) {
		t.Fatalf("%d messages queued, %d received (%v)", placeholders, len(out), err)
	}
	return out
}

// sentMail is a transport that keeps what it is given.
type sentMail struct{ envs []*mail.Envelope }

func (s *sentMail) Name() string { return "test" }
func (s *sentMail) Send(_ context.Context, envs []*mail.Envelope) []error {
	s.envs = append(s.envs, envs...)
	return make([]error, len(envs))
}
func (s *sentMail) Close() error { return nil }

func (f *fixture) status(t testing.TB, contactID string) string {
	var s string
	if err := f.db.Read.QueryRow(`SELECT status FROM optin_invitations WHERE contact_id = $1 ORDER BY invited_at DESC LIMIT 1`, contactID).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestInviteSkipsAndSaysWhy: contacts who may not be asked (opted out, bounced,
// confirmed already, unknown, or who asked to be erased) are skipped, counted
// by reason, and get no email.
func TestInviteSkipsAndSaysWhy(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		fresh := f.contact(t, "fresh@example.com", "")
		single := f.contact(t, "single@example.com", contactstate.SingleOptInUser)
		out := f.contact(t, "out@example.com", contactstate.OptOutUser)
		bounced := f.contact(t, "bounced@example.com", "")
		confirmed := f.contact(t, "confirmed@example.com", "")
		leaving := f.contact(t, "leaving@example.com", "") // asked to be erased; the erasure waits for the operator
		f.write(t, func(tx *store.Tx) error {
			if err := contactstate.RequestErasureTx(tx, leaving, f.now); err != nil {
				return err
			}
			st, err := contactstate.Load(tx, bounced)
			if err != nil {
				return err
			}
			if err := contactstate.RecordBounceTx(tx, &st, true, 0, f.now); err != nil {
				return err
			}
			return contactstate.SetOptInTx(tx, confirmed, contactstate.DoubleOptIn, f.now)
		})
		res, err := f.svc.Invite(context.Background(), []string{fresh, single, out, bounced, confirmed, leaving, "no-such-id"}, optin.TriggerAPI)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{optin.SkipOptedOut: 1, optin.SkipBounced: 1, optin.SkipAlreadyConfirmed: 1, optin.SkipNotFound: 1,
			optin.SkipErasureRequested: 1}
		if res.Invited != 2 || len(res.Skipped) != len(want) {
			t.Fatalf("result %+v", res)
		}
		for k, v := range want {
			if res.Skipped[k] != v {
				t.Fatalf("skipped %+v, want %+v", res.Skipped, want)
			}
		}
		var queued int
		if err := db.Read.QueryRow(`SELECT count(*) FROM outbox WHERE contact_id = $1`, out).Scan(&queued); err != nil || queued != 0 {
			t.Fatalf("%d emails queued for an opted-out contact (%v)", queued, err)
		}
		if len(f.links(t, fresh)) != 1 {
			t.Fatal("emails queued for the wrong contacts")
		}
	})
}

// TestReminderThenExpiry moves the clock: a reminder with a new link after
// the reminder days, expiry after the expiry days, and then neither link
// confirms anything.
func TestReminderThenExpiry(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := setUp(t, db)
		id := f.contact(t, "anna@example.com", "")
		if _, err := f.svc.Invite(ctx, []string{id}, optin.TriggerAPI); err != nil {
			t.Fatal(err)
		}
		sweep := func() int {
			n, err := f.svc.Sweep(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		f.now = f.now.Add(71 * time.Hour)
		if sweep() != 0 || f.status(t, id) != optin.StatusInvited {
			t.Fatal("reminded before the reminder days were over")
		}
		f.now = f.now.Add(time.Hour) // three days
		if sweep() != 1 || f.status(t, id) != optin.StatusReminded || len(f.links(t, id)) != 2 {
			t.Fatalf("no reminder after three days: %s, %d links", f.status(t, id), len(f.links(t, id)))
		}
		if sweep() != 0 || len(f.links(t, id)) != 2 {
			t.Fatal("a second reminder was sent")
		}
		f.now = f.now.Add(11 * 24 * time.Hour) // fourteen days
		if sweep() != 1 || f.status(t, id) != optin.StatusExpired {
			t.Fatalf("not expired after fourteen days: %s", f.status(t, id))
		}
		for _, link := range f.links(t, id) {
			if _, err := f.svc.Confirm(ctx, link, optin.Evidence{}); !errors.Is(err, optin.ErrNotConfirmed) {
				t.Fatalf("an expired invitation was confirmed: %v", err)
			}
		}
	})
}

func TestReminderLinkConfirms(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := setUp(t, db)
		id := f.contact(t, "anna@example.com", "")
		f.svc.Invite(ctx, []string{id}, optin.TriggerAPI)
		f.now = f.now.Add(4 * 24 * time.Hour)
		f.svc.Sweep(ctx)
		links := f.links(t, id)
		if _, err := f.svc.Confirm(ctx, links[1], optin.Evidence{IP: "192.0.2.9", UserAgent: "ua"}); err != nil {
			t.Fatal(err)
		}
		if f.status(t, id) != optin.StatusConfirmed {
			t.Fatal("not confirmed")
		}
		if _, err := f.svc.Confirm(ctx, links[0], optin.Evidence{}); !errors.Is(err, optin.ErrNotConfirmed) {
			t.Fatal("the first link confirmed a confirmed invitation again")
		}
	})
}

func TestWebformInvitesAtMostDaily(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := setUp(t, db)
		id := f.contact(t, "anna@example.com", "")
		invite := func(trigger string) *optin.Result {
			res, err := f.svc.Invite(ctx, []string{id}, trigger)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		if invite(optin.TriggerWebform).Invited != 1 {
			t.Fatal("first webform invitation")
		}
		f.now = f.now.Add(23 * time.Hour)
		if r := invite(optin.TriggerWebform); r.Invited != 0 || r.Skipped[optin.SkipRecentlyInvited] != 1 {
			t.Fatalf("second webform invitation within a day: %+v", r)
		}
		f.now = f.now.Add(2 * time.Hour)
		if invite(optin.TriggerWebform).Invited != 1 {
			t.Fatal("webform invitation after a day")
		}
		if invite(optin.TriggerAPI).Invited != 1 {
			t.Fatal("a user's invitation is not limited")
		}
	})
}

func TestOptOutAfterInvitationWins(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := setUp(t, db)
		id := f.contact(t, "anna@example.com", "")
		f.svc.Invite(ctx, []string{id}, optin.TriggerAPI)
		link := f.links(t, id)[0] // sent before the opt-out
		if _, err := f.svc.Consent.SetOptIn(ctx, id, consent.OptInInput{Status: contactstate.OptOutUser, Channel: consent.ChannelUser,
			Actor: consent.Actor{Kind: consent.ActorUser}, Evidence: consent.Evidence{Method: consent.MethodEnteredByUser}}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Confirm(ctx, link, optin.Evidence{}); !errors.Is(err, optin.ErrNotConfirmed) {
			t.Fatalf("confirmed over an opt-out: %v", err)
		}
		var status string
		db.Read.QueryRow(`SELECT opt_in_status FROM contacts WHERE id = $1`, id).Scan(&status)
		if status != contactstate.OptOutUser {
			t.Fatalf("status %s", status)
		}
	})
}
