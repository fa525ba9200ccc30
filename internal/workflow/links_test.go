package workflow_test

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestTagsInWorkflowLinksArePercentEncoded: a workflow email that puts a
// contact's name into a link's address fills it in percent-encoded, as a
// campaign does (the same code does both), so that "&", "?", a space,
// "#" and letters beyond ASCII stay one value of the address, in the
// HTML and the plain-text part alike; outside an address the name is as
// written (escaped in HTML). The preferences link inside another address
// is encoded too, and still gets its token as the email is sent. Checked
// on the message a real SMTP server receives.
func TestTagsInWorkflowLinksArePercentEncoded(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		w.rule(`{"name": "Offer", "trigger": "consent.granted", "actions": [
			{"type": "email_contact", "subject": "For {{first_name}}",
			 "text": "Hello {{first_name}},\nyour offer: https://shop.example/?name={{first_name}}&ref=wf\n",
			 "html": "<p>Hello {{first_name}},</p><p><a href=\"https://shop.example/?name={{ first_name }}&amp;ref=wf\">Your offer</a> <a href=\"https://shop.example/back?to={{preferences_url}}\">Back</a> <a href=\"{{unsubscribe_url}}\">Leave</a></p>"}]}`)
		const name = "Zoë & Co? #1"
		c, err := w.people.Create(context.Background(), contact.NewContact{Input: contact.Input{Email: ptr("zoe@example.com"), FirstName: ptr(name)},
			OptInStatus: contactstate.SingleOptInUser, Actor: api, Evidence: consent.Evidence{Method: consent.MethodAPI}})
		if err != nil {
			t.Fatal(err)
		}
		// Marketing email needs what a campaign for E-marketing needs.
		if err := w.db.Write(context.Background(), func(tx *store.Tx) error {
			return contactstate.SetOptInTx(tx, c.ID, contactstate.DoubleOptIn, w.now)
		}); err != nil {
			t.Fatal(err)
		}
		w.record(c.ID, "E-marketing", consent.StateGranted)
		w.runDue()
		w.record(c.ID, "Share with partners", consent.StateGranted)
		w.runDue()
		srv, d := w.smtp()
		if _, err := d.RunDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		m := srv.Wait(t, 1)[0]
		text := strings.ReplaceAll(m.Text, "\r\n", "\n")
		const encoded = "Zo%C3%AB%20%26%20Co%3F%20%231"
		if got, err := url.QueryUnescape(encoded); err != nil || got != name {
			t.Fatalf("the test's own encoding: %q %v", got, err)
		}
		if m.Subject != "For "+name || !strings.Contains(text, "Hello "+name+",\n") ||
			!strings.Contains(text, "your offer: https://shop.example/?name="+encoded+"&ref=wf\n") {
			t.Errorf("the plain-text part:\n%s", text)
		}
		if !strings.Contains(m.HTML, "<p>Hello Zoë &amp; Co? #1,</p>") ||
			!strings.Contains(m.HTML, `<a href="https://shop.example/?name=`+encoded+`&amp;ref=wf">Your offer</a>`) {
			t.Errorf("the HTML part:\n%s", m.HTML)
		}
		back := regexp.MustCompile(`<a href="https://shop\.example/back\?to=([^"]+)">Back</a>`).FindStringSubmatch(m.HTML)
		if back == nil {
			t.Fatalf("no link back:\n%s", m.HTML)
		}
		prefs, err := url.QueryUnescape(back[1])
		if err != nil || !regexp.MustCompile(`^https://consent\.example/p/[A-Za-z0-9_-]{43}$`).MatchString(prefs) {
			t.Errorf("the preferences link inside the address: %q (%v)", back[1], err)
		}
		if !regexp.MustCompile(`<a href="https://consent\.example/u/[A-Za-z0-9_-]+">Leave</a>`).MatchString(m.HTML) || strings.Contains(m.HTML, "{{") {
			t.Errorf("the unsubscribe link:\n%s", m.HTML)
		}
	})
}
