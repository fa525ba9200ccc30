package app_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestOldEmailContent: the setting sent_body_days is refused by name out
// of range, on the API and the settings page; the hourly job is
// scheduled; and an email whose content was removed still shows in the
// contact's emails, export and the outbox page, as sent, to its address,
// saying when its content was removed.
func TestOldEmailContent(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		e := start(t, db)
		res, body := e.call("PATCH", "/api/v1/settings", `{"sent_body_days":0}`)
		if res.StatusCode != 400 || !strings.Contains(string(body), "sent_body_days") {
			t.Fatalf("0 days: %d %s", res.StatusCode, body)
		}
		admin := e.firstAdmin()
		if code, body := admin.post(e.srv.URL+"/admin/settings", url.Values{"sent_body_days": {"3651"}}); code != 400 ||
			!strings.Contains(body, `id="sent_body_days-error"`) {
			t.Fatalf("3651 days on the settings page: %d %s", code, body)
		}
		if code, body := admin.post(e.srv.URL+"/admin/settings", url.Values{"sent_body_days": {"7"}}); code != 200 ||
			!strings.Contains(body, `id="sent_body_days" name="sent_body_days" value="7"`) {
			t.Fatalf("7 days on the settings page: %d %s", code, body)
		}
		waitFor(t, func() bool { return count(t, db, `SELECT count(*) FROM jobs WHERE kind = $1`, mail.PruneJob) > 0 })

		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"asa@example.com"}`, 201, &c)
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := mail.Enqueue(tx, mail.Message{ContactID: c.ID, Kind: mail.KindAdHoc, Subject: "About your order", Text: "Hello Åsa"}, time.Now())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		e.smtp.Wait(t, 1)
		waitFor(t, func() bool { return count(t, db, `SELECT count(*) FROM outbox WHERE status = 'sent'`) == 1 })
		p := &mail.Pruner{DB: db, Now: func() time.Time { return time.Now().AddDate(0, 0, 8) }}
		if n, err := p.Run(ctx); err != nil || n != 1 {
			t.Fatalf("pruned %d: %v", n, err)
		}

		var emails []mail.Entry
		e.api("GET", "/api/v1/contacts/"+c.ID+"/emails", "", 200, &emails)
		if len(emails) != 1 || emails[0].Subject != "" || emails[0].ContentRemovedAt == nil || emails[0].Status != mail.StatusSent ||
			emails[0].To != "asa@example.com" || emails[0].SentAt == nil {
			t.Fatalf("emails: %+v", emails)
		}
		var x struct {
			Emails []struct {
				Subject, Status  string
				ContentRemovedAt *time.Time `json:"content_removed_at"`
			}
		}
		e.api("GET", "/api/v1/contacts/"+c.ID+"/export", "", 200, &x)
		if len(x.Emails) != 1 || x.Emails[0].Subject != "" || x.Emails[0].Status != mail.StatusSent || x.Emails[0].ContentRemovedAt == nil {
			t.Fatalf("export: %+v", x.Emails)
		}
		if code, body := admin.get(e.srv.URL + "/admin/outbox"); code != 200 || !strings.Contains(body, "content removed") ||
			!strings.Contains(body, "asa@example.com") || strings.Contains(body, "About your order") {
			t.Fatalf("outbox page: %d %s", code, body)
		}
	})
}
