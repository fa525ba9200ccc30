package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestCampaignsInABrowser drives the campaign pages in Chromium on both
// databases: a campaign made through the form shows its audience with
// the exclusions by reason, previews as a contact, and is sent with the
// Send now button until its page says Sent with a full progress bar and
// its report drawn as charts; the campaign settings are saved from the
// settings page.
// Every page passes axe-core with no violation at 1280 and at 375
// pixels, and none scrolls sideways on a phone.
func TestCampaignsInABrowser(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e, d, ana := campaignBrowser(t, db)
		browser, text, do := d.ctx, d.text, d.do

		do(chromedp.Navigate(e.srv.URL+"/admin/"), chromedp.Click(chromedp.CSS(`nav a[href="/admin/campaigns"]`)),
			chromedp.WaitVisible(chromedp.CSS("#new-campaign")), chromedp.Click(chromedp.CSS("#new-campaign")),
			chromedp.WaitVisible(chromedp.CSS("#subject_en")),
			chromedp.SendKeys(chromedp.CSS("#name"), "Spring news"),
			chromedp.SendKeys(chromedp.CSS("#condition"), `lower(email) endsWith "@example.com"`),
			chromedp.SendKeys(chromedp.CSS("#subject_en"), "News for {{first_name}}"),
			chromedp.SendKeys(chromedp.CSS("#html_en"), "<p>Hello {{first_name}}</p>"),
			chromedp.Submit(chromedp.CSS("#name")), chromedp.WaitVisible(chromedp.CSS(".flash")))
		if got := text(".flash"); got != "Campaign saved as a draft." {
			t.Fatalf("flash: %q", got)
		}
		page := strings.Split(mustLocation(t, browser), "?")[0]
		if got := text("#audience-recipients"); got != "2" {
			t.Fatalf("recipients: %q", got)
		}
		if got := text("#audience-counts"); !strings.Contains(got, "No consent to the purpose") || !strings.Contains(got, "Opted out (by the contact)") {
			t.Fatalf("exclusions: %q", got)
		}
		do(chromedp.SendKeys(chromedp.CSS("#contact"), "ana@example.com"), chromedp.Submit(chromedp.CSS("#contact")),
			chromedp.WaitVisible(chromedp.CSS("#preview-subject")))
		if got := text("#preview-subject"); got != "News for An" {
			t.Fatalf("preview subject: %q", got)
		}
		preview := strings.TrimPrefix(mustLocation(t, browser), e.srv.URL)
		if !framed(t, browser, "/preview/"+ana+"/html") {
			t.Fatal("the preview's frame did not load the message")
		}

		pages := []string{"/admin/campaigns", "/admin/campaigns/new", strings.TrimPrefix(page, e.srv.URL), preview,
			strings.TrimPrefix(page, e.srv.URL) + "/edit", "/admin/campaign-templates", "/admin/campaign-templates/new"}
		d.pagesPass(e.srv.URL, pages...)

		do(chromedp.Navigate(page), chromedp.Click(chromedp.CSS("#send-now")), chromedp.WaitVisible(chromedp.CSS(".flash")))
		if got := text(".flash"); got != "Sending started." {
			t.Fatalf("after Send now: %q", got)
		}
		e.smtp.Wait(t, 2)
		for text("#campaign-status") != "Sent" {
			do(chromedp.Navigate(page))
		}
		if got := text("#progress-text"); got != "2 of 2 done" {
			t.Fatalf("progress: %q", got)
		}
		if got := text("#report-summary"); !strings.HasPrefix(got, "2 sent, 2 delivered, 0 bounced.") || !strings.Contains(got, "of 0 tracked recipients") {
			t.Fatalf("report: %q", got)
		}
		if got := text("#report") + text("#audience-chart"); !strings.Contains(got, "Opens and clicks") || !strings.Contains(got, "Left out: No consent") {
			t.Fatalf("report charts: %q", got)
		}

		// The campaign settings, saved through their section of the settings page.
		do(chromedp.Navigate(e.srv.URL+"/admin/settings"), chromedp.WaitVisible(chromedp.CSS("#campaigns-h")),
			chromedp.SendKeys(chromedp.CSS("#sender_address"), "news@acme.example"),
			chromedp.Click(chromedp.CSS("#tracking-consent")), chromedp.Submit(chromedp.CSS("#sender_address")),
			chromedp.WaitVisible(chromedp.CSS(".flash, .error")))
		if got := text(".flash, .error"); got != "Settings saved." {
			t.Fatalf("settings: %q", got)
		}
		d.pagesPass(e.srv.URL, strings.TrimPrefix(page, e.srv.URL), "/admin/campaigns", "/admin/settings")
	})
}

// campaignBrowser starts the service on db with the contacts of
// campaignAudience, and Chromium signed in as the first admin; it returns
// the service, the browser's driver and the first contact's id.
func campaignBrowser(t testing.TB, db *store.DB) (*env, driver, string) {
	t.Helper()
	e, d := signedIn(t, db)
	return e, d, campaignAudience(e, db)
}

// framed reports whether the browser shows a frame at a URL ending in
// suffix: a frame blocked by a policy, or sent to sign in, has another.
// The sandboxed preview runs in its own process, so it is a target of
// its own rather than a frame of the page.
func framed(t testing.TB, ctx context.Context, suffix string) bool {
	t.Helper()
	// The frame loads after the page that holds it: look until it is
	// there, or for a generous while.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts, err := chromedp.Call(ctx, target.GetTargets, target.GetTargetsParams{})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range ts.TargetInfos {
			if x.Type == "iframe" && strings.HasSuffix(x.URL, suffix) {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond): // back off between looks
		}
	}
}
