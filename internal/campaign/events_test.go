package campaign_test

import (
	"context"
	"testing"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/events/eventstest"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// A campaign that finishes sending writes campaign.sent once, with its
// recipients counted by status; starting to send writes none.
func TestCampaignSentWritesItsEvent(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		if _, err := f.lists.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("News")}); err != nil {
			t.Fatal(err)
		}
		anna := f.person("anna@example.com", "Anna", "en", contactstate.DoubleOptIn, true)
		bo := f.person("bo@example.com", "Bo", "en", contactstate.OptOutContact, true)
		for _, id := range []string{anna, bo} {
			f.subscribe(id, "News", lists.Subscribed)
		}
		c, err := f.svc.Create(ctx, audit.Actor{Kind: "user"}, campaign.Input{Name: ptr("Spring"), Lists: &[]string{"News"},
			Variants: &[]campaign.Variant{{Language: "en", Subject: "Hello", HTML: `<p>Hi</p>`}}})
		if err != nil {
			t.Fatal(err)
		}
		ev := eventstest.From(t, db)
		if _, err := f.svc.Send(ctx, audit.Actor{Kind: "user"}, c.ID); err != nil {
			t.Fatal(err)
		}
		f.run()
		f.smtp.Wait(t, 1)
		got := ev.Next(t)
		if len(got) != 1 || got[0].Type != events.CampaignSent || got[0].ContactID != "" {
			t.Fatalf("sending wrote %v", eventstest.Types(got))
		}
		d := eventstest.Data[events.CampaignSentData](t, got[0])
		if d.CampaignID != c.ID || d.Name != "Spring" || d.Recipients[campaign.RecipientSent] != 1 || d.Recipients[campaign.RecipientExcluded] != 1 {
			t.Fatalf("campaign.sent %+v", d)
		}
	})
}
