package api

import (
	"net/http"
	"strconv"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/requests"
)

func (s *Server) requestRoutes() []Route {
	return []Route{
		{Method: "GET", Path: "/api/v1/requests", Tag: "requests", Status: 200, Response: RequestPage{},
			Query: []Param{{"kind", "access, erasure, rectification, restriction or objection", "string"},
				{"status", "received, verified, in_progress, done, refused or partly_done", "string"},
				{"contact", "contact id", "string"}, {"open", "true: only requests not yet closed", "string"},
				{"limit", "1 to 500 (default 100)", "integer"}, {"offset", "how many to skip (default 0)", "integer"}},
			Summary: "List data subject requests: open ones first, the one due soonest (so the most overdue) first, then closed ones, the latest first",
			handle:  s.listRequests},
		{Method: "GET", Path: "/api/v1/requests/{id}", Tag: "requests", Status: 200, Response: requests.Request{},
			Summary: "Get a data subject request with its due date and days left", handle: s.getRequest},
		{Method: "POST", Path: "/api/v1/requests", Tag: "requests", Status: 201, Request: NewRequest{}, Response: requests.Request{},
			Summary: "Record a data subject request received elsewhere; it is due one month from now, counts as verified, and the privacy address is emailed",
			handle:  s.createRequest},
		{Method: "PATCH", Path: "/api/v1/requests/{id}", Tag: "requests", Status: 200, Request: requests.Change{}, Response: requests.Request{},
			Summary: "Move a request on: its status (refused and partly_done need a reason), a note, the contact it is about, or one extension of its due date by 1 or 2 months with a reason",
			handle:  s.updateRequest},
		{Method: "POST", Path: "/api/v1/contacts/{id}/stop-processing", Tag: "requests", Status: 200, Response: contact.Contact{},
			Summary: "Stop processing the contact's data (restriction, Art. 18), for a request received by phone, letter or email, as their own " +
				"\"Stop processing\" on the preferences page does: their email opted out, every consent they gave on the legal basis of consent " +
				"withdrawn, and the record locked (edits and new grants answer 423); their open restriction requests become done. " +
				"Recorded as this client's doing; a locked record stays as it is. An erased contact is a 423",
			handle: s.stopProcessing},
	}
}

func (s *Server) stopProcessing(r *http.Request, caller consent.Actor) (int, any, error) {
	id := r.PathValue("id")
	if err := s.Requests.StopProcessing(r.Context(), id, caller, consent.Evidence{Method: consent.MethodAPI}); err != nil {
		return pathResult[any](0, nil, err)
	}
	c, err := s.Contacts.Get(r.Context(), id)
	return pathResult(200, c, err)
}

// RequestPage is one page of requests.
type RequestPage struct {
	Items      []*requests.Request `json:"items"`
	NextOffset int                 `json:"next_offset,omitempty" doc:"pass as offset= for the next page; absent when this page is not full"`
}

// NewRequest records a data subject request that reached the operator
// another way, for the contact or, while none is known, the address.
type NewRequest struct {
	Kind      string `json:"kind" enum:"@request_kind" required:"true"`
	ContactID string `json:"contact_id,omitempty" doc:"the contact it is about; or give address, not both"`
	Address   string `json:"address,omitempty" doc:"the address it came from, while no contact is known to have it; not with contact_id"`
	Note      string `json:"note,omitempty" doc:"what was asked"`
}

func (s *Server) listRequests(r *http.Request, _ consent.Actor) (int, any, error) {
	v := r.URL.Query()
	q := requests.Query{Kind: v.Get("kind"), Status: v.Get("status"), ContactID: v.Get("contact")}
	switch v.Get("open") {
	case "", "false":
	case "true":
		q.Open = true
	default:
		return 0, nil, errs.Invalid("open", "must be true or false")
	}
	var err error
	if q.Limit, err = queryLimit(v, 100); err != nil {
		return 0, nil, err
	}
	if o := v.Get("offset"); o != "" {
		if q.Offset, err = strconv.Atoi(o); err != nil || q.Offset < 0 {
			return 0, nil, errs.Invalid("offset", "must be a whole number, 0 or more")
		}
	}
	items, err := s.Requests.List(r.Context(), q)
	if err != nil {
		return 0, nil, err
	}
	page := RequestPage{Items: items}
	if len(items) == q.Limit {
		page.NextOffset = q.Offset + q.Limit
	}
	return 200, page, nil
}

func (s *Server) getRequest(r *http.Request, _ consent.Actor) (int, any, error) {
	req, err := s.Requests.Get(r.Context(), r.PathValue("id"))
	return pathResult(200, req, err)
}

func (s *Server) createRequest(r *http.Request, caller consent.Actor) (int, any, error) {
	var in NewRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	// A request is about a known contact or, while none is known, an
	// address: both would leave one of them unused, without a word.
	if in.ContactID != "" && in.Address != "" {
		return 0, nil, errs.Invalid("address", "give contact_id or address, not both: address is for a request about no known contact")
	}
	req, err := s.Requests.Create(r.Context(), requests.New{Kind: in.Kind, Channel: requests.ChannelAPI, ContactID: in.ContactID,
		Address: in.Address, Note: in.Note, Verified: true, Actor: caller})
	return 201, req, err
}

func (s *Server) updateRequest(r *http.Request, caller consent.Actor) (int, any, error) {
	var c requests.Change
	if err := decode(r, &c); err != nil {
		return 0, nil, err
	}
	// A request not found is the path's (404); a contact not found is the
	// body's contact_id (422), so the error goes out as the domain names it.
	req, err := s.Requests.Update(r.Context(), r.PathValue("id"), c, caller)
	return 200, req, err
}
