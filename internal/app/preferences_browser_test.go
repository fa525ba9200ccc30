package app_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/browsertest"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestPreferencesPageInABrowser follows R7 in a real browser, in English
// and in Swedish: the contact opens the link from the email they received
// over SMTP, withdraws a consent, is told to check their email, opens the
// link in the second email, confirms, and the change is applied.
func TestPreferencesPageInABrowser(t *testing.T) {
	for _, tc := range []struct {
		lang                             string
		title, checkEmail, done, applied string
	}{
		{"en", "Your privacy preferences", "Please check your email", "Your choices are saved", "Withdraw consent to “Card on file”"},
		{"sv", "Dina integritetsinställningar", "Titta i din e-post", "Dina val är sparade", "Återkalla samtycket till ”Card on file”"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			e := start(t, storetest.OpenSQLite(t))
			browser := newDriver(t).ctx
			e.api("PATCH", "/api/v1/settings", `{"right_to_be_informed":true}`, 200, nil)
			c := cardOnFile(e, "maja@example.com", "granted")
			e.api("PATCH", "/api/v1/contacts/"+c.ID, `{"language":"`+tc.lang+`"}`, 200, nil)
			e.api("PUT", "/api/v1/settings/preferences-page", `{"access_condition":"","offers":[{"purpose":"Card on file"}],"statement":"","policies":[],"footer":{"enabled":false},
				"access_email":false,"allow_stop_processing":false,"allow_erasure":false}`, 200, nil)
			card := purposeID(e, "Card on file")

			link := e.preferencesLinkIn(e.smtp.Wait(t, 1)[0])
			text := func(css string) string {
				t.Helper()
				v, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(css)))
				if err != nil {
					t.Fatalf("read %s: %v", css, err)
				}
				return v
			}
			if err := chromedp.Do(browser, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#save"))); err != nil {
				t.Fatal(err)
			}
			location, err := chromedp.Run(browser, chromedp.Location())
			if err != nil {
				t.Fatal(err)
			}
			if location != e.srv.URL+"/p" || text("h1") != tc.title {
				t.Fatalf("after opening the link: %s, %q", location, text("h1"))
			}
			browsertest.Axe(t, browser, "the preferences page")
			if err := chromedp.Do(browser, chromedp.Click(chromedp.CSS("#c-"+card+"-no")), chromedp.Click(chromedp.CSS("#save")),
				chromedp.WaitVisible(chromedp.CSS(`p[role="status"]`))); err != nil {
				t.Fatal(err)
			}
			if got := text("h1"); got != tc.checkEmail {
				t.Fatalf("after saving: %q", got)
			}
			var state struct {
				Current []struct{ Purpose, State string }
			}
			e.api("GET", "/api/v1/contacts/"+c.ID+"/consents", "", 200, &state)
			for _, cur := range state.Current {
				if cur.Purpose == "Card on file" && cur.State != "granted" {
					t.Fatal("the change took effect before it was confirmed")
				}
			}

			confirm := e.smtp.Wait(t, 2)[1]
			if !strings.Contains(confirm.Text, tc.applied) {
				t.Fatalf("confirmation email: %s", confirm.Text)
			}
			if err := chromedp.Do(browser, chromedp.Navigate(e.srv.URL+confirmLinkRE.FindString(confirm.Text)),
				chromedp.Click(chromedp.CSS("form button")), chromedp.WaitVisible(chromedp.CSS(`p[role="status"]`))); err != nil {
				t.Fatal(err)
			}
			if got, list := text("h1"), text("main ul"); got != tc.done || !strings.Contains(list, tc.applied) {
				t.Fatalf("after confirming: %q, %q", got, list)
			}
			e.api("GET", "/api/v1/contacts/"+c.ID+"/consents", "", 200, &state)
			for _, cur := range state.Current {
				if cur.Purpose == "Card on file" && cur.State != "withdrawn" {
					t.Fatalf("after confirming, Card on file is %s", cur.State)
				}
			}
			// The page fits a phone's width.
			if err := chromedp.Do(browser, chromedp.EmulateViewport(360, 740), chromedp.Navigate(e.srv.URL+"/p"), chromedp.WaitVisible(chromedp.CSS("#save"))); err != nil {
				t.Fatal(err)
			}
			fits, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
			if err != nil || !fits {
				t.Fatalf("the preferences page is wider than a phone (%v)", err)
			}
			browsertest.Axe(t, browser, "the preferences page at 360 px")
		})
	}
}

// TestPreferencesWaitingAndWayBackInABrowser: after saving, the page that
// says to check the email leads back to the page, which shows the change
// waiting for its confirmation; the page that says it is done leads back
// too; a contact the page is off for, and one whose link expired, still
// read the operator's statement and policy links. Each page passes
// axe-core at 1280 and 375 pixels and fits a phone.
func TestPreferencesWaitingAndWayBackInABrowser(t *testing.T) {
	db := storetest.OpenSQLite(t)
	e := start(t, db)
	d := newDriver(t)
	browser := d.ctx
	_, link := pageSetUp(e)
	card := purposeID(e, "Card on file")

	d.do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#save")),
		chromedp.Click(chromedp.CSS("#c-"+card+"-no")), chromedp.Click(chromedp.CSS("#save")), chromedp.WaitVisible(chromedp.CSS("#back")))
	d.herePasses("the check-your-email page")
	d.do(chromedp.Click(chromedp.CSS("#back")), chromedp.WaitVisible(chromedp.CSS("#waiting")))
	if got := d.text("#waiting"); !strings.Contains(got, "We emailed you a link to confirm this change at ") || !strings.Contains(got, "Withdraw consent to “Card on file”") {
		t.Fatalf("the waiting change: %q", got)
	}
	d.pagesPass(e.srv.URL, "/p")

	confirm := e.srv.URL + confirmLinkRE.FindString(e.smtp.Wait(t, 1)[0].Text)
	d.do(chromedp.Navigate(confirm), chromedp.Click(chromedp.CSS("form button")), chromedp.WaitVisible(chromedp.CSS("#back")))
	d.herePasses("the done page")
	// The done page is a page of its own (post/redirect/get), with no
	// token in its address; a reload shows it again and applies nothing.
	if where, err := chromedp.Run(browser, chromedp.Evaluate[string](`location.href`)); err != nil || where != e.srv.URL+"/p/done" {
		t.Fatalf("after confirming the browser is at %q (%v)", where, err)
	}
	done := d.text("main")
	d.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#back")))
	if again := d.text("main"); again != done || !strings.Contains(done, "Withdraw consent to “Card on file”") {
		t.Fatalf("the reloaded done page: %q, first %q", again, done)
	}
	if n := count(t, db, `SELECT count(*) FROM preference_changes WHERE status = 'applied'`); n != 1 {
		t.Fatalf("%d changes applied", n)
	}
	d.do(chromedp.Click(chromedp.CSS("#back")), chromedp.WaitVisible(chromedp.CSS("#save")))
	if n, err := chromedp.Run(browser, chromedp.Evaluate[int](`document.querySelectorAll("#waiting").length`)); err != nil || n != 0 {
		t.Fatalf("a confirmed change still waits: %d %v", n, err)
	}

	// The page is turned off for her: the email section, with the
	// statement and the policies.
	e.api("PUT", "/api/v1/settings/preferences-page", `{"access_condition":"region == \"EU\"","offers":[],"statement":"We are Acme. See https://acme.example/privacy",
		"policies":[{"title":"Privacy policy","url":"https://acme.example/privacy"}],"footer":{"enabled":false},"access_email":false,
		"allow_stop_processing":false,"allow_erasure":false}`, 200, nil)
	d.do(chromedp.Navigate(e.srv.URL+"/p"), chromedp.WaitVisible(chromedp.CSS("#about")))
	if got := d.text("main"); !strings.Contains(got, "We are Acme.") || !strings.Contains(got, "Privacy policy") || strings.Contains(got, "Download your data") {
		t.Fatalf("the page without access: %q", got)
	}
	d.pagesPass(e.srv.URL, "/p", "/u/"+strings.Repeat("A", 43))
	d.do(chromedp.Click(chromedp.CSS("#privacy-statement summary")), chromedp.WaitVisible(chromedp.CSS("#privacy-statement p")))
	if got := d.text("footer"); !strings.Contains(got, "We are Acme.") || !strings.Contains(got, "Privacy policy") {
		t.Fatalf("the expired link's page: %q", got)
	}
}

// TestRefusedCorrectionInABrowser: a detail typed into "Correct my
// details" that cannot be stored comes back, in a real browser, as typed,
// with the reason next to it in the page's language; the page with the
// error passes axe-core at 1280 and 375 pixels and fits a phone.
func TestRefusedCorrectionInABrowser(t *testing.T) {
	db := storetest.OpenSQLite(t)
	e := start(t, db)
	d := newDriver(t)
	_, link := pageSetUp(e)
	d.do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#correct-save")))
	for _, c := range []struct {
		lang, field, value, reason string
		typeIt                     bool // typed key by key; else set as pasted
	}{
		{"en", "first_name", "Le\u202Ena", "invisible", false},
		{"sv", "phone", "ring mig", "phone", true},
	} {
		input := "#profile-" + c.field
		d.do(chromedp.Navigate(e.srv.URL+"/p?lang="+c.lang), chromedp.WaitVisible(chromedp.CSS("#correct-save")))
		if c.typeIt {
			d.do(chromedp.SendKeys(chromedp.CSS(input), c.value))
		} else {
			d.do(chromedp.SetValue(chromedp.CSS(input), c.value))
		}
		d.do(chromedp.Click(chromedp.CSS("#correct-save")), chromedp.WaitVisible(chromedp.CSS(input+"-e")))
		if got, want := d.text(input+"-e"), i18n.T(c.lang, "input.error."+c.reason); got != want {
			t.Errorf("%s %q: the error reads %q, want %q", c.field, c.value, got, want)
		}
		if got := d.value(input); got != c.value {
			t.Errorf("%s %q: the field came back as %q", c.field, c.value, got)
		}
		d.herePasses("the preferences page with a refused correction (" + c.lang + ")")
	}
	if n := count(t, db, `SELECT count(*) FROM preference_changes`); n != 0 {
		t.Fatalf("refused corrections wrote %d changes", n)
	}
}
