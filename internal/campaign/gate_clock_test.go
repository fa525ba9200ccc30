package campaign_test

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestSendTimeCheckIsAsOfNow: the check each batch makes under the fence
// judges consents as of its own time, not the time the campaign was
// prepared for sending: a consent that expires while a long campaign
// sends stops the messages after its expiry.
func TestSendTimeCheckIsAsOfNow(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		bo := f.person("bo@example.com", "Bo", "en", contactstate.DoubleOptIn, false)
		expires := time.Now().Add(time.Hour)
		if _, err := f.cs.Record(ctx, bo, consent.RecordInput{Purpose: "E-marketing", State: consent.StateGranted, Source: "API", ExpiresAt: &expires,
			Actor: consent.Actor{Kind: consent.ActorSystem}, Evidence: consent.Evidence{Method: "api"}}); err != nil {
			t.Fatal(err)
		}
		clock := time.Now()
		f.svc.Now = func() time.Time { return clock }
		c, err := f.svc.Create(ctx, audit.Actor{Kind: "user"}, campaign.Input{Name: ptr("All"), Condition: ptr(`email != ""`),
			Variants: &[]campaign.Variant{{Language: "en", Subject: "Hi", HTML: "<p>Hi</p>"}}})
		if err != nil {
			t.Fatal(err)
		}
		reason, err := campaign.ReasonAtSend(ctx, f.svc, c)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := reason(bo); err != nil || r != "" {
			t.Fatalf("before the consent expires, Bo is held back for %q (%v)", r, err)
		}
		clock = clock.Add(2 * time.Hour) // the campaign is still sending
		if r, err := reason(bo); err != nil || r != campaign.ReasonNoConsent {
			t.Fatalf("after the consent expired, Bo is held back for %q (%v), want %q", r, err, campaign.ReasonNoConsent)
		}
	})
}
