package api

import (
	"net/http"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/preferences"
)

func (s *Server) preferenceRoutes() []Route {
	return []Route{
		{Method: "GET", Path: "/api/v1/settings/preferences-page", Tag: "preferences page", Status: 200, Response: preferences.Config{},
			Summary: "The preferences page's settings: who may use it, the consents it asks for, the statement, the email footer", handle: s.getPageConfig},
		{Method: "PUT", Path: "/api/v1/settings/preferences-page", Tag: "preferences page", Scope: auth.ScopeAdmin, Status: 200, Request: preferences.Config{}, Response: preferences.Config{},
			Summary: "Replace the preferences page's settings; conditions are checked, purpose names are stored as ids. Each part changed gets an entry in the audit log", handle: s.setPageConfig},
		{Method: "POST", Path: "/api/v1/contacts/{id}/preferences-link", Tag: "preferences page", Status: 201, Response: PersonalLink{},
			Summary: "Issue a personal link to the contact's preferences page, for an email of your own; none for an erased contact (423 contact_erased)", handle: s.preferencesLink},
		{Method: "GET", Path: "/api/v1/contacts/{id}/preference-changes", Tag: "preferences page", Status: 200, Response: []preferences.ChangeEntry{},
			Summary: "The changes the contact asked for on the preferences page: pending until confirmed by email, then applied", handle: s.preferenceChanges},
		{Method: "POST", Path: "/api/v1/contacts/{id}/emails", Tag: "email", Status: 202, Request: preferences.UserEmail{}, Response: QueuedEmail{},
			Summary: "Queue an email written by a user; it carries the preferences page footer when that is on, and goes only if the send gate allows", handle: s.sendUserEmail},
	}
}

// PersonalLink is a personal link to a contact's preferences page (named
// apart from preferences.Link, a titled link on the page, whose schema
// would have the same name).
type PersonalLink struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// QueuedEmail is an email waiting in the outbox.
type QueuedEmail struct {
	ID string `json:"id" doc:"the outbox id; GET /api/v1/contacts/{id}/emails shows whether it went and, if not, why"`
}

func (s *Server) getPageConfig(r *http.Request, _ consent.Actor) (int, any, error) {
	c, err := preferences.GetConfig(r.Context(), s.DB.Read)
	return 200, c, err
}

func (s *Server) setPageConfig(r *http.Request, caller consent.Actor) (int, any, error) {
	var in preferences.Config
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	c, err := s.Prefs.SetConfig(r.Context(), in, audit.Actor(caller))
	return 200, c, err
}

func (s *Server) preferencesLink(r *http.Request, _ consent.Actor) (int, any, error) {
	url, expires, err := s.Prefs.Link(r.Context(), r.PathValue("id"))
	return pathResult(201, PersonalLink{URL: url, ExpiresAt: expires}, err)
}

func (s *Server) preferenceChanges(r *http.Request, _ consent.Actor) (int, any, error) {
	if _, err := s.Contacts.Get(r.Context(), r.PathValue("id")); err != nil {
		return 0, nil, err
	}
	c, err := s.Prefs.Changes(r.Context(), r.PathValue("id"))
	return 200, c, err
}

func (s *Server) sendUserEmail(r *http.Request, _ consent.Actor) (int, any, error) {
	var in preferences.UserEmail
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	id, err := s.Prefs.QueueUserEmail(r.Context(), r.PathValue("id"), in)
	return pathResult(202, QueuedEmail{ID: id}, err)
}
