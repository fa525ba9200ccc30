package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestDashboardCoverageFigures: a purpose on consent shows how many
// granted, their share and how many withdrew; a purpose on legitimate
// interests shows its legal basis and the contacts who objected, never a
// share of consent; the opt-in status over time stays.
func TestDashboardCoverageFigures(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		ctx := context.Background()
		// Twelve contacts: E-marketing granted by 6, withdrawn by 3.
		contacttest.SeedMillion(t, db, 12)
		name, basis, desc := "Product analytics", consent.BasisLegitimateInterests, "How the product is used."
		if _, err := e.a.Consent.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: &name, LegalBasis: &basis, Text: &desc}); err != nil {
			t.Fatal(err)
		}
		// Two contacts object to the analytics.
		for _, id := range []string{"c1", "c2"} {
			if _, err := e.a.Consent.Record(ctx, id, consent.RecordInput{Purpose: name, State: consent.StateWithdrawn, Source: "API",
				Actor: consent.Actor{Kind: consent.ActorSystem}, Evidence: consent.Evidence{Method: "api"}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.a.Tally.Count(ctx); err != nil {
			t.Fatal(err)
		}
		code, body := admin.get(e.srv.URL + "/admin/")
		if code != 200 {
			t.Fatalf("dashboard: %d %s", code, body)
		}
		for _, want := range []string{
			// Beside the bar, and in words for screen readers.
			">6</text>", ">50% of 12 contacts granted; 3 withdrawn</text>",
			"E-marketing: 6 (50% of 12 contacts granted; 3 withdrawn)",
			">Legal basis: legitimate interests</text>", ">2 objections, no consent asked</text>",
			"Product analytics (Legal basis: legitimate interests, 2 objections, no consent asked)",
			`id="optin-history"`, "Opt-in status over time",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("the dashboard lacks %q", want)
			}
		}
		if strings.Contains(body, "Product analytics:") || strings.Contains(body, "of 12 contacts granted; 2 withdrawn") {
			t.Errorf("a purpose on legitimate interests is shown as a share of consent: %s", body)
		}
	})
}
