package api

import (
	"encoding/json"
	"net/http"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/webform"
)

func (s *Server) webformRoutes() []Route {
	return []Route{
		{Method: "GET", Path: "/api/v1/webforms", Tag: "webforms", Status: 200, Response: []webform.Webform{},
			Summary: "List the webforms", handle: s.allWebforms},
		{Method: "POST", Path: "/api/v1/webforms", Tag: "webforms", Status: 201, Request: webform.Definition{}, Response: webform.Webform{},
			Summary: "Define a webform; pre-checked boxes are refused and a privacy policy link is required", handle: s.createWebform},
		{Method: "GET", Path: "/api/v1/webforms/{id}", Tag: "webforms", Status: 200, Response: webform.Webform{},
			Summary: "Get a webform by id or name", handle: s.getWebform},
		{Method: "PATCH", Path: "/api/v1/webforms/{id}", Tag: "webforms", Status: 200, Request: webform.Definition{}, Response: webform.Webform{},
			Summary: "Change a webform: the keys given replace those parts of the definition, a key set to null removes it (JSON merge patch)",
			handle:  s.updateWebform},
		{Method: "DELETE", Path: "/api/v1/webforms/{id}", Tag: "webforms", Status: 204,
			Summary: "Delete a webform; what its submissions recorded stays", handle: s.deleteWebform},
		{Method: "GET", Path: "/api/v1/webforms/{id}/snippet", Tag: "webforms", Status: 200, Response: Snippet{},
			Summary: "The HTML to paste into a website, and the address of the hosted form", handle: s.webformSnippet},
		{Method: "GET", Path: "/api/v1/contacts/{id}/webform-posts", Tag: "webforms", Status: 200, Response: []webform.HeldPost{},
			Summary: "Webform posts about the contact's address, held until confirmed by the link emailed to it, then applied", handle: s.heldWebformPosts},
	}
}

func (s *Server) heldWebformPosts(r *http.Request, _ consent.Actor) (int, any, error) {
	if _, err := s.Contacts.Get(r.Context(), r.PathValue("id")); err != nil {
		return 0, nil, err
	}
	p, err := s.Webforms.HeldPosts(r.Context(), r.PathValue("id"))
	return 200, p, err
}

// Snippet is a webform's embeddable HTML.
type Snippet struct {
	HTML string `json:"html" doc:"a plain form that posts to this service: no script, no pre-checked box"`
	URL  string `json:"url" doc:"the hosted form, for a link instead of the snippet"`
}

func (s *Server) allWebforms(r *http.Request, _ consent.Actor) (int, any, error) {
	l, err := s.Webforms.All(r.Context())
	return 200, l, err
}

func (s *Server) createWebform(r *http.Request, caller consent.Actor) (int, any, error) {
	var in webform.Definition
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	w, err := s.Webforms.Create(r.Context(), audit.Actor(caller), in)
	return 201, w, err
}

func (s *Server) getWebform(r *http.Request, _ consent.Actor) (int, any, error) {
	w, err := s.Webforms.Get(r.Context(), r.PathValue("id"))
	return pathResult(200, w, err)
}

func (s *Server) updateWebform(r *http.Request, caller consent.Actor) (int, any, error) {
	var patch json.RawMessage
	if err := decode(r, &patch); err != nil {
		return 0, nil, err
	}
	w, err := s.Webforms.Update(r.Context(), audit.Actor(caller), r.PathValue("id"), patch)
	return pathResult(200, w, err)
}

func (s *Server) deleteWebform(r *http.Request, caller consent.Actor) (int, any, error) {
	return pathResult[any](204, nil, s.Webforms.Delete(r.Context(), audit.Actor(caller), r.PathValue("id")))
}

func (s *Server) webformSnippet(r *http.Request, _ consent.Actor) (int, any, error) {
	w, err := s.Webforms.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return pathResult[any](200, nil, err)
	}
	html, err := s.Webforms.Snippet(r.Context(), w.ID)
	if err != nil {
		return 0, nil, err
	}
	return 200, Snippet{HTML: html, URL: s.Webforms.URL(w.ID)}, nil
}
