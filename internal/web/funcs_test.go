package web

import (
	"testing"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/holds"
	"github.com/consentry/consentry/internal/settings"
)

// TestEveryValueHasALabel keeps the pages' labels in step with the
// vocabulary lists: a status or legal basis added there must be named here.
func TestEveryValueHasALabel(t *testing.T) {
	for name, c := range map[string]struct {
		values []string
		labels map[string]string
	}{
		"opt-in status":    {contactstate.OptInStatuses, optInLabels},
		"legal basis":      {consent.LegalBases, basisLabels},
		"role":             {auth.Roles, roleLabels},
		"hold basis":       {holds.Bases, holdBasisLabels},
		"campaign status":  {campaign.Statuses, campaignStatusLabels},
		"exclusion reason": {campaign.Reasons, reasonLabels},
		"tracking choice":  {settings.TrackingChoices, trackingLabels},
	} {
		for _, v := range c.values {
			if c.labels[v] == "" {
				t.Errorf("%s %q has no label", name, v)
			}
		}
		if len(c.labels) != len(c.values) {
			t.Errorf("%s: %d labels for %d values", name, len(c.labels), len(c.values))
		}
	}
}
