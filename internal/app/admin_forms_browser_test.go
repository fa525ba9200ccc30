package app_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestAdminFormsInABrowser drives the forms of issue 15 in Chromium, on
// both databases: a new contact with a consent (refused first for a
// missing source, then created); a reveal with a reason, then a reload
// that shows nothing and logs nothing; a new API token, then a reload that
// does not show its secret; a field locked by a withdrawn storage consent;
// and the access log. Each page and state passes axe-core at a phone's and
// a desktop's width without scrolling sideways.
func TestAdminFormsInABrowser(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e, d := signedIn(t, db)
		browser, text, do := d.ctx, d.text, d.do
		check := d.herePasses
		// flashSays waits until the page's notice holds want.
		flashSays := func(want string) {
			t.Helper()
			do(chromedp.Poll[chromedp.Void](`(document.querySelector(".flash")?.textContent || "").includes(` + jsString(want) + `)`))
		}
		marketing, phone := purposeID(e, "E-marketing"), sourceID(e, "Phone")

		// A new contact with a consent: refused without a source, with the
		// error next to it and what was typed kept; then created.
		state, source := "#consent\\."+marketing+"\\.state", "#consent\\."+marketing+"\\.source"
		do(chromedp.Navigate(e.srv.URL+"/admin/contacts/new"), chromedp.WaitVisible(chromedp.CSS("#opt_in_status")))
		check("the new contact page")
		do(chromedp.SendKeys(chromedp.CSS("#email"), "lisa@example.com"), chromedp.SendKeys(chromedp.CSS("#first_name"), "Lisa"),
			chromedp.SetValue(chromedp.CSS("#opt_in_status"), "single_opt_in_user"), chromedp.SetValue(chromedp.CSS(state), "granted"),
			chromedp.Submit(chromedp.CSS("#email")), chromedp.WaitVisible(chromedp.CSS("p.error[id$=source-error]")))
		check("the new contact page with an error")
		if got := text("p.error[id$=source-error]"); !strings.Contains(got, "required") {
			t.Fatalf("the missing source says %q", got)
		}
		kept, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.querySelector("#first_name").value + "|" +
			document.querySelector("#opt_in_status").value + "|" + document.querySelector("`+strings.ReplaceAll(state, `\`, `\\`)+`").value`))
		if err != nil || kept != "Lisa|single_opt_in_user|granted" {
			t.Fatalf("the refused form keeps %q (%v)", kept, err)
		}
		do(chromedp.SetValue(chromedp.CSS(source), phone), chromedp.Submit(chromedp.CSS("#email")), chromedp.WaitVisible(chromedp.CSS("#consents")))
		flashSays("Contact created.")
		if got := text("#optin-status"); got != "Single opt-in (user)" {
			t.Fatalf("opt-in status %q", got)
		}
		if row := text(`#consents table.consents tbody tr:has(td.state-granted)`); !strings.Contains(row, "E-marketing") || !strings.Contains(row, "Phone") {
			t.Fatalf("the consent row: %q", row)
		}
		check("a new contact's record")

		// A reveal asks for a reason, shows the value once and logs it;
		// a reload shows nothing and logs nothing more.
		ids := withSensitive(e)
		record := e.srv.URL + "/admin/contacts/" + ids[0]
		do(chromedp.Navigate(record), chromedp.Click(chromedp.CSS("#reveal-open-national_id")), chromedp.WaitVisible(chromedp.CSS("#reason-national_id")))
		check("a record with the reveal form open")
		do(chromedp.SendKeys(chromedp.CSS("#reason-national_id"), "Identity check on a call"), chromedp.Click(chromedp.CSS("#reveal-national_id")),
			chromedp.WaitVisible(chromedp.CSS(".revealed")))
		if v := text(".revealed"); v != "198501011234" {
			t.Fatalf("revealed %q", v)
		}
		check("a record with a revealed value")
		do(chromedp.Reload())
		flashSays("That value was shown once.")
		if n, err := chromedp.Run(browser, chromedp.Evaluate[int](`document.querySelectorAll(".revealed").length`)); err != nil || n != 0 {
			t.Fatalf("after a reload %d values show (%v)", n, err)
		}
		if body := text("main"); strings.Contains(body, "198501011234") {
			t.Fatal("a reload shows the value again")
		}
		if n := count(t, db, `SELECT count(*) FROM access_log WHERE reason = 'Identity check on a call'`); n != 1 {
			t.Fatalf("the access log holds %d entries for the reveal", n)
		}
		check("a record after a reveal was reloaded")

		// The access log names the contact and says what happened.
		do(chromedp.Navigate(e.srv.URL+"/admin/access-log"), chromedp.WaitVisible(chromedp.CSS("table.access-log")))
		if log := text("table.access-log tbody"); !strings.Contains(log, "Revealed national_id") || !strings.Contains(log, "a@example.com") ||
			!strings.Contains(log, "Identity check on a call") {
			t.Fatalf("the access log: %q", log)
		}
		check("the access log")

		// A new API token's secret shows once.
		do(chromedp.Navigate(e.srv.URL+"/admin/settings/tokens"), chromedp.SendKeys(chromedp.CSS("#name"), "CRM sync"),
			chromedp.Submit(chromedp.CSS("#name")), chromedp.WaitVisible(chromedp.CSS("#token-secret")))
		secret := text("#token-secret")
		if !strings.HasPrefix(secret, "cst_") {
			t.Fatalf("the new token shows %q", secret)
		}
		check("the new token's page")
		do(chromedp.Reload())
		flashSays("That token was shown once")
		if body := text("main"); strings.Contains(body, secret) {
			t.Fatal("a reload shows the token's secret again")
		}
		check("the tokens page after a reload")

		// A field erased because its storage consent was withdrawn.
		e.api("POST", "/api/v1/purposes", `{"name":"Loyalty card","legal_basis":"consent","text":"Keep my loyalty card number"}`, 201, nil)
		e.api("POST", "/api/v1/fields", `{"name":"loyalty_card","type":"text","storage_purpose":"Loyalty card"}`, 201, nil)
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"k@example.com","fields":{"loyalty_card":"LC-1234"},
			"consents":[{"purpose":"Loyalty card","state":"granted","source":"Web form"}]}`, 201, &c)
		e.api("POST", "/api/v1/contacts/"+c.ID+"/consents", `{"purpose":"Loyalty card","state":"withdrawn","source":"Email"}`, 201, nil)
		do(chromedp.Navigate(e.srv.URL+"/admin/contacts/"+c.ID), chromedp.WaitVisible(chromedp.CSS("#erased-loyalty_card")))
		if got := text("#erased-loyalty_card"); !strings.HasPrefix(got, "erased and locked (consent withdrawn ") {
			t.Fatalf("the locked field says %q", got)
		}
		check("a record with a locked field")
	})
}

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
