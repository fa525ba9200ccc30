package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/webhook"
)

// webhookRoutes serve webhook endpoints, their delivery log and replay.
// An endpoint sends events out on its own: every route needs a token with
// the automation scope.
func (s *Server) webhookRoutes() []Route {
	const w, tag, sc = "/api/v1/webhooks", "webhooks", auth.ScopeAutomation
	id := w + "/{id}"
	page := []Param{{"limit", "1 to 200 (default 50)", "integer"}, {"before", "the next cursor of the previous page", "integer"}}
	return []Route{
		{Method: "GET", Path: w, Tag: tag, Scope: sc, Status: 200, Response: []webhook.Endpoint{},
			Summary: "List the webhook endpoints", handle: s.listWebhooks},
		{Method: "POST", Path: w, Tag: tag, Scope: sc, Status: 201, Request: EndpointRequest{}, Response: NewEndpoint{},
			Summary: "Add an endpoint; its signing secret is in the answer, this once", handle: s.createWebhook},
		{Method: "GET", Path: id, Tag: tag, Scope: sc, Status: 200, Response: webhook.Endpoint{},
			Summary: "Get an endpoint", handle: s.getWebhook},
		{Method: "PATCH", Path: id, Tag: tag, Scope: sc, Status: 200, Request: EndpointPatchRequest{}, Response: webhook.Endpoint{},
			Summary: "Change an endpoint; absent fields stay. Turning it on again sends what waited", handle: s.updateWebhook},
		{Method: "DELETE", Path: id, Tag: tag, Scope: sc, Status: 204,
			Summary: "Delete an endpoint with its delivery log", handle: s.deleteWebhook},
		{Method: "POST", Path: id + "/rotate-secret", Tag: tag, Scope: sc, Status: 200, Response: RotatedSecret{},
			Summary: "Give the endpoint a new signing secret, in the answer this once; the old one keeps signing beside it for 24 hours",
			handle:  s.rotateWebhookSecret},
		{Method: "GET", Path: id + "/deliveries", Tag: tag, Scope: sc, Status: 200, Response: DeliveryPage{}, Query: page,
			Summary: "The endpoint's delivery log, newest first", handle: s.webhookDeliveries},
		{Method: "GET", Path: id + "/deliveries/{delivery}", Tag: tag, Scope: sc, Status: 200, Response: DeliveryDetail{},
			Summary: "One delivery with its attempts: status, error, latency and the first KiB of each answer", handle: s.webhookDelivery},
		{Method: "POST", Path: id + "/deliveries/{delivery}/replay", Tag: tag, Scope: sc, Status: 200, Response: webhook.Delivery{},
			Summary: "Send a delivery again, with the same webhook-id", handle: s.replayDelivery},
		{Method: "POST", Path: id + "/replay", Tag: tag, Scope: sc, Status: 200, Request: ReplayRequest{}, Response: ReplayResult{},
			Summary: "Send again every delivery of an event that happened since a time, delivered ones included", handle: s.replaySince},
	}
}

// EndpointRequest adds a webhook endpoint.
type EndpointRequest struct {
	URL         string   `json:"url" required:"true" doc:"https; http only to this machine, when CONSENTRY_WEBHOOKS_ALLOW_HTTP_LOCALHOST allows"`
	Description string   `json:"description"`
	EventTypes  []string `json:"event_types" doc:"the event types it wants (docs/events.md); empty or absent: every type, including types added later"`
	Enabled     *bool    `json:"enabled" doc:"default true"`
}

// EndpointPatchRequest changes an endpoint; absent fields stay.
type EndpointPatchRequest struct {
	URL         *string   `json:"url"`
	Description *string   `json:"description"`
	EventTypes  *[]string `json:"event_types"`
	Enabled     *bool     `json:"enabled"`
}

// NewEndpoint is an endpoint just added, with its secret.
type NewEndpoint struct {
	webhook.Endpoint
	Secret string `json:"secret" doc:"whsec_ and 32 random bytes in base64; shown this once"`
}

// RotatedSecret is an endpoint's new secret.
type RotatedSecret struct {
	Secret              string    `json:"secret" doc:"the new secret, shown this once"`
	PreviousSecretUntil time.Time `json:"previous_secret_until" doc:"until when the old secret signs beside it"`
}

// DeliveryPage is one page of a delivery log.
type DeliveryPage struct {
	Items  []webhook.Delivery `json:"items"`
	Before int64              `json:"before,omitempty" doc:"pass as before for the next page; absent on the last"`
}

// DeliveryDetail is a delivery with its attempts, newest first.
type DeliveryDetail struct {
	webhook.Delivery
	AttemptLog []AttemptItem `json:"attempt_log"`
}

// AttemptItem is one try at sending a delivery.
type AttemptItem struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code" doc:"the HTTP status of the answer; 0 when none came"`
	Error      string    `json:"error,omitempty" doc:"why it failed; absent when it succeeded"`
	LatencyMS  float64   `json:"latency_ms"`
	Response   string    `json:"response" doc:"the first KiB of the answer's body, as text"`
}

// ReplayRequest names the time from which deliveries are sent again.
type ReplayRequest struct {
	Since time.Time `json:"since" required:"true" doc:"RFC 3339; every delivery of an event that happened at or after it"`
}

// ReplayResult says how many deliveries were queued again.
type ReplayResult struct {
	Queued int `json:"queued"`
}

func (s *Server) listWebhooks(r *http.Request, _ consent.Actor) (int, any, error) {
	eps, err := s.Webhooks.List(r.Context())
	return 200, eps, err
}

func (s *Server) createWebhook(r *http.Request, caller consent.Actor) (int, any, error) {
	var in EndpointRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	ep, secret, err := s.Webhooks.Create(r.Context(), audit.Actor(caller), webhook.EndpointInput{URL: in.URL, Description: in.Description,
		EventTypes: in.EventTypes, Enabled: in.Enabled})
	if err != nil {
		return 0, nil, err
	}
	return 201, NewEndpoint{Endpoint: ep, Secret: secret}, nil
}

func (s *Server) getWebhook(r *http.Request, _ consent.Actor) (int, any, error) {
	ep, err := s.Webhooks.Get(r.Context(), r.PathValue("id"))
	return pathResult(200, ep, err)
}

func (s *Server) updateWebhook(r *http.Request, caller consent.Actor) (int, any, error) {
	if _, err := s.Webhooks.Get(r.Context(), r.PathValue("id")); err != nil {
		return pathResult[any](0, nil, err)
	}
	var in EndpointPatchRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	ep, err := s.Webhooks.Update(r.Context(), audit.Actor(caller), r.PathValue("id"), webhook.EndpointPatch{URL: in.URL, Description: in.Description,
		EventTypes: in.EventTypes, Enabled: in.Enabled})
	return pathResult(200, ep, err)
}

func (s *Server) deleteWebhook(r *http.Request, caller consent.Actor) (int, any, error) {
	return pathResult[any](204, nil, s.Webhooks.Delete(r.Context(), audit.Actor(caller), r.PathValue("id")))
}

func (s *Server) rotateWebhookSecret(r *http.Request, caller consent.Actor) (int, any, error) {
	secret, err := s.Webhooks.RotateSecret(r.Context(), audit.Actor(caller), r.PathValue("id"))
	if err != nil {
		return pathResult[any](0, nil, err)
	}
	ep, err := s.Webhooks.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	out := RotatedSecret{Secret: secret}
	if ep.PreviousSecretUntil != nil {
		out.PreviousSecretUntil = *ep.PreviousSecretUntil
	}
	return 200, out, nil
}

// webhookPage reads the limit and before of a delivery log page.
func webhookPage(r *http.Request) (webhook.Page, error) {
	q := r.URL.Query()
	var p webhook.Page
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return p, errs.Invalid("limit", "must be a whole number from 1 to 200")
		}
		p.Limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return p, errs.Invalid("before", "must be a delivery id, 1 or more")
		}
		p.Before = n
	}
	return p, nil
}

func (s *Server) webhookDeliveries(r *http.Request, _ consent.Actor) (int, any, error) {
	if _, err := s.Webhooks.Get(r.Context(), r.PathValue("id")); err != nil {
		return pathResult[any](0, nil, err)
	}
	p, err := webhookPage(r)
	if err != nil {
		return 0, nil, err
	}
	ds, err := s.Webhooks.Deliveries(r.Context(), r.PathValue("id"), p)
	if err != nil {
		return 0, nil, err
	}
	out := DeliveryPage{Items: ds}
	if limit := max(p.Limit, 50); p.Limit == 0 && len(ds) == limit || p.Limit > 0 && len(ds) == p.Limit {
		out.Before = ds[len(ds)-1].ID
	}
	return 200, out, nil
}

// endpointDelivery returns the delivery named in the path, which must be
// the endpoint's: another endpoint's delivery is not found here.
func (s *Server) endpointDelivery(r *http.Request) (webhook.Delivery, error) {
	id, err := strconv.ParseInt(r.PathValue("delivery"), 10, 64)
	if err != nil {
		return webhook.Delivery{}, inPath(errs.NotFound("webhook_delivery", ""))
	}
	d, err := s.Webhooks.Delivery(r.Context(), id)
	if err == nil && d.EndpointID != r.PathValue("id") {
		err = errs.NotFound("webhook_delivery", "")
	}
	return d, inPath(err)
}

func (s *Server) webhookDelivery(r *http.Request, _ consent.Actor) (int, any, error) {
	d, err := s.endpointDelivery(r)
	if err != nil {
		return 0, nil, err
	}
	attempts, err := s.Webhooks.Attempts(r.Context(), d.ID, webhook.Page{Limit: 200})
	if err != nil {
		return 0, nil, err
	}
	out := DeliveryDetail{Delivery: d, AttemptLog: make([]AttemptItem, len(attempts))}
	for i, a := range attempts {
		out.AttemptLog[i] = AttemptItem{At: a.At, StatusCode: a.StatusCode, Error: a.Error, Response: a.Response,
			LatencyMS: float64(a.Latency.Microseconds()) / 1000}
	}
	return 200, out, nil
}

func (s *Server) replayDelivery(r *http.Request, _ consent.Actor) (int, any, error) {
	d, err := s.endpointDelivery(r)
	if err != nil {
		return 0, nil, err
	}
	d, err = s.Webhooks.Replay(r.Context(), d.ID)
	return 200, d, err
}

func (s *Server) replaySince(r *http.Request, _ consent.Actor) (int, any, error) {
	if _, err := s.Webhooks.Get(r.Context(), r.PathValue("id")); err != nil {
		return pathResult[any](0, nil, err)
	}
	var in ReplayRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	n, err := s.Webhooks.ReplaySince(r.Context(), r.PathValue("id"), in.Since)
	return 200, ReplayResult{Queued: n}, err
}
