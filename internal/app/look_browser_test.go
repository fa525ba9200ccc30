package app_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/browsertest"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestLookAndNavigationInABrowser checks the admin UI's look and ways
// around in Chromium, on both databases, with 120 contacts and one with a
// long address: the list says how many contacts match; the long address is
// one unbroken line at a desktop's width; a record leads back to the list
// as it was filtered, also after a form posted on it; deleting is in its
// own section marked as dangerous; every settings page has the settings
// sub-navigation with its own entry marked; and the main pages scroll
// sideways at neither a phone's nor a desktop's width and pass axe-core.
func TestLookAndNavigationInABrowser(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e, d := signedIn(t, db)
		browser, text, do := d.ctx, d.text, d.do
		contacttest.SeedMillion(t, db, 120)
		const long = "maximilian.alexander.worthington-smythe@research-department.example.com"
		var lisa struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"`+long+`","first_name":"Maximilian","region":"EU"}`, 201, &lisa)

		// The total, counted over every page.
		do(chromedp.EmulateViewport(1280, 900), chromedp.Navigate(e.srv.URL+"/admin/contacts"), chromedp.WaitVisible(chromedp.CSS("table.contacts")))
		if got := text("#contacts-total"); got != "121 contacts match; 50 on this page." {
			t.Fatalf("the list's total: %q", got)
		}
		// The long address is on one line: an inline link broken over
		// lines has a box per line.
		lines, err := chromedp.Run(browser, chromedp.Evaluate[int](`[...document.querySelectorAll("table.contacts a")]
			.find(a => a.textContent === `+jsString(long)+`).getClientRects().length`))
		if err != nil || lines != 1 {
			t.Fatalf("the long address takes %d lines at 1280 px (%v)", lines, err)
		}

		// Filtered, the total counts the matches; the record leads back
		// to the list as it was, also after a form posted on it.
		filter := `region == "EU"`
		do(chromedp.Navigate(e.srv.URL+"/admin/contacts?q=maximilian&filter="+url.QueryEscape(filter)), chromedp.WaitVisible(chromedp.CSS("table.contacts")))
		if got := text("#contacts-total"); got != "1 contact matches; all shown." {
			t.Fatalf("the filtered list's total: %q", got)
		}
		do(chromedp.Click(chromedp.CSS("table.contacts tbody a")), chromedp.WaitVisible(chromedp.CSS("#consents")))
		backLeadsToFilteredList := func(where string) {
			t.Helper()
			do(chromedp.Click(chromedp.CSS("#back-to-list")), chromedp.WaitVisible(chromedp.CSS("table.contacts")))
			q, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.querySelector("#q").value + "|" + document.querySelector("#filter").value`))
			if err != nil || q != "maximilian|"+filter {
				t.Fatalf("%s, the way back leads to a list searched and filtered by %q (%v)", where, q, err)
			}
		}
		if got := text("#back-to-list"); !strings.Contains(got, "as you filtered them") {
			t.Fatalf("the way back says %q", got)
		}
		backLeadsToFilteredList("from the record")
		do(chromedp.Click(chromedp.CSS("table.contacts tbody a")), chromedp.WaitVisible(chromedp.CSS("#consents")),
			chromedp.SetValue(chromedp.CSS("#c-purpose"), purposeID(e, "E-marketing")), chromedp.SetValue(chromedp.CSS("#c-state"), "granted"),
			chromedp.Submit(chromedp.CSS("#c-purpose")), chromedp.WaitVisible(chromedp.CSS(".flash")))
		backLeadsToFilteredList("after recording a consent")

		// Deleting is apart, at the end, with erasure, marked as dangerous.
		do(chromedp.Navigate(e.srv.URL+"/admin/contacts/"+lisa.ID), chromedp.WaitVisible(chromedp.CSS("#danger")))
		if got := text("#danger h2"); got != "Erase or delete" {
			t.Fatalf("the dangerous section's heading: %q", got)
		}
		danger, err := chromedp.Run(browser, chromedp.Evaluate[bool](`!!document.querySelector("#danger #delete-contact.danger") &&
			!!document.querySelector("#danger #erasure-link") && document.querySelector(".record").lastElementChild.id === "danger"`))
		if err != nil || !danger {
			t.Fatalf("delete and erase are not together at the end of the record (%v)", err)
		}

		// The settings sub-navigation on every settings page, its own
		// entry marked.
		settings := map[string]string{"/admin/settings": "Organisation", "/admin/settings/purposes": "Purposes",
			"/admin/settings/purposes/" + purposeID(e, "E-marketing"): "Purposes", "/admin/settings/sources": "Sources",
			"/admin/settings/fields": "Fields", "/admin/settings/preferences-page": "Preferences page",
			"/admin/settings/tokens": "API tokens", "/admin/retention": "Retention"}
		for path, current := range settings {
			do(chromedp.Navigate(e.srv.URL + path))
			entries := text("#settings-nav")
			for _, want := range []string{"Organisation", "Email", "Purposes", "Sources", "Fields", "Preferences page", "API tokens", "Retention"} {
				if !strings.Contains(entries, want) {
					t.Errorf("%s: the settings sub-navigation lacks %q: %q", path, want, entries)
				}
			}
			if got := text("#settings-nav a[aria-current]"); got != current {
				t.Errorf("%s: the settings sub-navigation marks %q", path, got)
			}
		}

		// The main pages, at a phone's width and a desktop's.
		pages := []string{"/admin/", "/admin/contacts", "/admin/contacts/" + lisa.ID, "/admin/campaigns", "/admin/access-log"}
		for path := range settings {
			pages = append(pages, path)
		}
		for _, width := range []int64{375, 1280} {
			do(chromedp.EmulateViewport(width, 800))
			for _, path := range pages {
				do(chromedp.Navigate(e.srv.URL+path), chromedp.WaitVisible(chromedp.CSS("h1")))
				fits, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.scrollingElement.scrollWidth <= window.innerWidth`))
				if err != nil {
					t.Fatal(err)
				}
				if !fits {
					t.Errorf("%s scrolls sideways at %d px", path, width)
				}
				browsertest.Axe(t, browser, path+" at "+map[int64]string{375: "375 px", 1280: "1280 px"}[width])
			}
		}
	})
}
