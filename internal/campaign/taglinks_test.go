package campaign_test

import (
	"context"
	"github.com/consentry/consentry/internal/audit"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestTagsInLinksAreFilledIn: a tag that is a link's whole address
// ({{preferences_url}}, {{unsubscribe_url}}, with quotes of either kind)
// or part of one (https://acme.example/offer?name={{first_name}}) is
// filled in in the HTML part of the message the mail server receives,
// percent-encoded inside an address and escaped for the attribute; such a
// personal link is not wrapped for tracking, while the operator's other
// links are, and still lead where they did. The plain-text part has the
// same addresses.
func TestTagsInLinksAreFilledIn(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		if _, err := settings.Update(ctx, db, settings.Patch{CampaignsPatch: settings.CampaignsPatch{
			EngagementTracking: ptr(settings.TrackingLegitimate)}}, audit.Actor{Kind: "user"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		f.person("ann@example.com", `Ann & "Bo"`, "en", contactstate.DoubleOptIn, true)
		c, err := f.svc.Create(ctx, audit.Actor{Kind: "user"}, campaign.Input{Name: ptr("Offer"), Condition: ptr(`email != ""`), Variants: &[]campaign.Variant{{
			Language: "en", Subject: "Hi {{first_name}}",
			HTML: `<p><a href="{{preferences_url}}">Your preferences</a> <a href='{{ unsubscribe_url }}'>Leave</a></p>` +
				`<p><a href="https://acme.example/offer?name={{first_name}}&amp;x=1">Your offer</a> <a href="https://acme.example/plain">More</a></p>`}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Send(ctx, audit.Actor{Kind: "user"}, c.ID); err != nil {
			t.Fatal(err)
		}
		f.run()
		m := f.smtp.Wait(t, 1)[0]
		if strings.Contains(m.HTML, "{{") || strings.Contains(m.Text, "{{") {
			t.Fatalf("a tag left as it was:\n%s\n%s", m.HTML, m.Text)
		}
		unsub := strings.Trim(m.Header.Get("List-Unsubscribe"), "<>")
		prefs := regexp.MustCompile(`href="(https://consent\.example/m/p/[^"]+)">Your preferences</a> <a href='`).FindStringSubmatch(m.HTML)
		if prefs == nil || !strings.Contains(m.HTML, `<a href='`+unsub+`'>Leave</a>`) {
			t.Fatalf("the preferences and unsubscribe links in the body:\n%s", m.HTML)
		}
		// The footer's preferences link is the same link.
		if !strings.Contains(m.HTML, `<a href="`+prefs[1]+`">Your preferences</a> |`) {
			t.Fatalf("the body's preferences link %s is not the footer's:\n%s", prefs[1], m.HTML)
		}
		const offer = `https://acme.example/offer?name=Ann%20%26%20%22Bo%22&x=1`
		if !strings.Contains(m.HTML, `<a href="`+strings.ReplaceAll(offer, "&", "&amp;")+`">Your offer</a>`) ||
			!strings.Contains(m.Text, "Your offer ("+offer+")") {
			t.Fatalf("the personal offer link:\n%s\n%s", m.HTML, m.Text)
		}
		click := regexp.MustCompile(`<a href="https://consent\.example/m/c/(\d+)/(\d+)/[^"]+">More</a>`).FindStringSubmatch(m.HTML)
		if click == nil {
			t.Fatalf("the operator's other link is not tracked:\n%s", m.HTML)
		}
		rid, _ := strconv.ParseInt(click[1], 10, 64)
		n, _ := strconv.Atoi(click[2])
		target, err := f.svc.Target(ctx, rid)
		if err != nil {
			t.Fatal(err)
		}
		if to, err := f.sender.ClickTarget(ctx, target, n); err != nil || to != "https://acme.example/plain" {
			t.Fatalf("the tracked link leads to %q (%v)", to, err)
		}
	})
}
