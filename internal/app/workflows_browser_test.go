package app_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestWorkflowEditorInABrowser drives the workflow editor in Chromium on
// both databases: a rule that emails a partner is filled in with a
// misspelt fact in its condition, refused next to the condition with
// where and what (and the fact meant), everything typed kept; the
// condition put right, the rule is saved and its page says so. The rules,
// the editor with its error, the rule's page and its run log pass
// axe-core with no violation at 1280 and at 375 pixels and do not scroll
// sideways.
func TestWorkflowEditorInABrowser(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e, d := signedIn(t, db)
		do, text, browser := d.do, d.text, d.ctx
		value := d.value
		e.api("POST", "/api/v1/lists", `{"name":"Partners","description":"Shared with partners"}`, 201, nil)

		do(chromedp.Click(chromedp.CSS(`nav a[href="/admin/workflows"]`)), chromedp.WaitVisible(chromedp.CSS("#new-workflow")))
		d.herePasses("the workflow rules, none yet")
		do(chromedp.Click(chromedp.CSS("#new-workflow")), chromedp.WaitVisible(chromedp.CSS("#workflow-form")),
			chromedp.SendKeys(chromedp.CSS("#name"), "Share with Partner AB"),
			chromedp.SetValue(chromedp.CSS("#trigger"), "consent.granted"),
			chromedp.SendKeys(chromedp.CSS("#condition"), `event.purpos == "Share with partners"`),
			chromedp.SetValue(chromedp.CSS("#a0-type"), "email_address"),
			chromedp.SendKeys(chromedp.CSS("#a0-to"), "leads@partner.example"),
			chromedp.SendKeys(chromedp.CSS("#a0-subject"), "A new lead"),
			chromedp.Click(chromedp.CSS("#a0-fields-first_name")), chromedp.Click(chromedp.CSS("#a0-fields-email")),
			chromedp.Click(chromedp.CSS("#save-rule")), chromedp.WaitVisible(chromedp.CSS("#condition-error")))
		if got := text("#condition-error"); !strings.Contains(got, "position 7") || !strings.Contains(got, "did you mean purpose?") {
			t.Fatalf("a misspelt fact: %q", got)
		}
		if value("#name") != "Share with Partner AB" || value("#a0-to") != "leads@partner.example" || value("#a0-type") != "email_address" {
			t.Fatal("the editor lost what was typed")
		}
		d.herePasses("the workflow editor with an error")

		do(chromedp.SetValue(chromedp.CSS("#condition"), `event.purpose == "Share with partners" && event.state == "granted"`),
			chromedp.Click(chromedp.CSS("#save-rule")), chromedp.WaitVisible(chromedp.CSS(".flash")))
		if got := text(".flash"); got != "Rule saved." {
			t.Fatalf("after saving the rule: %q", got)
		}
		if got := text("#state-h"); got != "This rule is on" {
			t.Fatalf("the saved rule: %q", got)
		}
		d.herePasses("the rule's page")
		page := strings.Split(strings.TrimPrefix(mustLocation(t, browser), e.srv.URL), "?")[0]
		d.pagesPass(e.srv.URL, "/admin/workflows", page+"/runs", "/admin/workflows/runs")
	})
}
