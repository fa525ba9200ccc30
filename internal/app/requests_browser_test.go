package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/browsertest"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestRequestsInABrowser drives the Requests pages in Chromium on both
// databases: an overdue request is listed first and marked in words, the
// dashboard counts it, a refusal without a reason is refused next to the
// field and one with a reason changes the status through the form, a
// request taken by phone is recorded with the New request form, and the
// contact's record lists its requests. Every page passes axe-core with no
// violation at 1280 and at 375 pixels, and none scrolls sideways on a
// phone.
func TestRequestsInABrowser(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e, d := signedIn(t, db)
		browser, text, do := d.ctx, d.text, d.do

		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"mira@example.com","first_name":"Mira"}`, 201, &c)
		var fresh requests.Request
		e.api("POST", "/api/v1/requests", `{"kind":"access","contact_id":"`+c.ID+`","note":"asked by email"}`, 201, &fresh)
		// A request received two months ago, recorded as it was then.
		var late *requests.Request
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			var err error
			late, err = requests.CreateTx(tx, requests.New{Kind: requests.KindObjection, Channel: requests.ChannelUser, ContactID: c.ID,
				Verified: true, Actor: consent.Actor{Kind: consent.ActorSystem}}, nil, time.Now().AddDate(0, -2, 0))
			return err
		}); err != nil {
			t.Fatal(err)
		}

		do(chromedp.Navigate(e.srv.URL + "/admin/"))
		if got := text("#requests-summary"); !strings.Contains(got, "2 open") || !strings.Contains(got, "1 overdue") {
			t.Fatalf("dashboard: %q", got)
		}
		do(chromedp.Navigate(e.srv.URL + "/admin/requests"))
		first, second := text("#open-requests tbody tr:nth-child(1)"), text("#open-requests tbody tr:nth-child(2)")
		if !strings.Contains(first, "Objection") || !strings.Contains(first, "Overdue:") || !strings.Contains(first, "overdue by") {
			t.Fatalf("the overdue request is not first and marked: %q", first)
		}
		if !strings.Contains(second, "Access") || strings.Contains(second, "Overdue") || !strings.Contains(second, "days left") {
			t.Fatalf("the other request: %q", second)
		}
		browsertest.Axe(t, browser, "requests with an overdue one")
		do(chromedp.Navigate(e.srv.URL + "/admin/requests?kind=access"))
		if rows := text("#open-requests tbody"); strings.Contains(rows, "Objection") || !strings.Contains(rows, "Access") {
			t.Fatalf("filtered by kind: %q", rows)
		}

		// Refuse the overdue one: first without a reason, then with one.
		page := e.srv.URL + "/admin/requests/" + late.ID
		do(chromedp.Navigate(page))
		if got := text("#overdue"); !strings.Contains(got, "Overdue") {
			t.Fatalf("the overdue request's page: %q", got)
		}
		browsertest.Axe(t, browser, "an overdue request")
		do(chromedp.SetValue(chromedp.CSS("#r-status"), "refused"),
			chromedp.Submit(chromedp.CSS("#r-status")), chromedp.WaitVisible(chromedp.CSS("#reason-error")))
		if got := text("#request-status"); got != "Verified" {
			t.Fatalf("status after a refusal without reason: %q", got)
		}
		browsertest.Axe(t, browser, "a request with an error")
		do(chromedp.SetValue(chromedp.CSS("#r-status"), "refused"),
			chromedp.SendKeys(chromedp.CSS("#r-reason"), "The contract requires the data."),
			chromedp.Submit(chromedp.CSS("#r-status")), chromedp.WaitVisible(chromedp.CSS(".flash")))
		if got, flash := text("#request-status"), text(".flash"); got != "Refused" || flash != "Status changed." {
			t.Fatalf("after refusing: %q, %q", got, flash)
		}
		var got requests.Request
		e.api("GET", "/api/v1/requests/"+late.ID, "", 200, &got)
		if got.Status != requests.StatusRefused || got.Reason != "The contract requires the data." || got.ClosedAt == nil {
			t.Fatalf("refused through the form: %+v", got)
		}

		// A request taken by phone, for the contact's address.
		do(chromedp.Navigate(e.srv.URL+"/admin/requests/new"), chromedp.SetValue(chromedp.CSS("#n-kind"), "erasure"),
			chromedp.SendKeys(chromedp.CSS("#n-contact"), "mira@example.com"), chromedp.SendKeys(chromedp.CSS("#n-note"), "Called on Monday"),
			chromedp.Submit(chromedp.CSS("#n-kind")), chromedp.WaitVisible(chromedp.CSS(".flash")))
		if got := text("dl.fields"); !strings.Contains(got, "Erasure") || !strings.Contains(got, "Entered by a user") ||
			!strings.Contains(got, "Ada Admin") || !strings.Contains(got, "mira@example.com") {
			t.Fatalf("recorded by phone: %q", got)
		}
		if href, err := chromedp.Run(browser, chromedp.AttributeValue(chromedp.CSS("#fulfil"), "href")); err != nil || !strings.HasSuffix(href.Value, "/admin/contacts/"+c.ID+"/erasure") {
			t.Fatalf("fulfil link %q: %v", href.Value, err)
		}
		newPage := e.srv.URL + strings.TrimPrefix(mustLocation(t, browser), e.srv.URL)
		do(chromedp.Navigate(e.srv.URL + "/admin/contacts/" + c.ID))
		if got := text("#requests"); !strings.Contains(got, "Objection") || !strings.Contains(got, "Refused") || !strings.Contains(got, "Erasure") {
			t.Fatalf("the record's requests: %q", got)
		}

		pages := []string{"/admin/", "/admin/requests", "/admin/requests?status=refused", "/admin/requests/new", "/admin/requests/" + fresh.ID,
			strings.TrimPrefix(newPage, e.srv.URL), "/admin/requests/" + late.ID, "/admin/contacts/" + c.ID, "/admin/settings", "/admin/docs/conditions"}
		d.pagesPass(e.srv.URL, pages...)
	})
}

func mustLocation(t testing.TB, browser context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(browser, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
