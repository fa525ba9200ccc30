package app_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/consentry/consentry/internal/audit"
	evt "github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webhook"
	"github.com/consentry/consentry/internal/webhook/webhooktest"
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
		ep, secret, err := e.a.Webhooks.Create(ctx, audit.Actor{Kind: "user"}, webhook.EndpointInput{URL: crm.URL, EventTypes: []string{evt.ContactDeleted}})
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
		if _, err := e.a.Workflows.Create(ctx, audit.Actor{Kind: "user"}, d); err != nil {
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
		var got struct {
			Type string
			Data evt.ConsentData
		}
		body := onlyDelivery(t, crm, secret, &got)
		if got.Type != evt.ConsentGranted || got.Data.Purpose != "Share with partners" ||
			got.Data.Method != "preferences_page" {
			t.Fatalf("delivered %s", body)
		}
	})
}

// A rule's webhook action aimed at an endpoint that is turned off does not
// fail its run: the call waits, pending, as every delivery to the endpoint
// does, the run log says so, and the call is made, signed, once the
// endpoint is turned on again.
func TestWorkflowWebhookToAnEndpointTurnedOffWaits(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		crm := newReceiver(t)
		e := startWithLocalWebhooks(t, db)
		ctx := context.Background()
		// The endpoint takes only deletions: what it gets here, the rule sends.
		ep, secret, err := e.a.Webhooks.Create(ctx, audit.Actor{Kind: "user"}, webhook.EndpointInput{URL: crm.URL, EventTypes: []string{evt.ContactDeleted}})
		if err != nil {
			t.Fatal(err)
		}
		off, on := false, true
		if _, err := e.a.Webhooks.Update(ctx, audit.Actor{Kind: "user"}, ep.ID, webhook.EndpointPatch{Enabled: &off}); err != nil {
			t.Fatal(err)
		}
		d, err := workflow.ParseDefinition([]byte(`{"name": "Tell the CRM", "trigger": "contact.created",
			"actions": [{"type": "webhook", "endpoint_id": "` + ep.ID + `"}, {"type": "set_field", "field": "stage", "value": "told"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		rule, err := e.a.Workflows.Create(ctx, audit.Actor{Kind: "user"}, d)
		if err != nil {
			t.Fatal(err)
		}
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"waits@example.com"}`, 201, &c)

		var run *workflow.Run
		waitFor(t, func() bool {
			runs, _, err := e.a.Workflows.Runs(ctx, workflow.RunQuery{RuleID: rule.ID})
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) == 1 && runs[0].Status != workflow.StatusWaiting {
				run = runs[0]
			}
			return run != nil
		})
		if run.Status != workflow.StatusDone || len(run.Done) != 2 || run.Done[0].EndpointID != ep.ID ||
			run.Done[0].Note != webhook.WaitingNote || run.Done[1].Field != "stage" {
			t.Fatalf("the run: %+v", run)
		}
		ds, err := e.a.Webhooks.Deliveries(ctx, ep.ID, webhook.Page{Limit: 10})
		if err != nil || len(ds) != 1 || ds[0].Status != webhook.StatusPending || ds[0].EventType != evt.ContactCreated || ds[0].Attempts != 0 {
			t.Fatalf("while the endpoint is off: deliveries %+v, %v", ds, err)
		}
		if n, _, _ := crm.Last(); n != 0 {
			t.Fatalf("an endpoint turned off was called %d times", n)
		}

		if _, err := e.a.Webhooks.Update(ctx, audit.Actor{Kind: "user"}, ep.ID, webhook.EndpointPatch{Enabled: &on}); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Type string
			Data evt.ContactCreatedData
		}
		if body := onlyDelivery(t, crm, secret, &got); got.Type != evt.ContactCreated || got.Data.ContactID != c.ID {
			t.Fatalf("delivered %s", body)
		}
	})
}

// onlyDelivery waits for crm's first delivery, checks that it is the only
// one and verifies with the Standard Webhooks reference library under
// secret, decodes it into v and returns its body.
func onlyDelivery(t testing.TB, crm *webhooktest.Receiver, secret string, v any) []byte {
	t.Helper()
	waitFor(t, func() bool { n, _, _ := crm.Last(); return n > 0 })
	n, body, header := crm.Last()
	wh, _ := standardwebhooks.NewWebhook(secret)
	if err := wh.Verify(body, header); n != 1 || err != nil {
		t.Fatalf("%d deliveries; the last does not verify: %v: %s", n, err, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("delivered %s: %v", body, err)
	}
	return body
}
