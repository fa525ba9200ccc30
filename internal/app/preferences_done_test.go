package app_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestPendingChangeIsShownAndDonePagesLeadBack: a saved change that waits
// for its confirmation is shown on the page with the time its email was
// sent, until it is confirmed or its link no longer works; the page that
// says to check the email and the page that says the change is done both
// lead back to the page, the latter for a contact who came by the emailed
// link alone.
func TestPendingChangeIsShownAndDonePagesLeadBack(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		id, link := pageSetUp(e)
		card := purposeID(e, "Card on file")
		v := e.visitor()
		if _, body := v.get(link); strings.Contains(body, `id="waiting"`) {
			t.Fatalf("a change waits before any was asked for: %s", body)
		}
		withdraw := url.Values{"action": {"save"}, "consent." + card: {"withdrawn"}, "v." + card: {"1"}}
		code, body := v.post(e.srv.URL+"/p", withdraw)
		if code != 200 || !strings.Contains(body, "Please check your email") || !strings.Contains(body, `<a href="/p" id="back">Back to your preferences</a>`) {
			t.Fatalf("saving: %d %s", code, body)
		}
		// The post redirected to a page of its own, whose reload asks
		// nothing again: one change, one email.
		if got := v.last.Request.URL.Path; got != "/p/sent" {
			t.Fatalf("saving ended at %s, want the redirect to /p/sent", got)
		}
		if code, body := v.get(e.srv.URL + "/p/sent"); code != 200 || !strings.Contains(body, "Please check your email") {
			t.Fatalf("reloading the check-your-email page: %d %s", code, body)
		}
		var changes []struct {
			Status      string
			RequestedAt time.Time `json:"requested_at"`
		}
		e.api("GET", "/api/v1/contacts/"+id+"/preference-changes", "", 200, &changes)
		if len(changes) != 1 {
			t.Fatalf("%d preference changes after a save and a reload, want 1", len(changes))
		}
		sent := changes[0].RequestedAt.UTC().Format("2006-01-02 15:04 UTC")
		_, body = v.get(e.srv.URL + "/p")
		for _, want := range []string{`id="waiting"`, "Waiting for your confirmation", "We emailed you a link to confirm this change at " + sent,
			"<li>Withdraw consent to “Card on file”", "Saving again replaces this change"} {
			if !strings.Contains(body, want) {
				t.Errorf("the page lacks %q:\n%s", want, body)
			}
		}

		// Confirmed by the emailed link in another browser: the done page
		// leads to the page, which no longer shows a change waiting.
		confirm := e.srv.URL + confirmLinkRE.FindString(e.smtp.Wait(t, 1)[0].Text)
		w := e.visitor()
		w.get(confirm)
		code, body = w.post(confirm, url.Values{})
		if code != 200 || !strings.Contains(body, "Your choices are saved") || !strings.Contains(body, `<a href="/p" id="back">`) {
			t.Fatalf("confirming: %d %s", code, body)
		}
		if code, body := w.get(e.srv.URL + "/p"); code != 200 || !strings.Contains(body, `id="save"`) || strings.Contains(body, `id="waiting"`) {
			t.Fatalf("back from the done page: %d %s", code, body)
		}

		// A change whose link no longer works does not wait.
		grant := url.Values{"action": {"save"}, "consent." + card: {"granted"}, "v." + card: {"1"}}
		v.post(e.srv.URL+"/p", grant)
		if _, body := v.get(e.srv.URL + "/p"); !strings.Contains(body, "<li>Agree to “Card on file”</li>") {
			t.Fatalf("the second change is not shown: %s", body)
		}
		old := store.Micros(time.Now().Add(-49 * time.Hour))
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			_, err := tx.Exec(`UPDATE preference_changes SET requested_at = $1 WHERE status = 'pending'`, old)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if _, body := v.get(e.srv.URL + "/p"); strings.Contains(body, `id="waiting"`) {
			t.Fatalf("a change past its link's %d hours still waits: %s", 48, body)
		}
	})
}

// TestPrivacyStatementWithoutPageAccess: a contact the access condition
// leaves out, one whose link expired and one whose session ended all see
// the operator's privacy statement and policy links.
func TestPrivacyStatementWithoutPageAccess(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		e.api("POST", "/api/v1/purposes", `{"name":"Card on file","legal_basis":"consent","text":"Keep my card number"}`, 201, nil)
		var us struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"us@example.com","region":"US"}`, 201, &us)
		e.api("PUT", "/api/v1/settings/preferences-page", `{"access_condition":"region == \"EU\"","access_email":false,
			"offers":[{"purpose":"Card on file"}],"statement":"We are Acme. See https://acme.example/privacy",
			"policies":[{"title":"Privacy policy","url":"https://acme.example/privacy"}],"footer":{"enabled":false},
			"allow_stop_processing":true,"allow_erasure":true}`, 200, nil)
		var link struct{ URL string }
		e.api("POST", "/api/v1/contacts/"+us.ID+"/preferences-link", "", 201, &link)
		v := e.visitor()
		code, body := v.get(link.URL)
		if code != 200 || !strings.Contains(body, `id="save"`) || strings.Contains(body, "Keep my card number") {
			t.Fatalf("the page of a contact without access: %d %s", code, body)
		}
		for _, want := range []string{`<h2 id="about">About us and your data</h2>`, "We are Acme.", `<a href="https://acme.example/privacy">Privacy policy</a>`} {
			if !strings.Contains(body, want) {
				t.Errorf("the page without access lacks %q", want)
			}
		}
		if strings.Contains(body, `id="privacy-statement"`) {
			t.Error("the page shows the statement twice")
		}
		expired := e.srv.URL + "/u/" + strings.Repeat("A", 43)
		for name, u := range map[string]string{"expired link": expired, "ended session": e.srv.URL + "/p"} {
			_, body := e.visitor().get(u)
			for _, want := range []string{`<details id="privacy-statement"><summary>About us and your data</summary>`, "We are Acme.",
				`<a href="https://acme.example/privacy">Privacy policy</a>`} {
				if !strings.Contains(body, want) {
					t.Errorf("%s: the page lacks %q:\n%s", name, want, body)
				}
			}
		}
	})
}

// TestCampaignUnsubscribeLeadsBack: after the button of a campaign's
// unsubscribe page, the done page leads to the preferences page, at its
// email section, which opens without another link.
func TestCampaignUnsubscribeLeadsBack(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		_, link := newsCampaign(t, e)
		v := e.visitor()
		v.get(link)
		code, body := v.post(link, url.Values{"List-Unsubscribe": {"One-Click"}, "page": {"1"}})
		if code != 200 || v.last.Request.URL.Path != "/m/u/done" || !strings.Contains(body, "You are unsubscribed") ||
			!strings.Contains(body, `<a href="/p?lang=en#email" id="back">Back to your preferences</a>`) {
			t.Fatalf("unsubscribed: %d at %s: %s", code, v.last.Request.URL, body)
		}
		if code, body := v.get(e.srv.URL + "/p"); code != 200 || !strings.Contains(body, "anna@example.com") || !strings.Contains(body, `id="email"`) {
			t.Fatalf("back from the done page: %d %s", code, body)
		}
	})
}
