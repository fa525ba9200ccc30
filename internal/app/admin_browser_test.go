package app_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/browsertest"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestAdminInABrowser drives the admin UI in Chromium: the first admin is
// created from the start-up link and signs in; a contact is created, a
// consent granted and seen in the Consents block with its history; the
// list is filtered with a condition; billing reveals a sensitive value
// (logged) where an agent has no Reveal button; every main page renders.
func TestAdminInABrowser(t *testing.T) {
	db := storetest.OpenSQLite(t)
	e, d := signedIn(t, db)
	browser, text, do := d.ctx, d.text, d.do
	signIn := func(email, password string) {
		t.Helper()
		do(chromedp.Navigate(e.srv.URL+"/admin/login"), chromedp.SendKeys(chromedp.CSS("#email"), email),
			chromedp.SendKeys(chromedp.CSS("#password"), password), chromedp.Submit(chromedp.CSS("#password")),
			chromedp.WaitVisible(chromedp.CSS(".signout")))
	}
	signOut := func() {
		t.Helper()
		do(chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.CSS("#password")))
	}

	// The first admin, from the link in the log.
	if got := text("h1"); got != "Dashboard" {
		t.Fatalf("after set-up: %q", got)
	}
	signOut()
	signIn("ada@acme.example", "correct horse battery")

	// A contact, a consent, the Consents block and its history.
	do(chromedp.Navigate(e.srv.URL+"/admin/contacts/new"), chromedp.SendKeys(chromedp.CSS("#email"), "lisa@example.com"),
		chromedp.SendKeys(chromedp.CSS("#first_name"), "Lisa"), chromedp.SendKeys(chromedp.CSS("#region"), "EU"),
		chromedp.Submit(chromedp.CSS("#email")), chromedp.WaitVisible(chromedp.CSS("#consents")))
	var sources []struct{ ID, Name string }
	e.api("GET", "/api/v1/sources", "", 200, &sources)
	phone := ""
	for _, src := range sources {
		if src.Name == "Phone" {
			phone = src.ID
		}
	}
	do(chromedp.SetValue(chromedp.CSS("#c-purpose"), purposeID(e, "E-marketing")), chromedp.SetValue(chromedp.CSS("#c-state"), "granted"),
		chromedp.SetValue(chromedp.CSS("#c-source"), phone),
		chromedp.Submit(chromedp.CSS("#c-purpose")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	row := text(`#consents table.consents tbody tr:has(td.state-granted)`)
	for _, want := range []string{"E-marketing", "granted", "Consent", "Phone", "v1", "Ada Admin"} {
		if !strings.Contains(row, want) {
			t.Fatalf("the Consents block's row lacks %q: %q", want, row)
		}
	}
	do(chromedp.Click(chromedp.CSS("#history summary")), chromedp.WaitVisible(chromedp.CSS("#history table")))
	if history := text("#history table tbody"); !strings.Contains(history, "entered by user") || !strings.Contains(history, "#1") {
		t.Fatalf("history: %q", history)
	}

	// Filter the list with a condition.
	do(chromedp.Navigate(e.srv.URL+"/admin/contacts"), chromedp.SendKeys(chromedp.CSS("#filter"), `region == "EU" && consent("E-marketing") == "granted"`),
		// The list is on the page before the submit too: mark this page,
		// and wait for one without the mark.
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.before = "1"`),
		chromedp.Submit(chromedp.CSS("#filter")), chromedp.WaitNotPresent(chromedp.CSS("body[data-before]")),
		chromedp.WaitVisible(chromedp.CSS("table.contacts")))
	if rows := text("table.contacts tbody"); !strings.Contains(rows, "lisa@example.com") {
		t.Fatalf("filtered list: %q", rows)
	}

	// Reveal as billing; no Reveal button for an agent.
	ids := withSensitive(e)
	admin := e.visitor()
	admin.post(e.srv.URL+"/admin/login", url.Values{"email": {"ada@acme.example"}, "password": {"correct horse battery"}})
	e.signIn(admin, "billing@acme.example", auth.RoleBilling)
	e.signIn(admin, "agent@acme.example", auth.RoleAgent)
	record := e.srv.URL + "/admin/contacts/" + ids[0]
	signOut()
	signIn("billing@acme.example", "a long enough password")
	do(chromedp.Navigate(record), chromedp.Click(chromedp.CSS("#reveal-open-national_id")),
		chromedp.SendKeys(chromedp.CSS("#reason-national_id"), "Invoice query"), chromedp.Click(chromedp.CSS("#reveal-national_id")),
		chromedp.WaitVisible(chromedp.CSS(".revealed")))
	if v := text(".revealed"); v != "198501011234" {
		t.Fatalf("revealed %q", v)
	}
	if n := count(t, db, `SELECT count(*) FROM access_log l JOIN users u ON u.id = l.actor_id WHERE u.email = 'billing@acme.example'`); n != 1 {
		t.Fatalf("access log entries for billing: %d", n)
	}
	signOut()
	signIn("agent@acme.example", "a long enough password")
	do(chromedp.Navigate(record), chromedp.WaitVisible(chromedp.CSS("#consents")))
	buttons, err := chromedp.Run(browser, chromedp.Evaluate[[]string](`[...document.querySelectorAll("button[id^=reveal-]")].map(b => b.id)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(buttons) != 0 || !strings.Contains(text("dl.fields"), "••••••••1234") {
		t.Fatalf("agent sees reveal buttons %v", buttons)
	}

	// Every main page renders for the admin.
	signOut()
	signIn("ada@acme.example", "correct horse battery")
	pages := map[string]string{"/admin/": "Dashboard", "/admin/contacts": "Contacts", "/admin/users": "Users", "/admin/contacts/new": "New contact",
		"/admin/contacts/" + ids[0]: "", "/admin/settings": "Settings", "/admin/settings/purposes": "Purposes", "/admin/settings/fields": "Fields",
		"/admin/settings/preferences-page": "Preferences page", "/admin/settings/tokens": "API tokens", "/admin/outbox": "Outbox",
		"/admin/access-log": "Access log", "/admin/ledger": "Consent ledger", "/admin/retention": "Retention"}
	do(chromedp.EmulateViewport(1280, 900))
	for path, h1 := range pages {
		do(chromedp.Navigate(e.srv.URL + path))
		if got := text("h1"); h1 != "" && got != h1 {
			t.Fatalf("%s shows %q", path, got)
		}
		browsertest.Axe(t, browser, path+" at 1280 px")
	}
	// At a phone's width no page scrolls sideways: wide tables scroll in
	// their own box.
	do(chromedp.EmulateViewport(375, 740))
	for path := range pages {
		do(chromedp.Navigate(e.srv.URL + path))
		fits, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
		if err != nil {
			t.Fatal(err)
		}
		if !fits {
			t.Errorf("%s is wider than a phone's screen", path)
		}
		browsertest.Axe(t, browser, path+" at 375 px")
	}
}
