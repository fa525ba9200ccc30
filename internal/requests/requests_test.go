package requests_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

func ptr[T any](v T) *T { return &v }

func day(s string) time.Time {
	t, err := time.Parse(time.DateTime, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestDueDate: one calendar month, clamped to the end of a shorter month.
func TestDueDate(t *testing.T) {
	for in, want := range map[string]string{
		"2026-01-15 10:00:00": "2026-02-15 10:00:00",
		"2026-01-31 10:00:00": "2026-02-28 10:00:00",
		"2028-01-31 10:00:00": "2028-02-29 10:00:00",
		"2026-03-31 23:59:59": "2026-04-30 23:59:59",
		"2026-12-31 00:00:00": "2027-01-31 00:00:00",
	} {
		if got := requests.DueDate(day(in)); !got.Equal(day(want)) {
			t.Errorf("DueDate(%s) = %s, want %s", in, got, want)
		}
	}
}

var user = consent.Actor{Kind: consent.ActorUser, ID: "u1"}

// TestRequestLifecycle: a request is recorded with its deadline, the
// operator is emailed, it moves through its statuses with a ledger event
// each, its deadline extends once, refusing needs a reason, and a closed
// request is final and forgets the sender's address. The ledger verifies
// throughout.
func TestRequestLifecycle(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		cs := consent.NewService(db)
		people := contact.NewService(db, cs)
		c, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("anna@example.com")},
			Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := settings.Update(ctx, db, settings.Patch{PrivacyAddress: ptr("privacy@operator.example")}, audit.Actor{Kind: "user"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		tmpl, err := mail.NewTemplates()
		if err != nil {
			t.Fatal(err)
		}
		notify := requests.NotifyOperator(tmpl, "https://consentry.example", "Operator")
		t0 := day("2026-01-31 09:00:00")
		create := func(in requests.New) (*requests.Request, error) {
			var r *requests.Request
			err := db.Write(ctx, func(tx *store.Tx) error {
				var err error
				r, err = requests.CreateTx(tx, in, notify, t0)
				return err
			})
			return r, err
		}
		for _, bad := range []struct {
			in    requests.New
			field string
		}{
			{requests.New{Kind: "forget", Channel: requests.ChannelAPI, ContactID: c.ID, Actor: user}, "kind"},
			{requests.New{Kind: requests.KindErasure, Channel: "fax", ContactID: c.ID, Actor: user}, "channel"},
			{requests.New{Kind: requests.KindErasure, Channel: requests.ChannelAPI, Actor: user}, "contact_id"},
			{requests.New{Kind: requests.KindErasure, Channel: requests.ChannelAPI, ContactID: "nobody", Actor: user}, "contact_id"},
			{requests.New{Kind: requests.KindErasure, Channel: requests.ChannelAPI, Address: "Anna <anna@example.com>", Actor: user}, "address"},
			{requests.New{Kind: requests.KindErasure, Channel: requests.ChannelAPI, Address: "not an address", Actor: user}, "address"},
		} {
			if _, err := create(bad.in); errs.As(err) == nil || errs.As(err).Field != bad.field {
				t.Errorf("%+v: want an error on %s, got %v", bad.in, bad.field, err)
			}
		}
		erase, err := create(requests.New{Kind: requests.KindErasure, Channel: requests.ChannelUser, ContactID: c.ID, Actor: user})
		if err != nil {
			t.Fatal(err)
		}
		if erase.Status != requests.StatusReceived || !erase.DueAt.Equal(day("2026-02-28 09:00:00")) {
			t.Fatalf("new request: %+v", erase)
		}
		unknown, err := create(requests.New{Kind: requests.KindAccess, Channel: requests.ChannelEmail, Address: "who@example.net",
			Actor: consent.Actor{Kind: consent.ActorSystem}})
		if err != nil {
			t.Fatal(err)
		}
		var queued int
		if err := db.Read.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE kind = 'operator' AND subject_id IN ($1, $2)`,
			erase.ID, unknown.ID).Scan(&queued); err != nil || queued != 2 {
			t.Fatalf("operator emails queued: %d, %v", queued, err)
		}

		// The operator's email leaves through the outbox to the privacy
		// address, with no personal data in it.
		d := &mail.Deliverer{DB: db, Transport: &mail.Mailbox{DB: db, Now: time.Now}, Log: slog.New(slog.DiscardHandler), From: "consentry@operator.example",
			Domain: "operator.example", Now: time.Now, Batch: 10, Lease: time.Minute, MaxAttempts: 3, BaseURL: "https://consentry.example"}
		if n, err := d.RunDue(ctx); err != nil || n != 2 {
			t.Fatalf("delivered %d, %v", n, err)
		}
		msgs, err := mail.MailboxMessages(ctx, db, 10)
		if err != nil || len(msgs) != 2 {
			t.Fatalf("mailbox: %d %v", len(msgs), err)
		}
		for _, m := range msgs {
			if m.To != "privacy@operator.example" || strings.Contains(m.Text, "@example") || !strings.Contains(m.Text, "https://consentry.example/admin/requests/") {
				t.Fatalf("operator email: to %s, text %q", m.To, m.Text)
			}
		}

		at := t0.Add(40 * 24 * time.Hour) // past the first due date
		list, err := requests.List(ctx, db.Read, requests.Query{Open: true}, at)
		if err != nil || len(list) != 2 || list[0].ID != erase.ID || !list[0].Overdue || list[0].DaysLeft >= 0 {
			t.Fatalf("open requests, overdue first: %+v %v", list, err)
		}
		if _, err := requests.List(ctx, db.Read, requests.Query{Status: "lost"}, at); errs.As(err) == nil || errs.As(err).Field != "status" {
			t.Fatalf("an unknown status filter: %v", err)
		}

		update := func(id string, c requests.Change) (*requests.Request, error) {
			return requests.Update(ctx, db, id, c, user, at)
		}
		r, err := update(erase.ID, requests.Change{Extend: &requests.Extension{Months: 2, Reason: "many requests at once"}})
		if err != nil || !r.DueAt.Equal(day("2026-04-28 09:00:00")) || r.Overdue {
			t.Fatalf("extended: %+v %v", r, err)
		}
		if _, err := update(erase.ID, requests.Change{Extend: &requests.Extension{Months: 1, Reason: "again"}}); !errs.Is(err, errs.KindConflict) {
			t.Fatalf("a second extension: %v", err)
		}
		if _, err := update(unknown.ID, requests.Change{Extend: &requests.Extension{Months: 3, Reason: "x"}}); errs.As(err) == nil || errs.As(err).Field != "extend.months" {
			t.Fatalf("three months: %v", err)
		}
		if _, err := update(erase.ID, requests.Change{Status: ptr(requests.StatusRefused)}); errs.As(err) == nil || errs.As(err).Field != "reason" {
			t.Fatalf("refused without a reason: %v", err)
		}
		if _, err := update(erase.ID, requests.Change{Status: ptr(requests.StatusInProgress)}); err != nil {
			t.Fatal(err)
		}
		r, err = update(unknown.ID, requests.Change{Status: ptr(requests.StatusRefused), Reason: ptr("no data is held about this address")})
		if err != nil || r.ClosedAt == nil || r.Address != "" {
			t.Fatalf("refused: %+v %v", r, err)
		}
		if _, err := update(unknown.ID, requests.Change{Status: ptr(requests.StatusDone)}); !errs.Is(err, errs.KindConflict) {
			t.Fatalf("a closed request changed: %v", err)
		}
		if closed, err := requests.List(ctx, db.Read, requests.Query{Closed: true}, at); err != nil || len(closed) != 1 || closed[0].ID != unknown.ID {
			t.Fatalf("closed requests: %+v %v", closed, err)
		}
		var addr string
		if err := db.Read.QueryRowContext(ctx, `SELECT address FROM subject_requests WHERE id = $1`, unknown.ID).Scan(&addr); err != nil || addr != "" {
			t.Fatalf("a closed request kept the address %q (%v)", addr, err)
		}
		err = db.Write(ctx, func(tx *store.Tx) error {
			moved, err := requests.SetStatusTx(tx, c.ID, requests.KindErasure, requests.StatusDone, "", consent.Actor{Kind: consent.ActorSystem}, at)
			if err == nil && len(moved) != 1 {
				t.Errorf("moved %d requests", len(moved))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var events int
		if err := db.Read.QueryRowContext(ctx, `SELECT count(*) FROM ledger_events WHERE kind = 'request'`).Scan(&events); err != nil || events != 5 {
			t.Fatalf("request events: %d, %v", events, err)
		}
		rep, err := cs.VerifyLedger(ctx)
		if err != nil || !rep.OK {
			t.Fatalf("ledger: %+v %v", rep, err)
		}
		if open, overdue, err := requests.CountOpen(ctx, db.Read, at); err != nil || open != 0 || overdue != 0 {
			t.Fatalf("open %d overdue %d %v", open, overdue, err)
		}
	})
}
