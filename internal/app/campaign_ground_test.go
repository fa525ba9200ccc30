package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestCampaignAudienceSkipsWithdrawnMarketingAPI: a contact who withdrew
// E-marketing by phone is left out of a campaign that serves "Sales and
// service", through the API: the audience counts them under
// marketing_email_withdrawn, the preview for them gives that reason, and
// sending reaches only the other subscriber.
func TestCampaignAudienceSkipsWithdrawnMarketingAPI(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		e.campaignToken()
		e.api("POST", "/api/v1/lists", `{"name":"Newsletter"}`, 201, nil)
		person := func(email, first string) string {
			t.Helper()
			var c struct{ ID string }
			e.api("POST", "/api/v1/contacts", `{"email":"`+email+`","first_name":"`+first+`",
				"consents":[{"purpose":"E-marketing","state":"granted","source":"Web form"}]}`, 201, &c)
			// Set-up only: double opt-in is reached through its own flow.
			if err := db.Write(context.Background(), func(tx *store.Tx) error {
				return contactstate.SetOptInTx(tx, c.ID, contactstate.DoubleOptIn, time.Now())
			}); err != nil {
				t.Fatal(err)
			}
			e.api("PUT", "/api/v1/contacts/"+c.ID+"/lists/Newsletter", `{"state":"subscribed"}`, 200, nil)
			return c.ID
		}
		person("c1@example.com", "C1")
		c2 := person("c2@example.com", "C2")
		e.api("POST", "/api/v1/contacts/"+c2+"/consents", `{"purpose":"E-marketing","state":"withdrawn","source":"Phone"}`, 201, nil)
		before := e.smtp.Received()

		var c campaign.Campaign
		e.api("POST", "/api/v1/campaigns", `{"name":"x","lists":["Newsletter"],"purpose":"Sales and service",
			"variants":[{"language":"en","subject":"Service news for {{first_name}}","html":"<p>Our new offers!</p>"}]}`, 201, &c)
		var aud campaign.Audience
		e.api("GET", "/api/v1/campaigns/"+c.ID+"/audience", "", 200, &aud)
		if aud.Selected != 2 || aud.Recipients != 1 || aud.Excluded[campaign.ReasonMarketingWithdrawn] != 1 {
			t.Fatalf("audience: %+v", aud)
		}
		var r campaign.Rendered
		e.api("GET", "/api/v1/campaigns/"+c.ID+"/preview?contact="+c2, "", 200, &r)
		if r.Reason != campaign.ReasonMarketingWithdrawn {
			t.Fatalf("preview for C2: %+v", r)
		}
		e.api("POST", "/api/v1/campaigns/"+c.ID+"/send", "", 200, &c)
		var p campaign.Progress
		waitFor(t, func() bool {
			e.api("GET", "/api/v1/campaigns/"+c.ID+"/progress", "", 200, &p)
			return p.Status == campaign.StatusSent
		})
		msgs := e.smtp.Wait(t, before+1)[before:]
		if len(msgs) != 1 || msgs[0].To[0] != "c1@example.com" || msgs[0].Subject != "Service news for C1" {
			t.Fatalf("sent: %d messages, the first %q to %v", len(msgs), msgs[0].Subject, msgs[0].To)
		}
		var rep campaign.Report
		e.api("GET", "/api/v1/campaigns/"+c.ID+"/report", "", 200, &rep)
		if a := rep.Campaign.Audience; a == nil || !a.Resolved || a.Excluded[campaign.ReasonMarketingWithdrawn] != 1 || rep.Sent != 1 {
			t.Fatalf("report: %+v", rep)
		}
	})
}
