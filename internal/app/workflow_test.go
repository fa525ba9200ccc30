package app_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	evt "github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webhook"
	"github.com/consentry/consentry/internal/workflow"
)

// The seed's example, end to end in the running service: a contact grants
// "Share with partners" on their preferences page and confirms by email;
// the moment that consent is recorded, a workflow rule emails the partner
// the fields the operator picked over SMTP (the card number masked) and
// calls the CRM's webhook endpoint, whose delivery verifies with the
// Standard Webhooks reference library.
func TestSharingWithPartnersReachesThePartnerAtOnce(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		crm := newReceiver(t)
		e := startWithLocalWebhooks(t, db)
		ctx := context.Background()
		_, link := pageSetUp(e)
		e.api("POST", "/api/v1/purposes", `{"name":"Share with partners","legal_basis":"consent","text":"Share my details with named partners"}`, 201, nil)
		share := purposeID(e, "Share with partners")
		e.api("PUT", "/api/v1/settings/preferences-page", `{"access_condition":"","offers":[{"purpose":"Card on file"},{"purpose":"Share with partners"}],
			"statement":"We are Acme.","policies":[{"title":"Privacy policy","url":"https://acme.example/privacy"}],"footer":{"enabled":false},
			"access_email":false,"allow_stop_processing":true,"allow_erasure":true}`, 200, nil)
		// The endpoint takes only deletions: what it gets here, the rule sends.
		ep, secret, err := e.a.Webhooks.Create(ctx, webhook.EndpointInput{URL: crm.URL, EventTypes: []string{evt.ContactDeleted}})
		if err != nil {
			t.Fatal(err)
		}
		d, err := workflow.ParseDefinition([]byte(`{"name": "Partner", "trigger": "consent.granted",
			"condition": "event.purpose == \"Share with partners\" && event.state == \"granted\"",
			"actions": [{"type": "email_address", "to": "leads@partner.example", "subject": "A new lead", "fields": ["email", "card_number"]},
				{"type": "webhook", "endpoint_id": "` + ep.ID + `"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.a.Workflows.Create(ctx, d); err != nil {
			t.Fatal(err)
		}

		v := e.visitor()
		if code, _ := v.get(link); code != 200 {
			t.Fatalf("opening the page: %d", code)
		}
		if code, body := v.post(e.srv.URL+"/p", url.Values{"action": {"save"}, "consent." + share: {"granted"}, "v." + share: {"1"}}); code != 200 ||
			!strings.Contains(body, "Please check your email") {
			t.Fatalf("saving: %d %s", code, body)
		}
		confirm := confirmLinkRE.FindString(e.smtp.Wait(t, 1)[0].Text)
		if n := count(t, db, `SELECT count(*) FROM outbox WHERE kind = 'partner'`); n != 0 || confirm == "" {
			t.Fatalf("before confirming: %d partner emails, link %q", n, confirm)
		}
		if to := e.visitor().redirectOf(e.srv.URL+confirm, url.Values{}); to != e.srv.URL+"/p/done" {
			t.Fatalf("confirming redirects to %s", to)
		}

		partner := e.smtp.Wait(t, 2)[1]
		text := strings.ReplaceAll(partner.Text, "\r\n", "\n")
		if strings.Join(partner.To, ",") != "leads@partner.example" || !strings.Contains(text, "lena@example.com") ||
			!strings.Contains(text, "1111\n") || strings.Contains(string(partner.Raw), "4111111111111111") {
			t.Fatalf("the partner's email, to %v:\n%s", partner.To, partner.Raw)
		}
		waitFor(t, func() bool { n, _, _ := crm.Last(); return n > 0 })
		n, body, header := crm.Last()
		wh, _ := standardwebhooks.NewWebhook(secret)
		if err := wh.Verify(body, header); n != 1 || err != nil {
			t.Fatalf("%d deliveries; the last does not verify: %v: %s", n, err, body)
		}
		var got struct {
			Type string
			Data evt.ConsentData
		}
		if err := json.Unmarshal(body, &got); err != nil || got.Type != evt.ConsentGranted || got.Data.Purpose != "Share with partners" ||
			got.Data.Method != "preferences_page" {
			t.Fatalf("delivered %s (%v)", body, err)
		}
	})
}
