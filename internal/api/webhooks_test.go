package api_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/consentry/consentry/internal/api"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webhook"
	"github.com/consentry/consentry/internal/webhook/webhooktest"
)

// Webhook endpoints through the API: the automation scope keeps them; a
// URL the policy refuses names the field and saves nothing; the secret is
// in the answer once, and the deliveries verify with it (the Standard
// Webhooks reference library); the log shows each delivery and attempt;
// replay sends the same webhook-id again; a rotated secret signs beside
// the new one.
func TestWebhooksThroughTheAPI(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		e.a.Webhooks.Policy.AllowHTTPLocalhost = true // as CONSENTRY_WEBHOOKS_ALLOW_HTTP_LOCALHOST=true does
		e.a.WebhookWorker.Client = webhook.NewClient(e.a.Webhooks.Policy, webhook.DefaultTimeout)
		auto := e.automation(t)
		ctx := context.Background()
		send := func() {
			t.Helper()
			if _, err := e.a.Webhooks.DispatchAll(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := e.a.WebhookWorker.SendDue(ctx); err != nil {
				t.Fatal(err)
			}
		}
		rc := webhooktest.NewReceiver(t)

		checkError(t, e.do(t, "GET", "/api/v1/webhooks", "", ""), "forbidden", "")
		for _, bad := range []struct{ body, field string }{
			{`{"url":"http://crm.example/hook"}`, "url"},
			{`{"url":"https://169.254.169.254/latest"}`, "url"},
			{`{"url":"https://crm.example:99999/hook"}`, "url"}, // no such port
			{`{"url":"` + rc.URL + `","event_types":["consent.maybe"]}`, "event_types"},
			{`{"description":"no url"}`, "url"},
		} {
			r := e.do(t, "POST", "/api/v1/webhooks", bad.body, auto)
			if r.status != http.StatusBadRequest {
				t.Errorf("%s: %d %s", bad.body, r.status, r.body)
				continue
			}
			if f := decodeAs[struct{ Error struct{ Field string } }](t, r.body).Error.Field; f != bad.field {
				t.Errorf("%s: field %q, want %q", bad.body, f, bad.field)
			}
		}
		if got := decodeAs[[]webhook.Endpoint](t, e.do(t, "GET", "/api/v1/webhooks", "", auto).body); len(got) != 0 {
			t.Fatalf("refused endpoints saved: %+v", got)
		}

		r := e.do(t, "POST", "/api/v1/webhooks", `{"url":"`+rc.URL+`","description":"CRM","event_types":["contact.created"]}`, auto)
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		ep := decodeAs[api.NewEndpoint](t, r.body)
		if !strings.HasPrefix(ep.Secret, "whsec_") || !ep.Enabled || strings.Contains(string(e.do(t, "GET", "/api/v1/webhooks/"+ep.ID, "", auto).body), ep.Secret) {
			t.Fatalf("new endpoint: %s", r.body)
		}
		e.do(t, "POST", "/api/v1/contacts", `{"email":"hook@example.com"}`, "")
		send()
		bodies, headers := rc.All()
		old, _ := standardwebhooks.NewWebhook(ep.Secret)
		if len(bodies) != 1 || old.Verify(bodies[0], headers[0]) != nil || !strings.Contains(string(bodies[0]), `"type":"contact.created"`) {
			t.Fatalf("received %d: %q", len(bodies), bodies)
		}

		path := "/api/v1/webhooks/" + ep.ID
		log := decodeAs[api.DeliveryPage](t, e.do(t, "GET", path+"/deliveries", "", auto).body)
		if len(log.Items) != 1 || log.Items[0].Status != webhook.StatusDelivered || log.Items[0].EventID != headers[0].Get("webhook-id") {
			t.Fatalf("log: %+v", log)
		}
		d := log.Items[0]
		detail := decodeAs[api.DeliveryDetail](t, e.do(t, "GET", path+"/deliveries/"+strconv.FormatInt(d.ID, 10), "", auto).body)
		if len(detail.AttemptLog) != 1 || detail.AttemptLog[0].StatusCode != 200 || detail.AttemptLog[0].LatencyMS <= 0 {
			t.Fatalf("detail: %+v", detail)
		}
		checkError(t, e.do(t, "GET", path+"/deliveries/999999", "", auto), "webhook_delivery_not_found", "")

		if r := e.do(t, "POST", path+"/deliveries/"+strconv.FormatInt(d.ID, 10)+"/replay", "", auto); r.status != 200 {
			t.Fatalf("replay: %d %s", r.status, r.body)
		}
		send()
		if bodies, headers := rc.All(); len(bodies) != 2 || headers[1].Get("webhook-id") != headers[0].Get("webhook-id") || string(bodies[1]) != string(bodies[0]) {
			t.Fatalf("the replay is not the same delivery: %q", bodies)
		}
		since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		if res := decodeAs[api.ReplayResult](t, e.do(t, "POST", path+"/replay", `{"since":"`+since+`"}`, auto).body); res.Queued != 1 {
			t.Fatalf("replay since queued %d", res.Queued)
		}
		checkError(t, e.do(t, "POST", path+"/replay", `{}`, auto), "required", "since")
		checkError(t, e.do(t, "POST", path+"/replay", `{"since":"yesterday"}`, auto), "invalid", "since")
		send()

		rot := decodeAs[api.RotatedSecret](t, e.do(t, "POST", path+"/rotate-secret", "", auto).body)
		if rot.Secret == ep.Secret || !rot.PreviousSecretUntil.After(time.Now()) {
			t.Fatalf("rotated: %+v", rot)
		}
		e.do(t, "POST", "/api/v1/contacts", `{"email":"hook2@example.com"}`, "")
		send()
		bodies, headers = rc.All()
		fresh, _ := standardwebhooks.NewWebhook(rot.Secret)
		last := len(bodies) - 1
		if old.Verify(bodies[last], headers[last]) != nil || fresh.Verify(bodies[last], headers[last]) != nil {
			t.Fatalf("during the overlap both secrets must verify: %s", headers[last].Get("webhook-signature"))
		}

		if r := e.do(t, "PATCH", path, `{"enabled":false,"description":"Old CRM"}`, auto); r.status != 200 ||
			decodeAs[webhook.Endpoint](t, r.body).Enabled {
			t.Fatalf("patch: %d %s", r.status, r.body)
		}
		if r := e.do(t, "DELETE", path, "", auto); r.status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		checkError(t, e.do(t, "GET", path, "", auto), "webhook_endpoint_not_found", "")
	})
}
