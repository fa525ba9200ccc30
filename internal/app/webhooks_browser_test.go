package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webhook"
)

// TestWebhookPagesInABrowser drives the webhook pages in Chromium on both
// databases: an endpoint is added with a URL the policy refuses, which is
// shown next to the URL with what was typed; put right, the page it leads
// to shows the signing secret once. A contact created through the API is
// delivered to the receiver, and the endpoint's log shows the delivery,
// whose page shows the attempt and the receiver's answer. The pages pass
// axe-core with no violation at 1280 and at 375 pixels and do not scroll
// sideways.
func TestWebhookPagesInABrowser(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		rc := newReceiver(t)
		e, d := signedIn(t, db, localWebhooks)
		do, text, browser := d.do, d.text, d.ctx
		ctx := context.Background()

		do(chromedp.Click(chromedp.CSS(`nav a[href="/admin/settings"]`)), chromedp.Click(chromedp.CSS(`#settings-nav a[href="/admin/webhooks"]`)),
			chromedp.WaitVisible(chromedp.CSS("#add-webhook")))
		d.herePasses("the webhook endpoints, none yet")
		do(chromedp.SendKeys(chromedp.CSS("#url"), "http://example.com/hook"), chromedp.SendKeys(chromedp.CSS("#description"), "CRM"),
			chromedp.Click(chromedp.CSS("#add-webhook")), chromedp.WaitVisible(chromedp.CSS("#url-error")))
		if d.value("#url") != "http://example.com/hook" || d.value("#description") != "CRM" || text("#url-error") == "" {
			t.Fatalf("a refused URL: %q, the form lost what was typed", text("#url-error"))
		}
		d.herePasses("the webhook form with an error")
		do(chromedp.SetValue(chromedp.CSS("#url"), rc.URL), chromedp.Click(chromedp.CSS("#add-webhook")), chromedp.WaitVisible(chromedp.CSS("#webhook-secret")))
		if got := text("#webhook-secret"); !strings.HasPrefix(got, "whsec_") {
			t.Fatalf("the secret shown: %q", got)
		}
		d.herePasses("the new endpoint's secret")
		page := strings.Split(strings.TrimPrefix(mustLocation(t, browser), e.srv.URL), "/created/")[0]

		e.api("POST", "/api/v1/contacts", `{"email":"hook@example.com"}`, 201, nil)
		all, err := e.a.Webhooks.List(ctx)
		if err != nil || len(all) != 1 {
			t.Fatalf("endpoints: %v %v", all, err)
		}
		waitFor(t, func() bool {
			ds, err := e.a.Webhooks.Deliveries(ctx, all[0].ID, webhook.Page{})
			return err == nil && len(ds) > 0 && ds[len(ds)-1].Status == webhook.StatusDelivered
		})
		do(chromedp.Navigate(e.srv.URL+page), chromedp.WaitVisible(chromedp.CSS("#deliveries td.delivery-delivered")),
			chromedp.Click(chromedp.CSS("#deliveries tbody tr:last-child th a")), chromedp.WaitVisible(chromedp.CSS(".attempt")))
		if got := text(".attempt .attempt-status"); got != "200" {
			t.Fatalf("the attempt's status: %q", got)
		}
		if got := text("pre.response"); got != "thanks <b>received</b>" {
			t.Fatalf("the answer shown: %q", got)
		}
		d.herePasses("a delivery's attempts")
		d.pagesPass(e.srv.URL, "/admin/webhooks", page)
	})
}
