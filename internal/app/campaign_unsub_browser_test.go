package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestCampaignUnsubscribeInABrowser opens a campaign message's
// unsubscribe link in Chromium as its recipient would: the page names the
// list and passes axe-core at 1280 and 375 pixels; its button unsubscribes
// from that list only and leads to a page that says so, which passes too
// and leads back to the preferences page.
func TestCampaignUnsubscribeInABrowser(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		d := newDriver(t)
		browser := d.ctx
		ctx := context.Background()
		anna, link := newsCampaign(t, e)
		page := strings.TrimPrefix(link, e.srv.URL)
		d.pagesPass(e.srv.URL, page)
		if got := d.text("main"); !strings.Contains(got, "News") {
			t.Fatalf("the page does not name the list: %q", got)
		}
		d.do(chromedp.Navigate(link), chromedp.Click(chromedp.CSS(`form button[type="submit"]`)), chromedp.WaitNotPresent(chromedp.CSS(`form button[type="submit"]`)))
		done := strings.TrimPrefix(mustLocation(t, browser), e.srv.URL)
		d.pagesPass(e.srv.URL, done)
		subs, err := lists.Subscriptions(ctx, e.a.DB.Read, anna)
		if err != nil || len(subs) != 1 || subs[0].State != lists.Unsubscribed {
			t.Fatalf("subscriptions: %+v %v", subs, err)
		}
		// The done page leads back to her preferences, at their email
		// section.
		d.do(chromedp.Click(chromedp.CSS("#back")), chromedp.WaitVisible(chromedp.CSS("#email")))
		if got := d.text("#email"); !strings.Contains(got, "News") {
			t.Fatalf("back from the done page: %q", got)
		}
	})
}

// newsCampaign sends a campaign on the list News to its one subscriber,
// Anna, and returns her id and the message's unsubscribe link.
func newsCampaign(t testing.TB, e *env) (string, string) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.a.Lists.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("News")}); err != nil {
		t.Fatal(err)
	}
	anna := campaignPerson(t, e, "anna@example.com", "E-marketing")
	if _, err := e.a.Lists.Set(ctx, anna, "News", lists.Subscribed, lists.SourceAPI, nil); err != nil {
		t.Fatal(err)
	}
	return anna, unsubscribeLink(sendCampaign(t, e, "Spring", []string{"News"}, "", 1)[0])
}
