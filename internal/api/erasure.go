package api

import (
	"net/http"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/erasure"
	"github.com/consentry/consentry/internal/holds"
)

func (s *Server) erasureRoutes() []Route {
	return []Route{
		{Method: "POST", Path: "/api/v1/contacts/{id}/erase", Tag: "erasure", Scope: auth.ScopeErasure, Status: 200, Request: EraseRequest{}, OptionalBody: true, Response: erasure.Outcome{},
			Summary: "Erase the contact's personal data, keeping a non-identifying remainder and the proof of consent (docs/erasure.md); " +
				"the address gets a suppression entry. Under an active legal hold, only what the hold does not need is erased " +
				"(status partly_erased) and the rest follows when the hold ends. The body is optional", handle: s.eraseContact},
		{Method: "GET", Path: "/api/v1/contacts/{id}/holds", Tag: "erasure", Status: 200, Response: []holds.Hold{},
			Summary: "The contact's legal holds, active ones first", handle: s.contactHolds},
		{Method: "POST", Path: "/api/v1/contacts/{id}/holds", Tag: "erasure", Scope: auth.ScopeAdmin, Status: 201, Request: holds.New{}, Response: holds.Hold{},
			Summary: "Set a legal hold: while it is active the contact cannot be erased in full or deleted", handle: s.setHold},
		{Method: "POST", Path: "/api/v1/contacts/{id}/holds/{hold}/lift", Tag: "erasure", Scope: auth.ScopeAdmin, Status: 200, Request: LiftRequest{}, Response: LiftResponse{},
			Summary: "Lift a legal hold, with the reason; an erasure waiting on it proceeds at once when no other hold is active", handle: s.liftHold},
	}
}

// EraseRequest says why a contact is erased; both fields are optional.
type EraseRequest struct {
	RequestID string `json:"request_id" doc:"the erasure request this fulfils; it and every other open erasure request of the contact become done"`
	Note      string `json:"note" doc:"for the erasure log: why, in words that name no one (at most 500 characters)"`
}

// LiftRequest lifts a hold.
type LiftRequest struct {
	Reason string `json:"reason" required:"true"`
}

// LiftResponse is the lifted hold and, when an erasure was waiting on it,
// what that erasure did.
type LiftResponse struct {
	Hold    *holds.Hold      `json:"hold"`
	Erasure *erasure.Outcome `json:"erasure,omitempty" doc:"the erasure that waited on the hold and proceeded"`
}

func (s *Server) eraseContact(r *http.Request, caller consent.Actor) (int, any, error) {
	var in EraseRequest
	if err := decodeOptional(r, &in); err != nil {
		return 0, nil, err
	}
	out, err := s.Erasure.Erase(r.Context(), r.PathValue("id"), erasure.Why{Actor: caller, RequestID: in.RequestID, Note: in.Note})
	return pathResult(200, out, err)
}

func (s *Server) contactHolds(r *http.Request, _ consent.Actor) (int, any, error) {
	if _, err := s.Contacts.Get(r.Context(), r.PathValue("id")); err != nil {
		return pathResult[any](0, nil, err)
	}
	list, err := s.Erasure.Holds(r.Context(), r.PathValue("id"))
	return 200, list, err
}

func (s *Server) setHold(r *http.Request, caller consent.Actor) (int, any, error) {
	var in holds.New
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	h, err := s.Erasure.SetHold(r.Context(), r.PathValue("id"), in, caller)
	return pathResult(201, h, err)
}

func (s *Server) liftHold(r *http.Request, caller consent.Actor) (int, any, error) {
	var in LiftRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	h, out, err := s.Erasure.LiftHold(r.Context(), r.PathValue("id"), r.PathValue("hold"), in.Reason, caller)
	return pathResult(200, LiftResponse{Hold: h, Erasure: out}, err)
}
