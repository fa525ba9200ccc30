package app_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/store/storetest"
)

// TestDoubleOptInInABrowser follows the double opt-in link from an email,
// received over SMTP, in a real browser: the page asks, the button
// confirms (through the page's own CSP, referrer policy and cross-origin
// protection), and the contact is confirmed.
func TestDoubleOptInInABrowser(t *testing.T) {
	db := storetest.OpenSQLite(t)
	e := start(t, db)
	browser := newDriver(t).ctx
	var c struct{ ID string }
	e.api("POST", "/api/v1/contacts", `{"email":"bea@example.com","first_name":"Bea","language":"nl"}`, 201, &c)
	e.api("POST", "/api/v1/double-opt-in", `{"contact_ids":["`+c.ID+`"]}`, 200, nil)
	link := e.smtp.Wait(t, 1)[0].Links()[0]

	text := func(css string) string {
		t.Helper()
		v, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(css)))
		if err != nil {
			t.Fatalf("read %s: %v", css, err)
		}
		return v
	}
	if err := chromedp.Do(browser, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	title, button := text("h1"), text("form button")
	if err := chromedp.Do(browser, chromedp.Click(chromedp.CSS("form button")),
		chromedp.WaitVisible(chromedp.CSS(`p[role="status"]`))); err != nil {
		t.Fatal(err)
	}
	after := text(`p[role="status"]`)
	if title != "Bevestig uw inschrijving" || button != "Bevestig mijn inschrijving" || !strings.Contains(after, "bevestigd") {
		t.Fatalf("pages: %q, %q, %q", title, button, after)
	}
	// The answer is a page of its own (post/redirect/get), with no token
	// in its address: reloading it shows it again and confirms nothing
	// more.
	records := count(t, db, `SELECT count(*) FROM consent_records WHERE contact_id = $1`, c.ID)
	where, err := chromedp.Run(browser, chromedp.Evaluate[string](`location.href`))
	if err != nil || where != e.srv.URL+"/p/confirmed" {
		t.Fatalf("after confirming the browser is at %q (%v)", where, err)
	}
	if err := chromedp.Do(browser, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`p[role="status"]`))); err != nil {
		t.Fatal(err)
	}
	if again := text(`p[role="status"]`); again != after {
		t.Fatalf("reloaded: %q, first %q", again, after)
	}
	if n := count(t, db, `SELECT count(*) FROM consent_records WHERE contact_id = $1`, c.ID); n != records || n != 1 {
		t.Fatalf("reloading wrote consent records: %d, %d before", n, records)
	}
	var got struct {
		OptInStatus string `json:"opt_in_status"`
	}
	e.api("GET", "/api/v1/contacts/"+c.ID, "", 200, &got)
	if got.OptInStatus != "double_opt_in" {
		t.Fatalf("after confirming in the browser: %s", got.OptInStatus)
	}
}
