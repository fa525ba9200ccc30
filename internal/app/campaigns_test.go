package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// campaignToken makes e call the API with a token that has the campaigns
// scope, besides the operator's.
func (e *env) campaignToken() {
	e.t.Helper()
	secret, _, err := e.a.Tokens.Create(context.Background(), audit.Actor{Kind: "user"}, "campaigns", nil, append([]string{auth.ScopeCampaigns}, operatorScopes...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.token = secret
}

// TestCampaignsAPI drives a campaign through the API: content with an
// unknown tag is refused naming the field, the audience preview counts the
// exclusions, a test goes to a user only, sending reaches the recipients
// over SMTP, and a sent campaign can be neither paused nor deleted.
func TestCampaignsAPI(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		ctx := context.Background()

		// The ordinary token may not touch campaigns.
		e.api("GET", "/api/v1/campaigns", "", 403, nil)
		e.campaignToken()
		if _, err := e.a.Users.Create(ctx, audit.Actor{Kind: "user"}, auth.NewUser{Email: "mo@acme.example", Name: "Mo", Role: auth.RoleAdmin, Password: "a long enough passphrase"}); err != nil {
			t.Fatal(err)
		}

		e.api("POST", "/api/v1/lists", `{"name":"News"}`, 201, nil)
		person := func(email, first string, marketing bool) string {
			t.Helper()
			consents := ""
			if marketing {
				consents = `,"consents":[{"purpose":"E-marketing","state":"granted","source":"Web form"}]`
			}
			var c struct{ ID string }
			e.api("POST", "/api/v1/contacts", `{"email":"`+email+`","first_name":"`+first+`"`+consents+`}`, 201, &c)
			// Set-up only: double opt-in is reached through its own flow.
			if err := db.Write(ctx, func(tx *store.Tx) error {
				return contactstate.SetOptInTx(tx, c.ID, contactstate.DoubleOptIn, time.Now())
			}); err != nil {
				t.Fatal(err)
			}
			e.api("PUT", "/api/v1/contacts/"+c.ID+"/lists/News", `{"state":"subscribed"}`, 200, nil)
			return c.ID
		}
		anna := person("anna@example.com", "Anna", true)
		person("bo@example.com", "Bo", true)
		cleo := person("cleo@example.com", "Cleo", false)
		before := e.smtp.Received()

		var bad struct {
			Error struct{ Field, Message string }
		}
		e.api("POST", "/api/v1/campaigns", `{"name":"Spring","lists":["News"],"variants":[{"language":"en","subject":"Hi {{firstname}}","html":"<p>x</p>"}]}`, 400, &bad)
		if bad.Error.Field != "variants[0].subject" || !strings.Contains(bad.Error.Message, "{{firstname}}") {
			t.Fatalf("an unknown tag: %+v", bad)
		}
		var none []campaign.Campaign
		if e.api("GET", "/api/v1/campaigns", "", 200, &none); len(none) != 0 {
			t.Fatalf("a refused campaign was saved: %+v", none)
		}

		var c campaign.Campaign
		e.api("POST", "/api/v1/campaigns", `{"name":"Spring","lists":["News"],"variants":[{"language":"en","subject":"Spring news for {{first_name}}",
			"html":"<p>Hi {{first_name}}</p><p><a href=\"{{unsubscribe_url}}\">Leave</a></p>"}]}`, 201, &c)
		if c.Status != campaign.StatusDraft || c.CreatedBy == "" {
			t.Fatalf("created: %+v", c)
		}
		e.api("GET", "/api/v1/campaigns/nope", "", 404, nil)
		e.api("POST", "/api/v1/campaigns/nope/send", "", 404, nil)

		var aud campaign.Audience
		e.api("GET", "/api/v1/campaigns/"+c.ID+"/audience", "", 200, &aud)
		if aud.Selected != 3 || aud.Recipients != 2 || aud.Excluded[campaign.ReasonNoConsent] != 1 || aud.Resolved {
			t.Fatalf("audience: %+v", aud)
		}
		var r campaign.Rendered
		e.api("GET", "/api/v1/campaigns/"+c.ID+"/preview?contact="+anna, "", 200, &r)
		if r.Reason != "" || r.Subject != "Spring news for Anna" {
			t.Fatalf("preview for Anna: %+v", r)
		}
		e.api("GET", "/api/v1/campaigns/"+c.ID+"/preview?contact="+cleo, "", 200, &r)
		if r.Reason != campaign.ReasonNoConsent {
			t.Fatalf("preview for Cleo: %+v", r)
		}

		e.api("POST", "/api/v1/campaigns/"+c.ID+"/test", `{"to":["anna@example.com"]}`, 400, &bad)
		if bad.Error.Field != "to[0]" {
			t.Fatalf("a test to a contact: %+v", bad)
		}
		e.api("POST", "/api/v1/campaigns/"+c.ID+"/test", `{"to":["mo@acme.example"]}`, 204, nil)
		if msg := e.smtp.Wait(t, before+1)[before]; msg.Subject != "[Test] Spring news for Alex" || msg.To[0] != "mo@acme.example" {
			t.Fatalf("test message: %q to %v", msg.Subject, msg.To)
		}

		e.api("POST", "/api/v1/campaigns/"+c.ID+"/pause", "", 409, nil)
		e.api("POST", "/api/v1/campaigns/"+c.ID+"/send", "", 200, &c)
		msgs := e.smtp.Wait(t, before+3)[before+1:]
		got := map[string]string{}
		for _, m := range msgs {
			got[m.To[0]] = m.Subject
		}
		if len(got) != 2 || got["anna@example.com"] != "Spring news for Anna" || got["bo@example.com"] != "Spring news for Bo" {
			t.Fatalf("sent: %v", got)
		}
		var p campaign.Progress
		waitFor(t, func() bool {
			e.api("GET", "/api/v1/campaigns/"+c.ID+"/progress", "", 200, &p)
			return p.Status == campaign.StatusSent
		})
		if p.Recipients[campaign.RecipientSent] != 2 || p.Done != 2 || p.Total != 2 {
			t.Fatalf("progress: %+v", p)
		}
		var rep campaign.Report
		e.api("GET", "/api/v1/campaigns/"+c.ID+"/report", "", 200, &rep)
		if a := rep.Campaign.Audience; a == nil || !a.Resolved || a.Excluded[campaign.ReasonNoConsent] != 1 || rep.Sent != 2 || rep.Delivered != 2 {
			t.Fatalf("report: %+v", rep)
		}
		var conflict struct{ Error struct{ Code, Field string } }
		e.api("POST", "/api/v1/campaigns/"+c.ID+"/pause", "", 409, &conflict)
		if conflict.Error.Field != "status" {
			t.Fatalf("pause a sent campaign: %+v", conflict)
		}
		e.api("DELETE", "/api/v1/campaigns/"+c.ID, "", 409, nil)
		e.api("PATCH", "/api/v1/campaigns/"+c.ID, `{"name":"Later"}`, 409, nil)
	})
}

// TestCampaignTemplatesAPI: templates are kept through the API, one
// without {{content}} is refused naming the field, a campaign whose
// template and body lack the unsubscribe link is refused naming the
// body, and a template in use cannot be deleted.
func TestCampaignTemplatesAPI(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		e.campaignToken()
		var bad struct{ Error struct{ Field string } }
		e.api("POST", "/api/v1/campaign-templates", `{"name":"Plain","html":"<p>no body</p>"}`, 400, &bad)
		if bad.Error.Field != "html" {
			t.Fatalf("a template without content: %+v", bad)
		}
		var tpl campaign.Template
		e.api("POST", "/api/v1/campaign-templates", `{"name":"Plain","html":"<div>{{content}}</div>"}`, 201, &tpl)
		e.api("PATCH", "/api/v1/campaign-templates/"+tpl.ID, `{"name":"Simple"}`, 200, &tpl)
		if tpl.Name != "Simple" || tpl.HTML != "<div>{{content}}</div>" {
			t.Fatalf("changed: %+v", tpl)
		}
		var all []campaign.Template
		if e.api("GET", "/api/v1/campaign-templates", "", 200, &all); len(all) != 1 {
			t.Fatalf("templates: %+v", all)
		}
		// The template has no unsubscribe link: the body must carry it.
		e.api("POST", "/api/v1/campaigns", `{"name":"Spring","template_id":"`+tpl.ID+`","condition":"email != \"\"","variants":[{"language":"en","subject":"Hi","html":"<p>x</p>"}]}`, 400, &bad)
		if bad.Error.Field != "variants[0].html" {
			t.Fatalf("a campaign without an unsubscribe link: %+v", bad)
		}
		e.api("POST", "/api/v1/campaigns", `{"name":"Spring","template_id":"`+tpl.ID+`","condition":"email != \"\"","variants":[{"language":"en","subject":"Hi","html":"<p>x</p><p><a href=\"{{unsubscribe_url}}\">Leave</a></p>"}]}`, 201, nil)
		e.api("DELETE", "/api/v1/campaign-templates/"+tpl.ID, "", 409, nil)
		e.api("GET", "/api/v1/campaign-templates/nope", "", 404, nil)
		e.api("DELETE", "/api/v1/campaign-templates/nope", "", 404, nil)
	})
}
