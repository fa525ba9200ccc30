package api

import (
	"net/http"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/lists"
)

func (s *Server) listRoutes() []Route {
	return []Route{
		{Method: "GET", Path: "/api/v1/lists", Tag: "lists", Status: 200, Response: []lists.List{},
			Summary: "List the email lists", handle: s.allLists},
		{Method: "POST", Path: "/api/v1/lists", Tag: "lists", Status: 201, Request: lists.Input{}, Response: lists.List{},
			Summary: "Create an email list", handle: s.createList},
		{Method: "GET", Path: "/api/v1/lists/{id}", Tag: "lists", Status: 200, Response: lists.List{},
			Summary: "Get a list by id or name", handle: s.getList},
		{Method: "PATCH", Path: "/api/v1/lists/{id}", Tag: "lists", Status: 200, Request: lists.Input{}, Response: lists.List{},
			Summary: "Change a list's name, description or visibility to contacts", handle: s.updateList},
		{Method: "DELETE", Path: "/api/v1/lists/{id}", Tag: "lists", Status: 204,
			Summary: "Delete a list and every subscription to it", handle: s.deleteList},
		{Method: "GET", Path: "/api/v1/contacts/{id}/lists", Tag: "lists", Status: 200, Response: []lists.Subscription{},
			Summary: "The contact's list subscriptions", handle: s.contactLists},
		{Method: "PUT", Path: "/api/v1/contacts/{id}/lists/{list}", Tag: "lists", Status: 200, Request: SubscriptionRequest{}, Response: lists.Subscription{},
			Summary: "Subscribe the contact to a list or unsubscribe them; whether email may be sent still depends on the opt-in status. An erased contact, or one who stopped processing, cannot be subscribed (423 contact_erased, processing_stopped), only unsubscribed", handle: s.setContactList},
	}
}

// SubscriptionRequest sets a contact's subscription to a list.
type SubscriptionRequest struct {
	State string `json:"state" enum:"subscribed,unsubscribed" doc:"the same word as a consent's state"`
	// Status is the name this field had before; it is still read, so
	// that integrations written then keep working.
	Status string `json:"status,omitempty" enum:"subscribed,unsubscribed" doc:"deprecated: the former name of state"`
}

func (s *Server) allLists(r *http.Request, _ consent.Actor) (int, any, error) {
	l, err := s.Lists.All(r.Context())
	return 200, l, err
}

func (s *Server) createList(r *http.Request, caller consent.Actor) (int, any, error) {
	var in lists.Input
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	l, err := s.Lists.Create(r.Context(), audit.Actor(caller), in)
	return 201, l, err
}

func (s *Server) getList(r *http.Request, _ consent.Actor) (int, any, error) {
	l, err := s.Lists.Get(r.Context(), r.PathValue("id"))
	return pathResult(200, l, err)
}

func (s *Server) updateList(r *http.Request, caller consent.Actor) (int, any, error) {
	var in lists.Input
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	l, err := s.Lists.Update(r.Context(), audit.Actor(caller), r.PathValue("id"), in)
	return pathResult(200, l, err)
}

func (s *Server) deleteList(r *http.Request, caller consent.Actor) (int, any, error) {
	return pathResult[any](204, nil, s.Lists.Delete(r.Context(), audit.Actor(caller), r.PathValue("id")))
}

func (s *Server) contactLists(r *http.Request, _ consent.Actor) (int, any, error) {
	if _, err := s.Contacts.Get(r.Context(), r.PathValue("id")); err != nil {
		return 0, nil, err
	}
	subs, err := lists.Subscriptions(r.Context(), s.DB.Read, r.PathValue("id"))
	return 200, subs, err
}

func (s *Server) setContactList(r *http.Request, caller consent.Actor) (int, any, error) {
	var in SubscriptionRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	state := in.State
	switch {
	case state == "":
		state = in.Status
	case in.Status != "" && in.Status != state:
		return 0, nil, errs.Invalid("status", "is the former name of state; give one of them")
	}
	// The domain names the value by its former name; the request's is state.
	switch state {
	case "":
		return 0, nil, errs.Required("state")
	case lists.Subscribed, lists.Unsubscribed:
	default:
		return 0, nil, errs.Invalid("state", "must be subscribed or unsubscribed")
	}
	// Unsubscribing from a list bound to a purpose withdraws that consent,
	// recorded as this client's doing.
	withdraw := s.Consent.PurposeWithdrawal(caller, consent.Evidence{Method: consent.MethodAPI})
	sub, err := s.Lists.Set(r.Context(), r.PathValue("id"), r.PathValue("list"), state, lists.SourceAPI, withdraw)
	return pathResult(200, sub, err)
}
