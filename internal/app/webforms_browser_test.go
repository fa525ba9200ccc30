package app_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestWebformAndListPagesInABrowser drives the Lists and Webforms pages in
// Chromium on both databases: a list is made on the Lists page (a second
// one named alike refused next to its field, the name kept), a webform
// offering it in the editor (a missing privacy link refused next to its
// field first, with what was typed kept); the hosted form's address is
// copied from the form's page and the form filled in there, first with
// several mistakes, all shown at once next to their fields with the
// answers kept, then correctly, after which the list counts one
// subscriber. Every new page, and each page showing errors, passes
// axe-core with no violation at 1280 and at 375 pixels and does not
// scroll sideways.
func TestWebformAndListPagesInABrowser(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e, d := signedIn(t, db)
		do, text, browser := d.do, d.text, d.ctx
		value := d.value
		passesHere := d.herePasses

		do(chromedp.Click(chromedp.CSS(`nav a[href="/admin/lists"]`)), chromedp.WaitVisible(chromedp.CSS("#new-list-h")),
			chromedp.SendKeys(chromedp.CSS("#name"), "Newsletter"), chromedp.SendKeys(chromedp.CSS("#description"), "Monthly news"),
			chromedp.Submit(chromedp.CSS("#name")), chromedp.WaitVisible(chromedp.CSS(".flash")))
		if got := text(".flash"); got != "List created." {
			t.Fatalf("after creating a list: %q", got)
		}
		if got := text("#lists .subscribers"); got != "0" {
			t.Fatalf("subscribers of a new list: %q", got)
		}
		listPage, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.querySelector("#lists th a").getAttribute("href")`))
		if err != nil {
			t.Fatal(err)
		}
		// A list's page refuses a name already taken next to the field,
		// keeping what was typed.
		do(chromedp.SendKeys(chromedp.CSS("#name"), "newsletter"), chromedp.Submit(chromedp.CSS("#name")),
			chromedp.WaitVisible(chromedp.CSS("#name-error")))
		if got := text("#name-error"); !strings.Contains(got, "already exists") || value("#name") != "newsletter" {
			t.Fatalf("a taken name: %q, kept %q", got, value("#name"))
		}
		passesHere("the lists page with an error")

		do(chromedp.Click(chromedp.CSS(`nav a[href="/admin/webforms"]`)), chromedp.WaitVisible(chromedp.CSS("#new-webform")),
			chromedp.Click(chromedp.CSS("#new-webform")), chromedp.WaitVisible(chromedp.CSS("#webform-form")),
			chromedp.SendKeys(chromedp.CSS("#name"), "signup"), chromedp.SendKeys(chromedp.CSS("#title"), "Sign up for news"),
			chromedp.Click(chromedp.CSS(`input[id="field_on.first_name"]`)), chromedp.Click(chromedp.CSS(`input[id="field_required.first_name"]`)),
			chromedp.Click(chromedp.CSS(`input[id="field_on.phone"]`)), chromedp.Click(chromedp.CSS(`input[name="list_on"]`)),
			chromedp.Submit(chromedp.CSS("#name")), chromedp.WaitVisible(chromedp.CSS("#privacy_policy_url-error")))
		if got := text("#privacy_policy_url-error"); !strings.Contains(got, "is required") {
			t.Fatalf("no privacy link: %q", got)
		}
		if value("#name") != "signup" || value("#title") != "Sign up for news" {
			t.Fatal("the editor lost what was typed")
		}
		passesHere("the webform editor with an error")
		do(chromedp.SendKeys(chromedp.CSS("#privacy_policy_url"), "https://acme.example/privacy"),
			chromedp.Submit(chromedp.CSS("#name")), chromedp.WaitVisible(chromedp.CSS(".flash")))
		if got := text(".flash"); got != "Webform saved." {
			t.Fatalf("after saving the webform: %q", got)
		}
		formPage := strings.TrimPrefix(mustLocation(t, browser), e.srv.URL)
		formPage = strings.Split(formPage, "?")[0]
		hosted := value("#hosted-url")
		if !strings.HasPrefix(hosted, e.srv.URL+"/f/") || !strings.Contains(value("#snippet"), `action="`+hosted+`"`) {
			t.Fatalf("hosted form %q, snippet %q", hosted, value("#snippet"))
		}
		if got := text("#webform-preview"); !strings.Contains(got, "Sign up for news") || !strings.Contains(got, "Yes, I would like to receive newsletters") {
			t.Fatalf("preview: %q", got)
		}

		// The hosted form, with the browser's own checks off so that the
		// server's answer is what shows.
		do(chromedp.Navigate(hosted), chromedp.WaitVisible(chromedp.CSS("form.consentry-webform")))
		if _, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.querySelector("form.consentry-webform").noValidate = true`)); err != nil {
			t.Fatal(err)
		}
		do(chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), "not an email"), chromedp.SendKeys(chromedp.CSS(`input[name="phone"]`), "call me"),
			chromedp.Click(chromedp.CSS(`label[for$="-lists0"]`)), chromedp.Click(chromedp.CSS(`form button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(".consentry-summary")))
		errors, err := chromedp.Run(browser, chromedp.Evaluate[[]string](
			`[...document.querySelectorAll(".consentry-error")].map(e => document.querySelector('[aria-describedby~="' + e.id + '"]').name)`))
		if err != nil || strings.Join(errors, " ") != "email first_name phone" {
			t.Fatalf("errors shown next to: %v (%v)", errors, err)
		}
		if value(`input[name="email"]`) != "not an email" || value(`input[name="phone"]`) != "call me" {
			t.Fatal("the form lost what was typed")
		}
		if kept, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.querySelector('input[name="lists[0].checked"]').checked`)); err != nil || !kept {
			t.Fatalf("the list box was not kept ticked (%v)", err)
		}
		passesHere("the hosted form with errors")
		do(chromedp.Clear(chromedp.CSS(`input[name="email"]`)), chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), "ann@example.com"),
			chromedp.Clear(chromedp.CSS(`input[name="phone"]`)), chromedp.SendKeys(chromedp.CSS(`input[name="phone"]`), "+46 70 123 45 67"),
			chromedp.SendKeys(chromedp.CSS(`input[name="first_name"]`), "Ann"),
			chromedp.Click(chromedp.CSS(`form button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS(`p[role="status"]`)))
		if got := text("h1"); got != "Thank you" {
			t.Fatalf("after sending: %q", got)
		}

		do(chromedp.Navigate(e.srv.URL+"/admin/lists"), chromedp.WaitVisible(chromedp.CSS("#lists")))
		if got := text("#lists .subscribers"); got != "1" {
			t.Fatalf("subscribers after the form: %q", got)
		}
		d.pagesPass(e.srv.URL, "/admin/lists", listPage, "/admin/webforms", "/admin/webforms/new", formPage, formPage+"/edit",
			strings.TrimPrefix(hosted, e.srv.URL))
	})
}
