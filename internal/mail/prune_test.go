package mail_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// content is what the pruner removes from a message, with what it keeps.
type content struct {
	subject, text, html, headers, links string
	status, reason, to                  string
	sent, removed                       sql.NullInt64
}

func contentOf(t testing.TB, db *store.DB, id string) content {
	t.Helper()
	var c content
	if err := db.Read.QueryRow(`SELECT subject, text_body, html_body, headers, links, status, reason, to_address, sent_at, content_removed_at
		FROM outbox WHERE id = $1`, id).Scan(&c.subject, &c.text, &c.html, &c.headers, &c.links, &c.status, &c.reason, &c.to, &c.sent, &c.removed); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPruneRemovesOldContent: messages done with (sent, suppressed,
// failed) and queued longer ago than sent_body_days lose their subject,
// bodies, headers and links, a few per transaction; their status, reason,
// address and times stay, and the contact's history still lists them,
// saying when the content went. Newer messages and those not yet sent,
// however old, keep everything. A shorter setting reaches further back.
func TestPruneRemovesOldContent(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		people := contact.NewService(db, consent.NewService(db))
		who := addContact(t, people, "asa@example.com", "")
		now := time.Now().UTC().Truncate(time.Microsecond)
		queue := func(m mail.Message, daysAgo int, status, reason string) string {
			var id string
			write(t, db, func(tx *store.Tx) error {
				var err error
				if id, err = mail.Enqueue(tx, m, now.AddDate(0, 0, -daysAgo)); err != nil {
					return err
				}
				to, sent := "", any(nil)
				if status == mail.StatusSent {
					to, sent = "asa@example.com", store.Micros(now.AddDate(0, 0, -daysAgo).Add(time.Minute))
				}
				if m.To != "" {
					to = m.To
				}
				_, err = tx.Exec(`UPDATE outbox SET status = $2, reason = $3, to_address = $4, sent_at = $5 WHERE id = $1`, id, status, reason, to, sent)
				return err
			})
			return id
		}
		msg := func(kind, subject string) mail.Message {
			return mail.Message{ContactID: who, Kind: kind, Subject: subject, Text: "Text of " + subject, HTML: "<p>" + subject + "</p>",
				Headers: map[string]string{"X-Test": "1"}}
		}
		old := map[string]string{
			"sent":       queue(msg(mail.KindDoubleOptIn, "Please confirm"), 40, mail.StatusSent, ""),
			"suppressed": queue(msg(mail.KindWorkflow, "Welcome"), 31, mail.StatusSuppressed, mail.ReasonOptedOut),
			"failed":     queue(msg(mail.KindReply, "Re: your question"), 35, mail.StatusFailed, "550 no such user"),
			"operator": queue(mail.Message{To: "privacy@acme.example", Kind: mail.KindOperator, Subject: "A request arrived", Text: "x"},
				60, mail.StatusSent, ""),
		}
		kept := map[string]string{
			"recent": queue(msg(mail.KindConfirmation, "Confirm your change"), 10, mail.StatusSent, ""),
			"queued": queue(msg(mail.KindNotification, "Still waiting"), 90, mail.StatusQueued, "connection refused"),
		}

		p := &mail.Pruner{DB: db, Now: func() time.Time { return now }, Batch: 2}
		if n, err := p.Run(ctx); err != nil || n != len(old) {
			t.Fatalf("pruned %d of %d: %v", n, len(old), err)
		}
		for name, id := range old {
			c := contentOf(t, db, id)
			if c.subject != "" || c.text != "" || c.html != "" || c.headers != "{}" || c.links != "[]" {
				t.Errorf("%s: content kept: %+v", name, c)
			}
			if !c.removed.Valid || store.FromMicros(c.removed.Int64) != now {
				t.Errorf("%s: content_removed_at %v", name, c.removed)
			}
			if c.status != map[string]string{"sent": "sent", "operator": "sent", "suppressed": "suppressed", "failed": "failed"}[name] || c.to == "" && c.status == "sent" {
				t.Errorf("%s: status or address lost: %+v", name, c)
			}
		}
		if c := contentOf(t, db, old["failed"]); c.reason != "550 no such user" {
			t.Errorf("failed: reason %q", c.reason)
		}
		if c := contentOf(t, db, old["sent"]); c.to != "asa@example.com" || !c.sent.Valid {
			t.Errorf("sent: address or time lost: %+v", c)
		}
		for name, id := range kept {
			if c := contentOf(t, db, id); c.subject == "" || c.text == "" || c.html == "" || c.headers == "{}" || c.removed.Valid {
				t.Errorf("%s: content removed: %+v", name, c)
			}
		}

		entries, err := mail.ContactEntries(ctx, db, who)
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]mail.Entry{}
		for _, e := range entries {
			byID[e.ID] = e
		}
		if len(entries) != 5 {
			t.Fatalf("history lists %d emails, want 5: %+v", len(entries), entries)
		}
		if e := byID[old["sent"]]; e.Subject != "" || e.ContentRemovedAt == nil || !e.ContentRemovedAt.Equal(now) || e.Status != mail.StatusSent ||
			e.To != "asa@example.com" || e.SentAt == nil || e.Kind != mail.KindDoubleOptIn {
			t.Errorf("pruned entry: %+v", e)
		}
		if e := byID[kept["recent"]]; e.Subject != "Confirm your change" || e.ContentRemovedAt != nil {
			t.Errorf("recent entry: %+v", e)
		}

		if n, err := p.Run(ctx); err != nil || n != 0 {
			t.Fatalf("a second run pruned %d: %v", n, err)
		}
		if _, err := settings.Update(ctx, db, settings.Patch{SentBodyDays: ptr(7)}, audit.Actor{Kind: "user"}, now); err != nil {
			t.Fatal(err)
		}
		if n, err := p.Run(ctx); err != nil || n != 1 {
			t.Fatalf("with 7 days: pruned %d, want the recent one: %v", n, err)
		}
		if c := contentOf(t, db, kept["queued"]); c.subject != "Still waiting" || c.removed.Valid {
			t.Errorf("queued message pruned: %+v", c)
		}
	})
}
