package app_test

import (
	"context"
	"html"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webhook"
	"github.com/consentry/consentry/internal/webhook/webhooktest"
)

// newReceiver starts a webhook receiver on this machine (webhooktest).
func newReceiver(t testing.TB) *webhooktest.Receiver { return webhooktest.NewReceiver(t) }

// localWebhooks lets a's webhook endpoints be on this machine over http,
// as CONSENTRY_WEBHOOKS_ALLOW_HTTP_LOCALHOST=true does, for a receiver in
// the test.
func localWebhooks(a *app.App) {
	a.Webhooks.Policy.AllowHTTPLocalhost = true
	a.WebhookWorker.Client = webhook.NewClient(a.Webhooks.Policy, webhook.DefaultTimeout)
}

// startWithLocalWebhooks starts the service with localWebhooks.
func startWithLocalWebhooks(t testing.TB, db *store.DB) *env { return start(t, db, localWebhooks) }

var webhookSecretRE = regexp.MustCompile(`<code class="secret" id="webhook-secret">(whsec_[^<]+)</code>`)

// TestWebhookPages: an endpoint is added on the webhooks page, its secret
// shown once on the page the form leads to (a reload says it cannot be
// shown again); a refused URL or no event type is shown next to its input
// with what was typed, and nothing saved. A change made through the API
// is delivered, signed with that secret, and its delivery and attempt are
// in the endpoint's log; a delivery is replayed, and so are those since a
// time. The endpoint is changed, turned off, its secret rotated (the new
// one shown once, the old one's end said) and deleted with its log; then
// its pages are not found. The workflow editor offers the endpoint by its
// URL. An agent may not see the pages.
func TestWebhookPages(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		rc := newReceiver(t)
		e := startWithLocalWebhooks(t, db)
		ctx := context.Background()
		admin := e.firstAdmin()
		base := e.srv.URL + "/admin/webhooks"

		if code, body := admin.get(base); code != 200 || !strings.Contains(body, "No webhook endpoint yet.") ||
			!strings.Contains(body, `href="/admin/webhooks" aria-current="page"`) || !strings.Contains(body, `href="/admin/docs/webhooks"`) ||
			!strings.Contains(body, `id="scope-all" name="scope" value="all" checked`) ||
			!strings.Contains(body, "<code>consent.granted</code>: A consent record granting a purpose was written.") {
			t.Fatalf("no endpoints: %d %s", code, body)
		}
		nothingSaved := func(what string) {
			t.Helper()
			if all, err := e.a.Webhooks.List(ctx); err != nil || len(all) != 0 {
				t.Fatalf("%s: saved %d endpoints, %v", what, len(all), err)
			}
		}
		for _, bad := range []string{"http://example.com/hook", "https://169.254.169.254/latest", "not a url"} {
			code, body := admin.post(base, url.Values{"url": {bad}, "description": {"CRM"}, "scope": {"all"}})
			if code != 400 || !strings.Contains(body, `id="url-error" role="alert"`) || !strings.Contains(body, `aria-describedby="url-error"`) ||
				!strings.Contains(body, `value="CRM"`) {
				t.Fatalf("URL %s: %d %s", bad, code, body)
			}
			nothingSaved(bad)
		}
		code, body := admin.post(base, url.Values{"url": {rc.URL}, "scope": {"some"}})
		if code != 400 || !strings.Contains(body, `id="event_types-error" role="alert"`) || !strings.Contains(body, `id="scope-some" name="scope" value="some" checked`) {
			t.Fatalf("no event type: %d %s", code, body)
		}
		nothingSaved("no event type")

		// Added: the secret is shown once, and is not in the database in
		// the clear while it waits.
		target := admin.redirectOf(base, url.Values{"url": {rc.URL}, "description": {"CRM"}, "scope": {"all"}, "event_types": {"consent.granted"}})
		if strings.Contains(grantsText(t, db), "whsec_") {
			t.Fatal("the grant holds the secret in the clear")
		}
		all, err := e.a.Webhooks.List(ctx)
		if err != nil || len(all) != 1 || len(all[0].EventTypes) != 0 || all[0].Description != "CRM" || !all[0].Enabled {
			t.Fatalf("endpoints: %+v %v", all, err)
		}
		ep := all[0]
		page := base + "/" + ep.ID
		if !strings.HasPrefix(target, page+"/created/") {
			t.Fatalf("creating leads to %s", target)
		}
		code, body = admin.get(target)
		m := webhookSecretRE.FindStringSubmatch(body)
		if code != 200 || m == nil || !strings.Contains(body, "Copy its signing secret now") {
			t.Fatalf("the new endpoint's page: %d %s", code, body)
		}
		secret := html.UnescapeString(m[1])
		code, body = admin.get(target)
		if code != 200 || admin.last.Request.URL.String() != page+"?done=shown_once" || strings.Contains(body, secret) ||
			!strings.Contains(body, "That secret was shown once") {
			t.Fatalf("reload: %d at %s: %s", code, admin.last.Request.URL, body)
		}
		if _, body := admin.get(base); !strings.Contains(body, `<a href="/admin/webhooks/`+ep.ID+`">`+rc.URL+`</a>`) || !strings.Contains(body, "<td>all</td>") {
			t.Fatalf("the list: %s", body)
		}

		// A contact created through the API reaches the receiver, signed
		// with the secret shown, and its delivery is in the log.
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"hook@example.com"}`, 201, &c)
		var d webhook.Delivery
		waitFor(t, func() bool {
			ds, err := e.a.Webhooks.Deliveries(ctx, ep.ID, webhook.Page{})
			if err != nil || len(ds) != 1 || ds[0].Status != webhook.StatusDelivered {
				return false
			}
			d = ds[0]
			return true
		})
		n, got, headers := rc.Last()
		wh, _ := standardwebhooks.NewWebhook(secret)
		if err := wh.Verify(got, headers); n != 1 || err != nil {
			t.Fatalf("%d deliveries; the last does not verify with the secret shown: %v", n, err)
		}
		delivery := page + "/deliveries/" + itoa(d.ID)
		code, body = admin.get(page)
		if code != 200 || !strings.Contains(body, `<a href="/admin/webhooks/`+ep.ID+`/deliveries/`+itoa(d.ID)+`">`+d.EventID+`</a>`) ||
			!strings.Contains(body, "<code>contact.created</code>") || !strings.Contains(body, `<a href="/admin/contacts/`+c.ID+`">`) ||
			!strings.Contains(body, `class="delivery-delivered">delivered`) || !strings.Contains(body, "HTTP 200") ||
			!strings.Contains(body, "This endpoint is on") || !strings.Contains(body, `value="`+rc.URL+`"`) {
			t.Fatalf("the endpoint's page: %d %s", code, body)
		}
		code, body = admin.get(delivery)
		if code != 200 || !strings.Contains(body, `<dd class="attempt-status">200</dd>`) || !strings.Contains(body, `<span class="ok">delivered</span>`) ||
			!strings.Contains(body, `<pre class="response">thanks &lt;b&gt;received&lt;/b&gt;</pre>`) || !regexp.MustCompile(`<dd>\d+\.\d ms</dd>`).MatchString(body) {
			t.Fatalf("the delivery's page: %d %s", code, body)
		}

		// Replayed: sent again with the same webhook-id.
		code, body = admin.post(delivery+"/replay", url.Values{})
		if code != 200 || admin.last.Request.URL.String() != delivery+"?done=replayed" || !strings.Contains(body, "Delivery queued to be sent again.") {
			t.Fatalf("replay: %d at %s: %s", code, admin.last.Request.URL, body)
		}
		waitFor(t, func() bool { n, _, _ := rc.Last(); return n == 2 })
		if _, _, h := rc.Last(); h.Get("webhook-id") != d.EventID {
			t.Fatalf("the replay's webhook-id is %q, want %s", h.Get("webhook-id"), d.EventID)
		}
		// Replayed since a time: a time that cannot be read is refused
		// next to its input; one before the contact's creation queues its
		// delivery.
		code, body = admin.post(page+"/replay", url.Values{"since": {"yesterday"}, "timezone": {"UTC"}})
		if code != 400 || !strings.Contains(body, `id="since-error" role="alert"`) || !strings.Contains(body, `value="yesterday"`) {
			t.Fatalf("replay since a bad time: %d %s", code, body)
		}
		waitFor(t, func() bool {
			got, err := e.a.Webhooks.Delivery(ctx, d.ID)
			return err == nil && got.Status == webhook.StatusDelivered
		})
		since := d.CreatedAt.Add(-time.Hour).In(time.UTC).Format("2006-01-02T15:04")
		code, body = admin.post(page+"/replay", url.Values{"since": {since}, "timezone": {"UTC"}})
		if code != 200 || admin.last.Request.URL.String() != page+"?done=replayed&n=1" || !strings.Contains(body, "1 delivery queued to be sent again.") {
			t.Fatalf("replay since: %d at %s: %s", code, admin.last.Request.URL, body)
		}
		waitFor(t, func() bool { n, _, _ := rc.Last(); return n == 3 })
		code, body = admin.post(page+"/replay", url.Values{"since": {time.Now().UTC().Add(24 * time.Hour).Format("2006-01-02T15:04")}, "timezone": {"Europe/Stockholm"}})
		if code != 200 || !strings.Contains(body, "0 deliveries queued to be sent again.") {
			t.Fatalf("replay since later: %d %s", code, body)
		}

		// Changed: a refused URL keeps what was typed and changes nothing;
		// then turned off with other types.
		code, body = admin.post(page, url.Values{"url": {"ftp://example.com"}, "description": {"Changed"}, "scope": {"all"}, "enabled": {"off", "on"}})
		if code != 400 || !strings.Contains(body, `id="url-error" role="alert"`) || !strings.Contains(body, `value="ftp://example.com"`) || !strings.Contains(body, `value="Changed"`) {
			t.Fatalf("a bad URL on change: %d %s", code, body)
		}
		if got, _ := e.a.Webhooks.Get(ctx, ep.ID); got.URL != rc.URL || got.Description != "CRM" {
			t.Fatalf("a refused change was saved: %+v", got)
		}
		code, body = admin.post(page, url.Values{"url": {rc.URL + "/v2"}, "description": {"CRM v2"}, "scope": {"some"},
			"event_types": {"consent.granted", "contact.created"}, "enabled": {"off"}})
		if code != 200 || admin.last.Request.URL.String() != page+"?done=saved" || !strings.Contains(body, "Endpoint saved.") ||
			!strings.Contains(body, "This endpoint is off") {
			t.Fatalf("change: %d at %s: %s", code, admin.last.Request.URL, body)
		}
		if got, _ := e.a.Webhooks.Get(ctx, ep.ID); got.URL != rc.URL+"/v2" || got.Description != "CRM v2" || got.Enabled ||
			strings.Join(got.EventTypes, ",") != "consent.granted,contact.created" {
			t.Fatalf("changed: %+v", got)
		}

		// The workflow editor offers it by URL and description.
		if _, body := admin.get(e.srv.URL + "/admin/workflows/new"); !strings.Contains(body, `<option value="`+ep.ID+`">`+rc.URL+`/v2 (CRM v2), off</option>`) {
			t.Fatalf("the workflow editor does not offer the endpoint: %s", body)
		}

		// Rotated: the new secret is shown once, with when the old one
		// stops signing.
		target = admin.redirectOf(page+"/rotate", url.Values{})
		if !strings.HasPrefix(target, page+"/rotated/") {
			t.Fatalf("rotating leads to %s", target)
		}
		code, body = admin.get(target)
		m = webhookSecretRE.FindStringSubmatch(body)
		if code != 200 || m == nil || html.UnescapeString(m[1]) == secret || !strings.Contains(body, "The old secret still signs beside it until") {
			t.Fatalf("rotated: %d %s", code, body)
		}
		if _, body := admin.get(target); admin.last.Request.URL.String() != page+"?done=shown_once" || strings.Contains(body, m[1]) {
			t.Fatalf("reload of the rotated secret: at %s: %s", admin.last.Request.URL, body)
		}

		// An agent may not see them.
		agent := e.signIn(admin, "agent@acme.example", auth.RoleAgent)
		for _, u := range []string{base, page, delivery} {
			if code, _ := agent.get(u); code != 403 {
				t.Fatalf("an agent gets %s: %d", u, code)
			}
		}
		if code, _ := agent.post(page+"/delete", url.Values{"confirm": {"on"}}); code != 403 {
			t.Fatalf("an agent deletes: %d", code)
		}

		// Deleted, once confirmed, with its log.
		if code, body := admin.post(page+"/delete", url.Values{}); code != 400 || !strings.Contains(body, `id="confirm-error" role="alert"`) {
			t.Fatalf("delete unconfirmed: %d %s", code, body)
		}
		if _, err := e.a.Webhooks.Get(ctx, ep.ID); err != nil {
			t.Fatalf("deleted unconfirmed: %v", err)
		}
		code, body = admin.post(page+"/delete", url.Values{"confirm": {"on"}})
		if code != 200 || admin.last.Request.URL.String() != base+"?done=deleted" || !strings.Contains(body, "Endpoint deleted with its delivery log.") ||
			!strings.Contains(body, "No webhook endpoint yet.") {
			t.Fatalf("delete: %d at %s: %s", code, admin.last.Request.URL, body)
		}
		if n := count(t, db, `SELECT count(*) FROM webhook_deliveries`); n != 0 {
			t.Fatalf("%d deliveries left", n)
		}
		for _, u := range []string{page, delivery, base + "/no-such-endpoint", base + "/no-such-endpoint/deliveries/1"} {
			if code, _ := admin.get(u); code != 404 {
				t.Fatalf("%s: %d, want 404", u, code)
			}
		}
		if code, _ := admin.post(delivery+"/replay", url.Values{}); code != 404 {
			t.Fatalf("replaying a deleted delivery: %d", code)
		}
	})
}

// TestWebhookDeliveryOfAnotherEndpoint: a delivery is found only under its
// own endpoint, and the log pages by its cursor.
func TestWebhookDeliveryOfAnotherEndpoint(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		rc := newReceiver(t)
		e := startWithLocalWebhooks(t, db)
		ctx := context.Background()
		admin := e.firstAdmin()
		one, _, err := e.a.Webhooks.Create(ctx, audit.Actor{Kind: "user"}, webhook.EndpointInput{URL: rc.URL, EventTypes: []string{"contact.created"}})
		if err != nil {
			t.Fatal(err)
		}
		other, _, err := e.a.Webhooks.Create(ctx, audit.Actor{Kind: "user"}, webhook.EndpointInput{URL: rc.URL + "/other", EventTypes: []string{"consent.granted"}})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 52 {
			e.api("POST", "/api/v1/contacts", `{"email":"p`+itoa(int64(i))+`@example.com"}`, 201, nil)
		}
		var ds []webhook.Delivery
		waitFor(t, func() bool {
			ds, err = e.a.Webhooks.Deliveries(ctx, one.ID, webhook.Page{Limit: 200})
			return err == nil && len(ds) == 52
		})
		base := e.srv.URL + "/admin/webhooks/"
		if code, _ := admin.get(base + other.ID + "/deliveries/" + itoa(ds[0].ID)); code != 404 {
			t.Fatalf("another endpoint's delivery: %d", code)
		}
		_, body := admin.get(base + one.ID)
		older := `href="/admin/webhooks/` + one.ID + `?before=` + itoa(ds[49].ID) + `#deliveries-h"`
		if !strings.Contains(body, ds[0].EventID+"</a>") || strings.Contains(body, ds[50].EventID+"</a>") || !strings.Contains(body, older) {
			t.Fatalf("the first page of the log: %s", body)
		}
		_, body = admin.get(base + one.ID + "?before=" + itoa(ds[49].ID))
		if !strings.Contains(body, ds[50].EventID+"</a>") || !strings.Contains(body, ds[51].EventID+"</a>") || strings.Contains(body, ds[49].EventID+"</a>") ||
			strings.Contains(body, `id="older"`) {
			t.Fatalf("the second page of the log: %s", body)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
