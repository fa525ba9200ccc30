package mail_test

import (
	"context"
	"log/slog"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

func ptr[T any](v T) *T { return &v }

func newDeliverer(db *store.DB, tr mail.Transport, now func() time.Time) *mail.Deliverer {
	return &mail.Deliverer{DB: db, Transport: tr, Log: slog.New(slog.DiscardHandler), From: "Acme <news@acme.example>",
		Domain: "acme.example", Now: now, Batch: 50, Lease: time.Minute, MaxAttempts: 3, Poll: time.Second}
}

func addContact(t testing.TB, people *contact.Service, email, optIn string) string {
	t.Helper()
	c, err := people.Create(context.Background(), contact.NewContact{Input: contact.Input{Email: &email}, OptInStatus: optIn,
		Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func exec(t testing.TB, db *store.DB, q string, args ...any) {
	t.Helper()
	write(t, db, func(tx *store.Tx) error { _, err := tx.Exec(q, args...); return err })
}

func write(t testing.TB, db *store.DB, fn func(tx *store.Tx) error) {
	t.Helper()
	if err := db.Write(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func enqueue(t testing.TB, db *store.DB, m mail.Message) string {
	t.Helper()
	var id string
	if err := db.Write(context.Background(), func(tx *store.Tx) error {
		var err error
		id, err = mail.Enqueue(tx, m, time.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

func outboxRow(t testing.TB, db *store.DB, id string) (status, reason, to string) {
	t.Helper()
	if err := db.Read.QueryRow(`SELECT status, reason, to_address FROM outbox WHERE id = $1`, id).Scan(&status, &reason, &to); err != nil {
		t.Fatal(err)
	}
	return
}

// TestDeliveryThroughTheGate queues email of several kinds for contacts in
// several states, delivers over SMTP to a real server, and checks what
// arrived, where, and why the rest did not.
func TestDeliveryThroughTheGate(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		people := contact.NewService(db, consent.NewService(db))
		fine := addContact(t, people, "fine@example.com", "")
		out := addContact(t, people, "out@example.com", contactstate.OptOutUser)
		bounced := addContact(t, people, "bounced@example.com", "")
		stopped := addContact(t, people, "stopped@example.com", "")
		gone := addContact(t, people, "gone@example.com", "")
		write(t, db, func(tx *store.Tx) error {
			st, err := contactstate.Load(tx, bounced)
			if err != nil {
				return err
			}
			if err := contactstate.RecordBounceTx(tx, &st, true, 0, time.Now()); err != nil {
				return err
			}
			return contactstate.StopProcessingTx(tx, stopped, time.Now())
		})
		exec(t, db, `INSERT INTO conversations (id, contact_id, started_by, created_at) VALUES ('conv1', $1, 'contact', 0)`, out)

		ids := map[string]string{
			"fine adhoc":         enqueue(t, db, mail.Message{ContactID: fine, Kind: mail.KindAdHoc, Subject: "Hello", Text: "Hi https://acme.example/x", Headers: map[string]string{"X-Campaign": "7"}}),
			"fine campaign":      enqueue(t, db, mail.Message{ContactID: fine, Kind: mail.KindCampaign, Subject: "Offer", Text: "Buy"}),
			"out workflow":       enqueue(t, db, mail.Message{ContactID: out, Kind: mail.KindWorkflow, Subject: "Wf", Text: "x"}),
			"out reply":          enqueue(t, db, mail.Message{ContactID: out, Kind: mail.KindReply, Subject: "Re: your question", Text: "Answer", ConversationID: "conv1"}),
			"out confirmation":   enqueue(t, db, mail.Message{ContactID: out, Kind: mail.KindConfirmation, Subject: "Confirm", Text: "Link"}),
			"bounced adhoc":      enqueue(t, db, mail.Message{ContactID: bounced, Kind: mail.KindAdHoc, Subject: "x", Text: "x"}),
			"stopped confirm":    enqueue(t, db, mail.Message{ContactID: stopped, Kind: mail.KindConfirmation, Subject: "Erase?", Text: "x"}),
			"stopped adhoc":      enqueue(t, db, mail.Message{ContactID: stopped, Kind: mail.KindAdHoc, Subject: "x", Text: "x"}),
			"gone double opt-in": enqueue(t, db, mail.Message{ContactID: gone, Kind: mail.KindDoubleOptIn, Subject: "x", Text: "x"}),
		}
		// The contact changes address after the message was queued: it goes
		// to the address on file at send time.
		if _, err := people.Update(ctx, fine, contact.Input{Email: ptr("fine.new@example.com")}); err != nil {
			t.Fatal(err)
		}
		write(t, db, func(tx *store.Tx) error { return contactstate.MarkErasedTx(tx, gone, time.Now()) }) // a remainder is kept

		srv := mailtest.Start(t)
		tr, err := mail.NewSMTP(srv.URL(), 2)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		d := newDeliverer(db, tr, time.Now)
		if n, err := d.RunDue(ctx); err != nil || n != len(ids) {
			t.Fatalf("RunDue: %d, %v", n, err)
		}
		got := srv.Wait(t, 4)
		var subjects []string
		for _, m := range got {
			subjects = append(subjects, m.Header.Get("Subject")+" -> "+strings.Join(m.To, ","))
		}
		sort.Strings(subjects)
		want := []string{"Confirm -> out@example.com", "Erase? -> stopped@example.com", "Hello -> fine.new@example.com", "Re: your question -> out@example.com"}
		if strings.Join(subjects, "|") != strings.Join(want, "|") {
			t.Fatalf("received %v, want %v", subjects, want)
		}
		for _, m := range got {
			if m.Header.Get("Subject") == "Hello" {
				if m.Header.Get("X-Campaign") != "7" || !strings.HasSuffix(m.Header.Get("Message-Id"), "@acme.example>") ||
					len(m.Links()) != 1 || !strings.Contains(m.Header.Get("From"), "news@acme.example") {
					t.Fatalf("message: %v %q", m.Header, m.Text)
				}
			}
		}
		wantRows := map[string][2]string{
			"fine adhoc":         {mail.StatusSent, ""},
			"fine campaign":      {mail.StatusSuppressed, mail.ReasonNoConsent},
			"out workflow":       {mail.StatusSuppressed, mail.ReasonOptedOut},
			"out reply":          {mail.StatusSent, ""},
			"out confirmation":   {mail.StatusSent, ""},
			"bounced adhoc":      {mail.StatusSuppressed, mail.ReasonBounced},
			"stopped confirm":    {mail.StatusSent, ""},
			"stopped adhoc":      {mail.StatusSuppressed, mail.ReasonProcessingStopped},
			"gone double opt-in": {mail.StatusSuppressed, mail.ReasonErased},
		}
		for name, id := range ids {
			status, reason, to := outboxRow(t, db, id)
			if status != wantRows[name][0] || reason != wantRows[name][1] {
				t.Errorf("%s: %s %q, want %v", name, status, reason, wantRows[name])
			}
			if name == "fine adhoc" && to != "fine.new@example.com" {
				t.Errorf("sent to %q", to)
			}
		}
		if n, _ := d.RunDue(ctx); n != 0 {
			t.Fatalf("a second run handled %d messages", n)
		}
	})
}

// TestUnreachableServerIsRetried sends to a port where nothing listens: the
// message stays queued with the error and a later run time, then fails for
// good after the last attempt.
func TestUnreachableServerIsRetried(t *testing.T) {
	db := storetest.OpenSQLite(t)
	people := contact.NewService(db, consent.NewService(db))
	id := enqueue(t, db, mail.Message{ContactID: addContact(t, people, "a@example.com", ""), Kind: mail.KindAdHoc, Subject: "x", Text: "x"})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	tr, err := mail.NewSMTP("smtp://"+addr+"?tls=none", 1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	d := newDeliverer(db, tr, func() time.Time { return now })
	for attempt := 1; attempt <= 3; attempt++ {
		if n, err := d.RunDue(context.Background()); err != nil || n != 1 {
			t.Fatalf("attempt %d: %d, %v", attempt, n, err)
		}
		status, reason, _ := outboxRow(t, db, id)
		want := mail.StatusQueued
		if attempt == 3 {
			want = mail.StatusFailed
		}
		if status != want || reason == "" {
			t.Fatalf("after attempt %d: %s %q", attempt, status, reason)
		}
		if n, _ := d.RunDue(context.Background()); n != 0 {
			t.Fatal("retried before the backoff was over")
		}
		now = now.Add(2 * time.Hour)
	}
}

// TestDeletingAContactForgetsItsEmail: the outbox and the dev mailbox keep
// nothing of a deleted contact: not their address, not what was written.
func TestDeletingAContactForgetsItsEmail(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		people := contact.NewService(db, consent.NewService(db))
		id := addContact(t, people, "gone@example.com", "")
		enqueue(t, db, mail.Message{ContactID: id, Kind: mail.KindAdHoc, Subject: "Dear Gone", Text: "x"})
		enqueue(t, db, mail.Message{ContactID: id, Kind: mail.KindAdHoc, Subject: "Dear Gone again", Text: "x"})
		d := newDeliverer(db, &mail.Mailbox{DB: db, Now: time.Now}, time.Now)
		if _, err := d.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		if err := people.Delete(ctx, id, consent.Actor{Kind: consent.ActorAPIToken}); err != nil {
			t.Fatal(err)
		}
		var n int
		db.Read.QueryRow(`SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM mailbox WHERE to_address LIKE '%gone%')`).Scan(&n)
		if n != 0 {
			t.Fatalf("%d messages of a deleted contact remain", n)
		}
	})
}

// TestRefusedAddressIsAHardBounce: the server refuses the recipient as
// non-existent; the message fails for good and the address counts as
// bounced, so the gate stops the next message.
func TestRefusedAddressIsAHardBounce(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		people := contact.NewService(db, consent.NewService(db))
		id := addContact(t, people, "nobody@example.com", "")
		first := enqueue(t, db, mail.Message{ContactID: id, Kind: mail.KindAdHoc, Subject: "x", Text: "x"})
		srv := mailtest.Start(t)
		srv.Unknown = map[string]bool{"nobody@example.com": true}
		tr, err := mail.NewSMTP(srv.URL(), 1)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		d := newDeliverer(db, tr, time.Now)
		if _, err := d.RunDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if status, reason, _ := outboxRow(t, db, first); status != mail.StatusFailed || !strings.Contains(reason, "550") {
			t.Fatalf("refused message: %s %q", status, reason)
		}
		var deliverability string
		db.Read.QueryRow(`SELECT deliverability FROM contacts WHERE id = $1`, id).Scan(&deliverability)
		if deliverability != "bounced" {
			t.Fatalf("after a refused address: %s", deliverability)
		}
		second := enqueue(t, db, mail.Message{ContactID: id, Kind: mail.KindAdHoc, Subject: "y", Text: "y"})
		d.RunDue(context.Background())
		if status, reason, _ := outboxRow(t, db, second); status != mail.StatusSuppressed || reason != mail.ReasonBounced {
			t.Fatalf("next message: %s %q", status, reason)
		}
	})
}

// TestPersonalLinksAreMadeAsTheyAreSent: a message with a personal link is
// queued with the link's placeholder only; the token is issued when the
// message is sent, the link arrives over SMTP in both bodies and works for
// its purpose, and the outbox never holds it. A message with links needs a
// contact.
func TestPersonalLinksAreMadeAsTheyAreSent(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		people := contact.NewService(db, consent.NewService(db))
		to := addContact(t, people, "lena@example.com", "")
		expires := time.Now().Add(48 * time.Hour)
		link := mail.NewLink(auth.PurposePreferencesChange, "change-1", expires)
		url := "https://consent.example/p/confirm/" + link.Placeholder
		// The real templates, so that the placeholder is seen as their
		// escaping leaves it, in text and in an HTML attribute.
		tmpl, err := mail.NewTemplates()
		if err != nil {
			t.Fatal(err)
		}
		text, html, err := tmpl.Render("preferences_change", map[string]any{"Lang": "sv", "Name": "Lena", "Link": url, "Hours": 48, "Sender": settings.Controller{Name: "Acme"}})
		if err != nil || !strings.Contains(html, `href="`+url+`"`) || !strings.Contains(text, url) {
			t.Fatalf("rendered (%v):\n%s\n%s", err, text, html)
		}
		id := enqueue(t, db, mail.Message{ContactID: to, Kind: mail.KindConfirmation, Subject: "Confirm", Text: text,
			HTML: html, SubjectID: "change-1", Links: []mail.Link{link}})
		// Two that cannot go: a link that expired while the message waited,
		// and links that cannot be read; neither holds up the first.
		late := enqueue(t, db, mail.Message{ContactID: to, Kind: mail.KindConfirmation, Subject: "Late", Text: "x",
			Links: []mail.Link{mail.NewLink(auth.PurposePreferencesChange, "change-0", time.Now().Add(-time.Minute))}})
		broken := enqueue(t, db, mail.Message{ContactID: to, Kind: mail.KindConfirmation, Subject: "Broken", Text: "x"})
		exec(t, db, `UPDATE outbox SET links = 'not json' WHERE id = $1`, broken)
		var tokens int
		if err := db.Read.QueryRow(`SELECT count(*) FROM tokens`).Scan(&tokens); err != nil || tokens != 0 {
			t.Fatalf("%d tokens before sending (%v)", tokens, err)
		}
		srv := mailtest.Start(t)
		tr, err := mail.NewSMTP(srv.URL(), 1)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if n, err := newDeliverer(db, tr, time.Now).RunDue(ctx); err != nil || n != 3 {
			t.Fatalf("RunDue: %d, %v", n, err)
		}
		got := srv.Wait(t, 1)[0]
		for msg, want := range map[string]string{late: mail.ReasonLinkExpired, broken: mail.ReasonLinksUnreadable, id: ""} {
			if status, reason, _ := outboxRow(t, db, msg); reason != want || (want != "") != (status == mail.StatusSuppressed) {
				t.Errorf("message %s: %s %q, want reason %q", msg, status, reason, want)
			}
		}
		links := got.Links()
		if len(links) != 1 || !strings.HasPrefix(links[0], "https://consent.example/p/confirm/") || strings.Contains(links[0], link.Placeholder) {
			t.Fatalf("received links %v in %q", links, got.Text)
		}
		secret := strings.TrimPrefix(links[0], "https://consent.example/p/confirm/")
		if !strings.Contains(got.HTML, `href="`+links[0]+`"`) {
			t.Fatalf("the HTML body does not carry the link: %s", got.HTML)
		}
		if err := db.Read.QueryRow(`SELECT count(*) FROM tokens`).Scan(&tokens); err != nil || tokens != 1 {
			t.Fatalf("%d tokens after sending (%v), want the sent link's only", tokens, err)
		}
		tok, err := auth.FindContactToken(db.Read, auth.PurposePreferencesChange, secret, time.Now())
		if err != nil || tok.ContactID != to || tok.SubjectID != "change-1" || !tok.ExpiresAt.Equal(expires.UTC().Truncate(time.Microsecond)) {
			t.Fatalf("token %+v, %v", tok, err)
		}
		if _, err := auth.FindContactToken(db.Read, auth.PurposePreferences, secret, time.Now()); err == nil {
			t.Fatal("the link works for another purpose")
		}
		var held int
		if err := db.Read.QueryRow(`SELECT count(*) FROM outbox WHERE id = $1 AND (text_body LIKE '%' || $2 || '%' OR html_body LIKE '%' || $2 || '%')`,
			id, secret).Scan(&held); err != nil || held != 0 {
			t.Fatalf("the outbox holds the link (%v)", err)
		}
		err = db.Write(ctx, func(tx *store.Tx) error {
			_, err := mail.Enqueue(tx, mail.Message{Kind: mail.KindAdHoc, Subject: "x", Text: link.Placeholder, Links: []mail.Link{link}}, time.Now())
			return err
		})
		if err == nil {
			t.Fatal("a message with links and no contact was queued")
		}
	})
}
