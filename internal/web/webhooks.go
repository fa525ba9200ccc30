package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/webhook"
)

// Webhook endpoints send contacts' changes to the operator's systems, as
// workflow rules do, so those who keep the workflow rules keep them. The
// page of an endpoint is at /admin/webhooks/{id}: the email that says
// Consentry turned one off links there.
func (s *Server) webhookRoutes() {
	wh := func(h handler) http.HandlerFunc { return s.need(auth.PermSettings, h) }
	s.mux.HandleFunc("GET /admin/webhooks", wh(s.webhooksPage))
	s.post("/admin/webhooks", textForm, wh(s.createWebhook))
	s.mux.HandleFunc("GET /admin/webhooks/{id}", wh(s.webhookPage))
	s.post("/admin/webhooks/{id}", textForm, wh(s.updateWebhook))
	s.mux.HandleFunc("GET /admin/webhooks/{id}/created/{grant}", wh(s.webhookSecretPage))
	s.mux.HandleFunc("GET /admin/webhooks/{id}/rotated/{grant}", wh(s.webhookSecretPage))
	s.post("/admin/webhooks/{id}/rotate", smallForm, wh(s.rotateWebhook))
	s.post("/admin/webhooks/{id}/delete", smallForm, wh(s.deleteWebhook))
	s.post("/admin/webhooks/{id}/replay", smallForm, wh(s.replayWebhookSince))
	s.mux.HandleFunc("GET /admin/webhooks/{id}/deliveries/{delivery}", wh(s.webhookDeliveryPage))
	s.post("/admin/webhooks/{id}/deliveries/{delivery}/replay", smallForm, wh(s.replayWebhookDelivery))
}

// webhookDone are the notices shown after a webhook form succeeded and
// redirected, by the done= the redirect carries.
var webhookDone = map[string]string{"saved": "Endpoint saved.", "deleted": "Endpoint deleted with its delivery log.",
	"replayed":   "Delivery queued to be sent again.",
	"shown_once": "That secret was shown once and cannot be shown again; if it was not copied, rotate the secret for a new one."}

// ms is a latency in milliseconds, to a tenth.
func init() {
	funcs["ms"] = func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
	}
}

// webhookFail shows err; an unknown or deleted endpoint or delivery is
// the not-found page (the webhook package names the id it did not find,
// which elsewhere would be a refusal of the input).
func (s *Server) webhookFail(w http.ResponseWriter, err error, u *auth.User) {
	if e := errs.As(err); e != nil && e.Kind == errs.KindNotFound {
		what := "webhook endpoint"
		if e.Code == "webhook_delivery_not_found" {
			what = "delivery"
		}
		s.render(w, http.StatusNotFound, "message", page{Title: "Not found", User: u, Nav: "settings",
			Data: "There is no such " + what + "; it may have been deleted."})
		return
	}
	s.fail(w, err, u)
}

// webhookPageSize is how many deliveries or attempts a page shows.
const webhookPageSize = 50

// webhookForm is the endpoint form as typed: Scope is "all" for every
// event type (those added later too) or "some" for Types.
type webhookForm struct {
	URL, Description, Scope string
	Types                   []string
	Enabled                 bool
}

func webhookFormOf(e webhook.Endpoint) webhookForm {
	f := webhookForm{URL: e.URL, Description: e.Description, Scope: "all", Types: e.EventTypes, Enabled: e.Enabled}
	if len(e.EventTypes) > 0 {
		f.Scope = "some"
	}
	return f
}

func readWebhookForm(f url.Values) webhookForm {
	return webhookForm{URL: strings.TrimSpace(f.Get("url")), Description: f.Get("description"), Scope: f.Get("scope"),
		Types: f["event_types"], Enabled: checkboxOn(f, "enabled")}
}

// eventTypes are the form's event types: none for every type. Only these
// with none ticked is an error on event_types.
func (f webhookForm) eventTypes() ([]string, error) {
	if f.Scope != "some" {
		return []string{}, nil
	}
	if len(f.Types) == 0 {
		return nil, errs.Invalid("event_types", "tick at least one event type, or choose every event type")
	}
	return f.Types, nil
}

// webhookList is the endpoints page.
type webhookList struct {
	Endpoints []webhook.Endpoint
	Form      webhookForm
	Types     []events.Type
}

func (s *Server) webhooksPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.showWebhooks(w, r, u, http.StatusOK, webhookDone[r.URL.Query().Get("done")], nil, webhookForm{Scope: "all"})
}

func (s *Server) showWebhooks(w http.ResponseWriter, r *http.Request, u *auth.User, status int, flash string, fe map[string]string, f webhookForm) {
	all, err := s.Webhooks.List(r.Context())
	if err != nil {
		s.webhookFail(w, err, u)
		return
	}
	s.render(w, status, "webhooks", page{Title: "Webhooks", User: u, Nav: "settings", Flash: flash, Errors: fe,
		Data: webhookList{Endpoints: all, Form: f, Types: events.Types}})
}

// webhookSubject is what the one-time grant of an endpoint's new secret
// is about.
func webhookSubject(endpointID string) string { return "webhook secret " + endpointID }

// showSecretOnce hands secret to the page that shows it once, by a grant
// that only the user u can claim, and redirects there; how is "created"
// or "rotated".
func (s *Server) showSecretOnce(w http.ResponseWriter, r *http.Request, u *auth.User, id, how, secret string) {
	grant, err := s.grants.Issue(r.Context(), u.ID, webhookSubject(id), secret)
	if err != nil {
		s.webhookFail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/webhooks/"+url.PathEscape(id)+"/"+how+"/"+grant, http.StatusSeeOther)
}

// createWebhook adds an endpoint and leads to the page that shows its
// secret once; a refusal shows the form again with what was typed, and
// saves nothing.
func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	f := readWebhookForm(r.PostForm)
	types, err := f.eventTypes()
	var e webhook.Endpoint
	var secret string
	if err == nil {
		e, secret, err = s.Webhooks.Create(r.Context(), audit.Actor(actor(u)), webhook.EndpointInput{URL: f.URL, Description: f.Description, EventTypes: types})
	}
	if fe := fieldErrors(err); fe != nil {
		s.showWebhooks(w, r, u, httpx.Status(err), "", fe, f)
		return
	}
	if err != nil {
		s.webhookFail(w, err, u)
		return
	}
	s.Log.InfoContext(r.Context(), "webhook endpoint created", "endpoint", e.ID, "by", u.ID)
	s.showSecretOnce(w, r, u, e.ID, "created", secret)
}

// webhookView is an endpoint's page.
type webhookView struct {
	Endpoint   webhook.Endpoint
	Form       webhookForm
	Types      []events.Type
	Deliveries []webhook.Delivery
	// Before is the cursor of this page of deliveries (0: the newest);
	// Next that of the next page, 0 when there is none.
	Before, Next int64
	// Secret is a new secret, on the page that shows it once; Rotated
	// says it replaced another.
	Secret  string
	Rotated bool
	// Since and Zone are the replay form as typed.
	Since, Zone string
	TimeZones   []string
}

func (s *Server) webhookPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	flash := webhookDone[r.URL.Query().Get("done")]
	if r.URL.Query().Get("done") == "replayed" {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		flash = plural(n, "delivery", "deliveries") + " queued to be sent again."
	}
	s.showWebhook(w, r, u, http.StatusOK, flash, nil, nil, webhookView{})
}

// plural is n with the noun in its number: "1 delivery", "3 deliveries".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// showWebhook shows the endpoint of the request's path with its delivery
// log; form, when not nil, is its edit form as typed, and v carries the
// secret or the replay form.
func (s *Server) showWebhook(w http.ResponseWriter, r *http.Request, u *auth.User, status int, flash string, fe map[string]string, form *webhookForm, v webhookView) {
	ctx := r.Context()
	e, err := s.Webhooks.Get(ctx, r.PathValue("id"))
	if err != nil {
		s.webhookFail(w, err, u)
		return
	}
	v.Endpoint, v.Form, v.Types, v.TimeZones = e, webhookFormOf(e), events.Types, TimeZones
	if form != nil {
		v.Form = *form
	}
	v.Before, _ = strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	if v.Deliveries, v.Next, err = pageOf(func(p webhook.Page) ([]webhook.Delivery, error) { return s.Webhooks.Deliveries(ctx, e.ID, p) },
		v.Before, func(d webhook.Delivery) int64 { return d.ID }); err != nil {
		s.webhookFail(w, err, u)
		return
	}
	s.render(w, status, "webhook", page{Title: "Webhook: " + e.URL, User: u, Nav: "settings", Flash: flash, Errors: fe, Data: v})
}

// pageOf reads one page of a log newest first before the cursor before
// (0: the newest) and returns it with the next page's cursor, 0 when it
// is the last page: it asks for one more item than it shows to know.
func pageOf[T any](read func(webhook.Page) ([]T, error), before int64, id func(T) int64) ([]T, int64, error) {
	items, err := read(webhook.Page{Before: before, Limit: webhookPageSize + 1})
	if err != nil || len(items) <= webhookPageSize {
		return items, 0, err
	}
	items = items[:webhookPageSize]
	return items, id(items[len(items)-1]), nil
}

// webhookSecretPage shows a new secret once: it claims the grant that
// createWebhook or rotateWebhook made; once claimed (a reload), it goes
// to the endpoint's page, which says the secret cannot be shown again.
func (s *Server) webhookSecretPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	id := r.PathValue("id")
	secret, err := s.grants.Claim(r.Context(), r.PathValue("grant"), u.ID, webhookSubject(id))
	if errors.Is(err, auth.ErrNoGrant) {
		http.Redirect(w, r, "/admin/webhooks/"+url.PathEscape(id)+"?done=shown_once", http.StatusSeeOther)
		return
	}
	if err != nil {
		s.webhookFail(w, err, u)
		return
	}
	rotated := strings.Contains(r.URL.Path, "/rotated/")
	flash := "Endpoint added. Copy its signing secret now: it is not shown again."
	if rotated {
		flash = "Secret rotated. Copy the new signing secret now: it is not shown again."
	}
	s.showWebhook(w, r, u, http.StatusOK, flash, nil, nil, webhookView{Secret: secret, Rotated: rotated})
}

// updateWebhook saves the edit form; a refusal shows the page again with
// what was typed, and saves nothing.
func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	id := r.PathValue("id")
	f := readWebhookForm(r.PostForm)
	types, err := f.eventTypes()
	if err == nil {
		_, err = s.Webhooks.Update(r.Context(), audit.Actor(actor(u)), id, webhook.EndpointPatch{URL: &f.URL, Description: &f.Description,
			EventTypes: &types, Enabled: &f.Enabled})
	}
	if fe := fieldErrors(err); fe != nil && errs.As(err).Kind != errs.KindNotFound {
		s.showWebhook(w, r, u, httpx.Status(err), "", fe, &f, webhookView{})
		return
	}
	if err != nil {
		s.webhookFail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/webhooks/"+url.PathEscape(id)+"?done=saved", http.StatusSeeOther)
}

func (s *Server) rotateWebhook(w http.ResponseWriter, r *http.Request, u *auth.User) {
	id := r.PathValue("id")
	secret, err := s.Webhooks.RotateSecret(r.Context(), audit.Actor(actor(u)), id)
	if err != nil {
		s.webhookFail(w, err, u)
		return
	}
	s.Log.InfoContext(r.Context(), "webhook secret rotated", "endpoint", id, "by", u.ID)
	s.showSecretOnce(w, r, u, id, "rotated", secret)
}

// deleteWebhook deletes an endpoint with its delivery log once the
// confirmation is ticked; without it the page says so and nothing is
// deleted.
func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	if !checkboxOn(r.PostForm, "confirm") {
		s.showWebhook(w, r, u, http.StatusBadRequest, "", map[string]string{"confirm": "tick the box to confirm that the endpoint and its delivery log go"}, nil, webhookView{})
		return
	}
	if err := s.Webhooks.Delete(r.Context(), audit.Actor(actor(u)), r.PathValue("id")); err != nil {
		s.webhookFail(w, err, u)
		return
	}
	s.Log.InfoContext(r.Context(), "webhook endpoint deleted", "endpoint", r.PathValue("id"), "by", u.ID)
	http.Redirect(w, r, "/admin/webhooks?done=deleted", http.StatusSeeOther)
}

// replayWebhookSince queues again the endpoint's deliveries of events
// since a time; a time that cannot be read is shown next to its input.
func (s *Server) replayWebhookSince(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	id := r.PathValue("id")
	v := webhookView{Since: r.PostForm.Get("since"), Zone: r.PostForm.Get("timezone")}
	since, err := localTime("since", v.Since, v.Zone)
	n := 0
	if err == nil {
		n, err = s.Webhooks.ReplaySince(r.Context(), id, since)
	}
	if fe := fieldErrors(err); fe != nil && errs.As(err).Kind != errs.KindNotFound {
		s.showWebhook(w, r, u, httpx.Status(err), "", fe, nil, v)
		return
	}
	if err != nil {
		s.webhookFail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/webhooks/"+url.PathEscape(id)+"?done=replayed&n="+strconv.Itoa(n), http.StatusSeeOther)
}

// webhookDelivery is a delivery's page.
type webhookDelivery struct {
	Endpoint     webhook.Endpoint
	Delivery     webhook.Delivery
	Attempts     []webhook.Attempt
	Before, Next int64
}

// delivery returns the delivery of the request's path with its endpoint;
// one of another endpoint is not found.
func (s *Server) delivery(r *http.Request) (webhook.Endpoint, webhook.Delivery, error) {
	ctx := r.Context()
	e, err := s.Webhooks.Get(ctx, r.PathValue("id"))
	if err != nil {
		return e, webhook.Delivery{}, err
	}
	n, err := strconv.ParseInt(r.PathValue("delivery"), 10, 64)
	if err != nil {
		return e, webhook.Delivery{}, errs.NotFound("webhook_delivery", "id")
	}
	d, err := s.Webhooks.Delivery(ctx, n)
	if err == nil && d.EndpointID != e.ID {
		err = errs.NotFound("webhook_delivery", "id")
	}
	return e, d, err
}

func (s *Server) webhookDeliveryPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	e, d, err := s.delivery(r)
	if err != nil {
		s.webhookFail(w, err, u)
		return
	}
	v := webhookDelivery{Endpoint: e, Delivery: d}
	v.Before, _ = strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	if v.Attempts, v.Next, err = pageOf(func(p webhook.Page) ([]webhook.Attempt, error) { return s.Webhooks.Attempts(r.Context(), d.ID, p) },
		v.Before, func(a webhook.Attempt) int64 { return a.ID }); err != nil {
		s.webhookFail(w, err, u)
		return
	}
	s.render(w, http.StatusOK, "webhook_delivery", page{Title: "Delivery of " + d.EventID, User: u, Nav: "settings",
		Flash: webhookDone[r.URL.Query().Get("done")], Data: v})
}

func (s *Server) replayWebhookDelivery(w http.ResponseWriter, r *http.Request, u *auth.User) {
	e, d, err := s.delivery(r)
	if err == nil {
		_, err = s.Webhooks.Replay(r.Context(), d.ID)
	}
	if err != nil {
		s.webhookFail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/webhooks/"+url.PathEscape(e.ID)+"/deliveries/"+strconv.FormatInt(d.ID, 10)+"?done=replayed", http.StatusSeeOther)
}
