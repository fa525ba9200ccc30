package app_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestMailboxAttachments: a message in the dev mailbox lists its
// attachments on the admin page and the local mailbox page, and each
// downloads as a file to save; a wrong number or message is not found,
// and the admin download needs a signed-in user who may see the outbox.
func TestMailboxAttachments(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		e.a.Public.Mailbox = true
		ctx := context.Background()
		var id string
		if err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			id, err = mail.Enqueue(tx, mail.Message{To: "privacy@acme.example", Kind: mail.KindOperator, Subject: "Your receipt", Text: "Attached.",
				Attachments: []mail.Attachment{{Filename: "consent-receipt-1.json", ContentType: "application/json", Data: []byte(`{"receipt":"a.b.c"}`)}}}, time.Now())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		box := &mail.Mailbox{DB: db, Now: time.Now}
		if errs := box.Send(ctx, []*mail.Envelope{{OutboxID: id, To: "privacy@acme.example", From: "news@acme.example", Subject: "Your receipt", Text: "Attached."}}); errs[0] != nil {
			t.Fatal(errs[0])
		}
		download := func(c *http.Client, u string) (*http.Response, string) {
			t.Helper()
			res, err := c.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			return res, string(b)
		}

		admin := e.firstAdmin()
		link := "/admin/mailbox/" + id + "/attachments/0"
		if _, body := admin.get(e.srv.URL + "/admin/mailbox"); !strings.Contains(body, `<a href="`+link+`" download>consent-receipt-1.json</a>`) ||
			!strings.Contains(body, "application/json, 19 bytes") {
			t.Fatalf("the admin mailbox: %s", body)
		}
		res, body := download(admin.client, e.srv.URL+link)
		if res.StatusCode != 200 || body != `{"receipt":"a.b.c"}` || res.Header.Get("Content-Type") != "application/json" ||
			res.Header.Get("Content-Disposition") != "attachment; filename=consent-receipt-1.json" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("the admin download: %d %v %s", res.StatusCode, res.Header, body)
		}
		for _, bad := range []string{"/attachments/1", "/attachments/-1", "/attachments/x"} {
			if res, _ := download(admin.client, e.srv.URL+"/admin/mailbox/"+id+bad); res.StatusCode != 404 {
				t.Errorf("%s: %d, want 404", bad, res.StatusCode)
			}
		}
		if res, _ := download(admin.client, e.srv.URL+"/admin/mailbox/nope/attachments/0"); res.StatusCode != 404 {
			t.Errorf("another message: %d, want 404", res.StatusCode)
		}
		if res, body := download(e.visitor().client, e.srv.URL+link); res.Request.URL.Path != "/admin/login" || strings.Contains(body, "a.b.c") {
			t.Fatalf("signed out: %d at %s: %s", res.StatusCode, res.Request.URL, body)
		}

		local := "/dev/mailbox/" + id + "/attachments/0"
		if _, body := download(http.DefaultClient, e.srv.URL+"/dev/mailbox"); !strings.Contains(body, `<a href="`+local+`" download>consent-receipt-1.json</a>`) {
			t.Fatalf("the local mailbox: %s", body)
		}
		if res, body := download(http.DefaultClient, e.srv.URL+local); res.StatusCode != 200 || body != `{"receipt":"a.b.c"}` ||
			res.Header.Get("Content-Disposition") != "attachment; filename=consent-receipt-1.json" {
			t.Fatalf("the local download: %d %v %s", res.StatusCode, res.Header, body)
		}
		if res, _ := download(http.DefaultClient, e.srv.URL+"/dev/mailbox/"+id+"/attachments/7"); res.StatusCode != 404 {
			t.Fatalf("a missing attachment: %d", res.StatusCode)
		}
	})
}
