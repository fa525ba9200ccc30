package app_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/store/storetest"
)

// TestErasureInABrowser drives the page "Erasure and legal holds" in
// Chromium: a hold is set, an erasure under it erases part and says so,
// lifting the hold finishes the erasure, and the record then says it was
// erased. Every state of the pages passes axe-core at a phone's and a
// desktop's width, and no page scrolls sideways on the phone.
func TestErasureInABrowser(t *testing.T) {
	db := storetest.OpenSQLite(t)
	e, d := signedIn(t, db)
	text, do, check := d.text, d.do, d.herePasses
	var c struct{ ID string }
	e.api("POST", "/api/v1/contacts", `{"email":"held@example.com","first_name":"Hedda","consents":[{"purpose":"E-marketing",
		"state":"granted","source":"api","evidence":{"ip":"198.51.100.9"}}]}`, 201, &c)
	record := e.srv.URL + "/admin/contacts/" + c.ID

	do(chromedp.Navigate(record), chromedp.Click(chromedp.CSS("#erasure-link")), chromedp.WaitVisible(chromedp.CSS("#holds")))
	if got := text("h1"); got != "Erasure and legal holds: Hedda" {
		t.Fatalf("erasure page: %q", got)
	}
	check("the erasure page")

	// Erasing without ticking the box says what is missing.
	do(chromedp.Click(chromedp.CSS("#erase")), chromedp.WaitVisible(chromedp.CSS("#confirm-error")))
	check("the erasure page with an error")

	// A hold, then an erasure under it.
	do(chromedp.SetValue(chromedp.CSS("#hold-basis"), "legal_obligation"), chromedp.SendKeys(chromedp.CSS("#hold-reason"), "invoice 77 kept 7 years"),
		chromedp.Click(chromedp.CSS("#set-hold")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if holds := text("#holds"); !strings.Contains(holds, "invoice 77") || !strings.Contains(holds, "Active") {
		t.Fatalf("holds after setting one: %q", holds)
	}
	check("the erasure page with an active hold")
	// The page before has a notice too: wait for what only the next one
	// shows.
	do(chromedp.Click(chromedp.CSS("#confirm-erase")), chromedp.Click(chromedp.CSS("#erase")), chromedp.WaitVisible(chromedp.CSS(".waiting")))
	if flash := text(".flash"); !strings.Contains(flash, "legal hold is active") {
		t.Fatalf("after erasing under a hold: %q", flash)
	}
	if holds := text("#holds"); !strings.Contains(holds, "an erasure waits") {
		t.Fatalf("the hold does not say an erasure waits: %q", holds)
	}
	check("the erasure page with a waiting erasure")

	// Lifting the hold finishes the erasure.
	do(chromedp.SendKeys(chromedp.CSS("input[name=lift_reason]"), "invoice settled"),
		chromedp.Click(chromedp.CSS("#holds button")), chromedp.WaitVisible(chromedp.CSS("#erased-banner")))
	if flash := text(".flash"); !strings.Contains(flash, "was erased") {
		t.Fatalf("after lifting the hold: %q", flash)
	}
	if log := text("#erasure-log"); !strings.Contains(log, "partly erased") || !strings.Contains(log, "erased by the system") {
		t.Fatalf("erasure log: %q", log)
	}
	check("the erasure page of an erased contact")
	do(chromedp.Navigate(record), chromedp.WaitVisible(chromedp.CSS("#erased-banner")))
	if banner := text("#erased-banner"); !strings.Contains(banner, "erased on") {
		t.Fatalf("record banner: %q", banner)
	}
	check("the record of an erased contact")

	// The address comes back with a new consent; its record says so.
	var back struct{ ID string }
	e.api("POST", "/api/v1/contacts", `{"email":"held@example.com","consents":[{"purpose":"E-marketing","state":"granted","source":"api"}]}`, 201, &back)
	do(chromedp.Navigate(e.srv.URL+"/admin/contacts/"+back.ID), chromedp.WaitVisible(chromedp.CSS("#previously-erased")))
	if banner := text("#previously-erased"); !strings.Contains(banner, "This address was erased on") {
		t.Fatalf("previously erased banner: %q", banner)
	}
	check("the record of an address erased before")
}
