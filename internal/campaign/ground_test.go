package campaign_test

import (
	"context"
	"slices"
	"testing"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestCampaignForAnotherPurposeSkipsWithdrawnMarketing: a campaign that
// serves a purpose other than E-marketing ("Sales and service", on the
// legal basis of contract) does not reach a contact who withdrew
// E-marketing, the purpose that governs marketing email: the preview and
// the audience fixed at sending exclude them as marketing_email_withdrawn,
// a contact who withdraws E-marketing after the audience was fixed is
// stopped by the check each batch makes as its hand-over starts, with the
// same reason, and the SMTP server receives the campaign only from those
// who said no to nothing. An opt-out stops it too, and so does an
// objection to the campaign's own purpose.
func TestCampaignForAnotherPurposeSkipsWithdrawnMarketing(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		if _, err := f.lists.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("Customers")}); err != nil {
			t.Fatal(err)
		}
		say := func(id, purpose, state string) {
			t.Helper()
			if _, err := f.cs.Record(ctx, id, consent.RecordInput{Purpose: purpose, State: state, Source: "Phone",
				Actor: consent.Actor{Kind: consent.ActorContact, ID: id}, Evidence: consent.Evidence{Method: "api"}}); err != nil {
				t.Fatal(err)
			}
		}
		anna := f.person("anna@example.com", "Anna", "en", contactstate.DoubleOptIn, true)
		dan := f.person("dan@example.com", "Dan", "en", contactstate.DoubleOptIn, false) // no E-marketing record: nothing said
		cleo := f.person("cleo@example.com", "Cleo", "en", contactstate.DoubleOptIn, true)
		say(cleo, "E-marketing", consent.StateWithdrawn)
		eva := f.person("eva@example.com", "Eva", "en", contactstate.OptOutContact, false)
		finn := f.person("finn@example.com", "Finn", "en", contactstate.OptOutUser, false)
		gus := f.person("gus@example.com", "Gus", "en", contactstate.DoubleOptIn, true)
		say(gus, "Sales and service", consent.StateWithdrawn) // an objection to the campaign's purpose
		hugo := f.person("hugo@example.com", "Hugo", "en", contactstate.DoubleOptIn, true)
		for _, id := range []string{anna, dan, cleo, eva, finn, gus, hugo} {
			f.subscribe(id, "Customers", lists.Subscribed)
		}
		c, err := f.svc.Create(ctx, audit.Actor{Kind: "user"}, campaign.Input{Name: ptr("Service news"), Lists: &[]string{"Customers"}, Purpose: ptr("Sales and service"),
			Variants: &[]campaign.Variant{{Language: "en", Subject: "Service news for {{first_name}}", HTML: "<p>Our new offers!</p>"}}})
		if err != nil {
			t.Fatal(err)
		}
		excluded := map[string]int64{campaign.ReasonMarketingWithdrawn: 1, campaign.ReasonOptedOutContact: 1,
			campaign.ReasonOptedOutUser: 1, campaign.ReasonNoConsent: 1}
		check := func(what string, a *campaign.Audience, recipients int64) {
			t.Helper()
			if a.Selected != 7 || a.Recipients != recipients {
				t.Errorf("%s: %d selected, %d recipients; want 7 and %d", what, a.Selected, a.Recipients, recipients)
			}
			for _, r := range campaign.Reasons {
				if a.Excluded[r] != excluded[r] {
					t.Errorf("%s: %s = %d, want %d", what, r, a.Excluded[r], excluded[r])
				}
			}
		}
		preview, err := f.svc.Preview(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		check("preview", preview, 3)

		// The audience is fixed (sending, paused), then Hugo says no to
		// E-marketing before his message goes.
		if _, err := f.svc.Send(ctx, audit.Actor{Kind: "user"}, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Pause(ctx, audit.Actor{Kind: "user"}, c.ID); err != nil {
			t.Fatal(err)
		}
		fixed, err := f.svc.Resolve(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		check("audience fixed", fixed, 3)
		say(hugo, "E-marketing", consent.StateWithdrawn)
		if _, err := f.svc.Resume(ctx, audit.Actor{Kind: "user"}, c.ID); err != nil {
			t.Fatal(err)
		}
		f.run()

		var to []string
		for _, m := range f.smtp.Wait(t, 2) {
			to = append(to, m.To...)
		}
		slices.Sort(to)
		if !slices.Equal(to, []string{"anna@example.com", "dan@example.com"}) || f.smtp.Received() != 2 {
			t.Fatalf("the campaign reached %v (%d messages), want Anna and Dan", to, f.smtp.Received())
		}
		want := map[string][2]string{
			anna: {campaign.RecipientSent, ""},
			dan:  {campaign.RecipientSent, ""},
			cleo: {campaign.RecipientExcluded, campaign.ReasonMarketingWithdrawn},
			eva:  {campaign.RecipientExcluded, campaign.ReasonOptedOutContact},
			finn: {campaign.RecipientExcluded, campaign.ReasonOptedOutUser},
			gus:  {campaign.RecipientExcluded, campaign.ReasonNoConsent},
			hugo: {campaign.RecipientSuppressed, campaign.ReasonMarketingWithdrawn},
		}
		for id, w := range want {
			var status, reason string
			if err := db.Read.QueryRowContext(ctx, `SELECT status, reason FROM campaign_recipients WHERE contact_id = $1`, id).Scan(&status, &reason); err != nil {
				t.Fatal(err)
			}
			if status != w[0] || reason != w[1] {
				t.Errorf("recipient %s: %s %q, want %s %q", id, status, reason, w[0], w[1])
			}
		}
		r, err := f.svc.Report(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Sent != 2 || r.Suppressed[campaign.ReasonMarketingWithdrawn] != 1 {
			t.Fatalf("report: %d sent, stopped at sending %v", r.Sent, r.Suppressed)
		}
	})
}
