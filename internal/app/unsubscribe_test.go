package app_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// testClock is the wall clock moved forward by the test, for the services
// that decide whether a link still works.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// TestUnsubscribeLinkLifetime: the unsubscribe link of a marketing email
// opts out with one click for as long as the setting unsubscribe_link_days
// says (365 days at least, and by default); past that, opening or posting
// it answers 410 with the page of a link that cannot be used and changes nothing, and that
// page's form emails a new preferences link to a known address only,
// answering the same for any address.
func TestUnsubscribeLinkLifetime(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		clock := &testClock{}
		// The jobs too: a new link is emailed by a job, due when the
		// request that wrote it says it is.
		e := start(t, db, func(a *app.App) { a.Prefs.Now = clock.Now; a.Deliverer.Now = clock.Now; a.Jobs.Now = clock.Now })
		e.api("PATCH", "/api/v1/settings", `{"campaign_opt_in_policy":"double_and_user"}`, 200, nil)
		e.api("PATCH", "/api/v1/settings", `{"unsubscribe_link_days":364}`, 400, nil)
		var st struct {
			UnsubscribeLinkDays int `json:"unsubscribe_link_days"`
		}
		e.api("GET", "/api/v1/settings", "", 200, &st)
		if st.UnsubscribeLinkDays != 365 {
			t.Fatalf("unsubscribe_link_days defaults to %d", st.UnsubscribeLinkDays)
		}
		ids := map[string]string{}
		for _, who := range []string{"ola", "per", "liv"} {
			var c struct{ ID string }
			e.api("POST", "/api/v1/contacts", `{"email":"`+who+`@example.com"}`, 201, &c)
			// Marketing email needs a consent to a marketing purpose and an
			// opt-in status the campaign policy accepts.
			e.api("POST", "/api/v1/contacts/"+c.ID+"/consents", `{"purpose":"E-marketing","state":"granted","source":"Email"}`, 201, nil)
			if err := db.Write(context.Background(), func(tx *store.Tx) error {
				return contactstate.SetOptInTx(tx, c.ID, contactstate.DoubleOptIn, time.Now())
			}); err != nil {
				t.Fatal(err)
			}
			ids[who] = c.ID
		}
		campaign := func(who string) {
			err := db.Write(context.Background(), func(tx *store.Tx) error {
				_, err := mail.Enqueue(tx, mail.Message{ContactID: ids[who], Kind: mail.KindCampaign, Subject: "News",
					Text: "Our news.\n\nUnsubscribe: " + mail.UnsubscribeURL + "\n"}, time.Now())
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		campaign("ola")
		campaign("per")
		e.smtp.Wait(t, 2)
		// Liv's email goes after the operator made links last 400 days, on
		// the admin settings page.
		admin := e.firstAdmin()
		if code, body := admin.post(e.srv.URL+"/admin/settings", url.Values{"unsubscribe_link_days": {"30"}}); code != 400 ||
			!strings.Contains(body, `id="unsubscribe_link_days-error"`) {
			t.Fatalf("30 days on the settings page: %d %s", code, body)
		}
		if code, body := admin.post(e.srv.URL+"/admin/settings", url.Values{"unsubscribe_link_days": {"400"}}); code != 200 ||
			!strings.Contains(body, `id="unsubscribe_link_days" name="unsubscribe_link_days" value="400"`) {
			t.Fatalf("400 days on the settings page: %d %s", code, body)
		}
		campaign("liv")
		links := map[string]string{}
		for _, m := range e.smtp.Wait(t, 3) {
			links[strings.TrimSuffix(m.To[0], "@example.com")] = strings.Trim(m.Header.Get("List-Unsubscribe"), "<>")
		}
		// The clock moves only once every email is marked sent.
		waitFor(t, func() bool { return count(t, db, `SELECT count(*) FROM outbox WHERE status = 'sent'`) == 3 })
		oneClick := func(link string) (int, string) {
			res, err := http.Post(link, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}
		status := func(who string) string {
			var c struct {
				OptInStatus string `json:"opt_in_status"`
			}
			e.api("GET", "/api/v1/contacts/"+ids[who], "", 200, &c)
			return c.OptInStatus
		}

		clock.Advance(364 * 24 * time.Hour)
		if code, body := oneClick(links["ola"]); code != 200 || !strings.Contains(body, "You are unsubscribed") {
			t.Fatalf("one-click after 364 days: %d %s", code, body)
		}
		if s := status("ola"); s != "opt_out_contact" {
			t.Fatalf("after one-click at 364 days: %s", s)
		}

		clock.Advance(2 * 24 * time.Hour) // 366 days
		changes := count(t, db, `SELECT count(*) FROM opt_in_changes`)
		v := e.visitor()
		if code, body := v.get(links["per"]); code != http.StatusGone || !strings.Contains(body, "This link cannot be used") ||
			!strings.Contains(body, `<form method="post" action="/u"`) || strings.Contains(body, "You are unsubscribed") {
			t.Fatalf("opening a link of 366 days: %d %s", code, body)
		}
		if code, body := oneClick(links["per"]); code != http.StatusGone || !strings.Contains(body, "This link cannot be used") {
			t.Fatalf("one-click on a link of 366 days: %d %s", code, body)
		}
		if s := status("per"); s != "double_opt_in" || count(t, db, `SELECT count(*) FROM opt_in_changes`) != changes {
			t.Fatalf("an expired link changed something: %s", s)
		}
		// Liv's link, made to last 400 days, still works.
		if code, _ := oneClick(links["liv"]); code != 200 || status("liv") != "opt_out_contact" {
			t.Fatalf("one-click on a 400-day link at 366 days: %d %s", code, status("liv"))
		}

		// The expired page's form: the same answer for a known address and
		// an unknown one; an email only to the known one.
		queued := count(t, db, `SELECT count(*) FROM outbox`)
		code, known := v.post(e.srv.URL+"/u", url.Values{"email": {"PER@example.com"}})
		if code != 200 || v.last.Request.URL.Path != "/u/sent" || !strings.Contains(known, "If we have this address") {
			t.Fatalf("asking for a new link: %d at %s: %s", code, v.last.Request.URL, known)
		}
		other := e.visitor()
		if code, unknown := other.post(e.srv.URL+"/u", url.Values{"email": {"nobody@example.com"}}); code != 200 ||
			other.last.Request.URL.Path != "/u/sent" || unknown != known {
			t.Fatalf("an unknown address answered differently: %d at %s: %s", code, other.last.Request.URL, unknown)
		}
		msg := e.smtp.Wait(t, 4)[3]
		if msg.To[0] != "per@example.com" || msg.Subject != "Your new link to your privacy preferences" || len(msg.Links()) == 0 ||
			!strings.HasPrefix(msg.Links()[0], e.srv.URL+"/p/") {
			t.Fatalf("new link email: %v %q %s", msg.To, msg.Subject, msg.Text)
		}
		if n := count(t, db, `SELECT count(*) FROM outbox`); n != queued+1 {
			t.Fatalf("%d emails queued for two requests, want 1", n-queued)
		}
		// The new link opens the page, where Per can unsubscribe.
		page := e.visitor()
		if code, body := page.get(msg.Links()[0]); code != 200 || page.last.Request.URL.Path != "/p" || !strings.Contains(body, `id="optout"`) {
			t.Fatalf("the new link: %d at %s", code, page.last.Request.URL)
		}
		// An address that cannot be one is refused on the page itself.
		if code, body := e.visitor().post(e.srv.URL+"/u", url.Values{"email": {"not an address"}}); code != 400 ||
			!strings.Contains(body, `id="email-error" role="alert">Please enter a valid email address`) {
			t.Fatalf("a bad address: %d %s", code, body)
		}
	})
}
