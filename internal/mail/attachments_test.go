package mail_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// attachmentsOf counts the attachments the outbox keeps for message id.
func attachmentsOf(t testing.TB, db *store.DB, id string) int {
	t.Helper()
	var n int
	if err := db.Read.QueryRow(`SELECT count(*) FROM outbox_attachments WHERE outbox_id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAttachmentsAreSent: a message's attachments arrive over SMTP after
// its bodies, in order, with their names, types and bytes; a message with
// text only and one with HTML both keep their readable parts. An
// attachment without a file name is refused when queued.
func TestAttachmentsAreSent(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		people := contact.NewService(db, consent.NewService(db))
		who := addContact(t, people, "asa@example.com", "")
		binary := bytes.Repeat([]byte{0, 1, 2, 0xfe, 0xff, '\r', '\n', '.'}, 40) // several base64 lines
		files := []mail.Attachment{
			{Filename: "consent-receipt-1.json", ContentType: "application/json", Data: []byte(`{"receipt":"a.b.c"}`)},
			{Filename: "kvitto för Åsa.bin", Data: binary},
		}
		withHTML := enqueue(t, db, mail.Message{ContactID: who, Kind: mail.KindNotification, Subject: "With HTML",
			Text: "Read me", HTML: "<p>Read me</p>", Attachments: files})
		textOnly := enqueue(t, db, mail.Message{ContactID: who, Kind: mail.KindNotification, Subject: "Text only",
			Text: "Plain words", Attachments: files[:1]})
		if attachmentsOf(t, db, withHTML) != 2 || attachmentsOf(t, db, textOnly) != 1 {
			t.Fatal("attachments not queued with their messages")
		}

		srv := mailtest.Start(t)
		tr, err := mail.NewSMTP(srv.URL(), 1)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if _, err := newDeliverer(db, tr, time.Now).RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		got := map[string]mailtest.Message{}
		for _, m := range srv.Wait(t, 2) {
			got[m.Subject] = m
		}
		h := got["With HTML"]
		if strings.TrimSpace(h.Text) != "Read me" || !strings.Contains(h.HTML, "<p>Read me</p>") || len(h.Attachments) != 2 {
			t.Fatalf("message with HTML: text %q, html %q, %d attachments", h.Text, h.HTML, len(h.Attachments))
		}
		if a := h.Attachments[0]; a.Filename != "consent-receipt-1.json" || a.ContentType != "application/json" || string(a.Data) != `{"receipt":"a.b.c"}` {
			t.Fatalf("first attachment: %q %q %q", a.Filename, a.ContentType, a.Data)
		}
		if a := h.Attachments[1]; a.Filename != "kvitto för Åsa.bin" || a.ContentType != "application/octet-stream" || !bytes.Equal(a.Data, binary) {
			t.Fatalf("second attachment: %q %q %d bytes", a.Filename, a.ContentType, len(a.Data))
		}
		p := got["Text only"]
		if strings.TrimSpace(p.Text) != "Plain words" || p.HTML != "" || len(p.Attachments) != 1 || p.Attachments[0].Filename != "consent-receipt-1.json" {
			t.Fatalf("text-only message: text %q, %d attachments", p.Text, len(p.Attachments))
		}

		err = db.Write(ctx, func(tx *store.Tx) error {
			_, err := mail.Enqueue(tx, mail.Message{ContactID: who, Kind: mail.KindNotification, Subject: "x", Text: "x",
				Attachments: []mail.Attachment{{Data: []byte("x")}}}, time.Now())
			return err
		})
		if err == nil {
			t.Fatal("an attachment without a file name was queued")
		}
	})
}

// TestAttachmentsGoWithTheirMessage: attachments are content: the pruner
// deletes them with the bodies of old messages and keeps those of newer
// ones, erasing a contact deletes those of their messages, and deleting a
// contact deletes them with the messages.
func TestAttachmentsGoWithTheirMessage(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		people := contact.NewService(db, consent.NewService(db))
		asa := addContact(t, people, "asa@example.com", "")
		bo := addContact(t, people, "bo@example.com", "")
		cai := addContact(t, people, "cai@example.com", "")
		now := time.Now().UTC().Truncate(time.Microsecond)
		queue := func(who string, daysAgo int) string {
			var id string
			write(t, db, func(tx *store.Tx) error {
				var err error
				id, err = mail.Enqueue(tx, mail.Message{ContactID: who, Kind: mail.KindNotification, Subject: "Receipt", Text: "x",
					Attachments: []mail.Attachment{{Filename: "a.json", ContentType: "application/json", Data: []byte("{}")},
						{Filename: "b.txt", ContentType: "text/plain", Data: []byte("b")}}}, now.AddDate(0, 0, -daysAgo))
				if err != nil {
					return err
				}
				_, err = tx.Exec(`UPDATE outbox SET status = 'sent', to_address = 'x@example.com', sent_at = $2 WHERE id = $1`, id, store.Micros(now))
				return err
			})
			return id
		}
		old, recent := queue(asa, 40), queue(asa, 2)
		erased, deleted := queue(bo, 1), queue(cai, 1)

		p := &mail.Pruner{DB: db, Now: func() time.Time { return now }, Batch: 1}
		if n, err := p.Run(ctx); err != nil || n != 1 {
			t.Fatalf("pruned %d, want 1: %v", n, err)
		}
		if attachmentsOf(t, db, old) != 0 || contentOf(t, db, old).text != "" {
			t.Fatal("the old message's attachments outlived its content")
		}
		if attachmentsOf(t, db, recent) != 2 {
			t.Fatal("a recent message lost its attachments")
		}

		write(t, db, func(tx *store.Tx) error { return mail.EraseContactsTx(tx, []string{bo}) })
		if attachmentsOf(t, db, erased) != 0 || contentOf(t, db, erased).text != "" {
			t.Fatal("an erased contact's message kept its attachments")
		}

		if err := people.Delete(ctx, cai, consent.Actor{Kind: consent.ActorAPIToken}); err != nil {
			t.Fatal(err)
		}
		if attachmentsOf(t, db, deleted) != 0 {
			t.Fatal("a deleted contact's message left its attachments")
		}
		if attachmentsOf(t, db, recent) != 2 {
			t.Fatal("another contact's message lost its attachments")
		}
	})
}

// TestMailboxShowsAttachments: a message delivered to the dev mailbox is
// listed with its attachments' names, types and sizes, and each
// downloads with its bytes; a message without attachments lists none,
// and once the contact is erased the attachment is no longer found.
func TestMailboxShowsAttachments(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		people := contact.NewService(db, consent.NewService(db))
		who := addContact(t, people, "asa@example.com", "")
		withFiles := enqueue(t, db, mail.Message{ContactID: who, Kind: mail.KindNotification, Subject: "Receipt", Text: "Here",
			Attachments: []mail.Attachment{{Filename: "consent-receipt-1.json", ContentType: "application/json", Data: []byte(`{"receipt":"a.b.c"}`)},
				{Filename: "kvitto.bin", Data: []byte{0, 1, 2}}}})
		plain := enqueue(t, db, mail.Message{ContactID: who, Kind: mail.KindNotification, Subject: "Plain", Text: "Words"})
		if _, err := newDeliverer(db, &mail.Mailbox{DB: db, Now: time.Now}, time.Now).RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		msgs, err := mail.MailboxMessages(ctx, db, 10)
		if err != nil || len(msgs) != 2 {
			t.Fatalf("mailbox: %d messages, %v", len(msgs), err)
		}
		for _, m := range msgs {
			switch m.ID {
			case withFiles:
				want := []mail.MailboxAttachment{{N: 0, Filename: "consent-receipt-1.json", ContentType: "application/json", Size: 19},
					{N: 1, Filename: "kvitto.bin", ContentType: "application/octet-stream", Size: 3}}
				if len(m.Attachments) != 2 || m.Attachments[0] != want[0] || m.Attachments[1] != want[1] {
					t.Fatalf("attachments listed: %+v", m.Attachments)
				}
			case plain:
				if m.Attachments == nil || len(m.Attachments) != 0 {
					t.Fatalf("a message without attachments lists %+v", m.Attachments)
				}
			default:
				t.Fatalf("a message %s in the mailbox", m.ID)
			}
		}
		a, data, err := mail.MailboxFile(ctx, db, withFiles, 1)
		if err != nil || a.Filename != "kvitto.bin" || !bytes.Equal(data, []byte{0, 1, 2}) {
			t.Fatalf("download: %+v %v %v", a, data, err)
		}
		for _, c := range []struct {
			id string
			n  int
		}{{withFiles, 2}, {plain, 0}, {"no-such-message", 0}} {
			if _, _, err := mail.MailboxFile(ctx, db, c.id, c.n); !errs.Is(err, errs.KindNotFound) {
				t.Errorf("attachment %d of %s: %v, want not found", c.n, c.id, err)
			}
		}
		write(t, db, func(tx *store.Tx) error { return mail.EraseContactsTx(tx, []string{who}) })
		if _, _, err := mail.MailboxFile(ctx, db, withFiles, 0); !errs.Is(err, errs.KindNotFound) {
			t.Fatalf("after the erasure: %v, want not found", err)
		}
	})
}
