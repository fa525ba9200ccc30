package api

import (
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/ledgertree"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

func (s *Server) routeTable() []Route {
	return []Route{
		{Method: "GET", Path: "/healthz", Tag: "service", Public: true, Status: 200, Response: Health{},
			Summary: "Whether the service is up and its database answers", handle: s.health},
		{Method: "GET", Path: "/readyz", Tag: "service", Public: true, Status: 200, Response: Readiness{}, Unavailable: Readiness{},
			Summary: "Whether the service is ready for traffic: its database answers, every migration is applied and the configured keyset is loaded; " +
				"503 names what is not ready", handle: s.readiness},
		{Method: "GET", Path: "/api/openapi.json", Tag: "service", Public: true, Status: 200, Response: map[string]any{},
			Summary: "This OpenAPI document", handle: s.openapi},

		{Method: "GET", Path: "/api/v1/contacts", Tag: "contacts", Status: 200, Response: ContactPage{},
			Summary: "List contacts in creation order, one page at a time, or look one up by email",
			Query: []Param{{"limit", "page size, 1 to 500 (default 50)", "integer"}, {"after", "the next cursor of the previous page", "string"},
				{"email", "exact email look-up, regardless of case", "string"},
				{"filter", "a condition, e.g. region == \"EU\" && consent(\"E-marketing\") == \"granted\" (docs/conditions.md)", "string"},
				{"field.NAME", "exact look-up of a field's value, e.g. field.national_id=198501011234; sensitive fields are matched through their blind index, without decrypting", "string"}},
			handle: s.listContacts},
		{Method: "POST", Path: "/api/v1/contacts/{id}/fields/{field}/reveal", Tag: "contacts", Status: 200,
			Request: RevealRequest{}, OptionalBody: true, Response: RevealResponse{},
			Summary: "Reveal the clear value of a sensitive field; needs a token with the reveal scope, and writes an access-log entry " +
				"with the reason, when the optional body gives one", handle: s.reveal},
		{Method: "GET", Path: "/api/v1/access-log", Tag: "contacts", Status: 200, Response: AccessLogPage{},
			Query: []Param{{"actor", "the id of the user or token that revealed", "string"}, {"contact", "contact id", "string"},
				{"field", "field name", "string"}, {"from", "RFC 3339 time, inclusive", "string"}, {"to", "RFC 3339 time, exclusive", "string"},
				{"limit", "1 to 500 (default 100)", "integer"}, {"after", "the next cursor of the previous page", "string"}},
			Summary: "Search the log of reveals of sensitive values, of a contact's exports (field \"(export)\") and of exports of the contact list (field \"(contact list)\", with what was exported as the reason)", handle: s.accessLog},
		{Method: "POST", Path: "/api/v1/contacts/count", Tag: "contacts", Status: 200, Request: CountRequest{}, Response: CountResponse{},
			Summary: "Count the contacts that match a condition", handle: s.countContacts},
		{Method: "POST", Path: "/api/v1/contacts", Tag: "contacts", Status: 201, Request: CreateContactRequest{}, Response: contact.Contact{},
			Summary: "Create a lead or contact, optionally with a starting opt-in status and consents, in one transaction", handle: s.createContact},
		{Method: "GET", Path: "/api/v1/contacts/{id}", Tag: "contacts", Status: 200, Response: contact.Contact{},
			Summary: "Get a contact; sensitive fields are masked", handle: s.getContact},
		{Method: "PATCH", Path: "/api/v1/contacts/{id}", Tag: "contacts", Status: 200, Request: UpdateContactRequest{}, Response: contact.Contact{},
			Summary: "Change a contact's fields; absent fields stay, a null custom field is removed. An erased address is refused (422 address_erased): it comes back only on a new contact with a new explicit consent", handle: s.updateContact},
		{Method: "DELETE", Path: "/api/v1/contacts/{id}", Tag: "contacts", Scope: auth.ScopeErasure, Status: 204,
			Summary: "Delete a contact with its history; the ledger keeps a deletion event and no personal data", handle: s.deleteContact},

		{Method: "GET", Path: "/api/v1/contacts/{id}/consents", Tag: "consents", Status: 200, Response: ConsentsResponse{},
			Summary: "The contact's current consent state for every purpose and the full history", handle: s.getConsents},
		{Method: "POST", Path: "/api/v1/contacts/{id}/consents", Tag: "consents", Status: 201, Request: ConsentRequest{}, Response: consent.Record{},
			Summary: "Record a consent (granted or withdrawn) for a purpose", handle: s.recordConsent},
		{Method: "GET", Path: "/api/v1/contacts/{id}/opt-in", Tag: "consents", Status: 200, Response: OptInResponse{},
			Summary: "The contact's email opt-in status and its history", handle: s.getOptIn},
		{Method: "POST", Path: "/api/v1/contacts/{id}/opt-in", Tag: "consents", Status: 200, Request: OptInRequest{}, Response: OptInResponse{},
			Summary: "Change the email opt-in status as a user: opt_out_user, or none to lift a user's opt-out", handle: s.setOptIn},

		{Method: "GET", Path: "/api/v1/fields", Tag: "fields", Status: 200, Response: []contact.FieldDefinition{},
			Summary: "List custom field definitions", handle: s.listFields},
		{Method: "POST", Path: "/api/v1/fields", Tag: "fields", Status: 201, Request: contact.FieldInput{}, Response: contact.FieldDefinition{},
			Summary: "Define a custom field", handle: s.createField},
		{Method: "GET", Path: "/api/v1/fields/{name}", Tag: "fields", Status: 200, Response: contact.FieldDefinition{},
			Summary: "Get a field definition", handle: s.getField},
		{Method: "PATCH", Path: "/api/v1/fields/{name}", Tag: "fields", Status: 200, Request: contact.FieldInput{}, Response: contact.FieldDefinition{},
			Summary: "Change a field definition; sensitive cannot be turned off", handle: s.updateField},

		{Method: "GET", Path: "/api/v1/purposes", Tag: "purposes", Status: 200, Response: []consent.Purpose{},
			Summary: "List purposes with their current consent text", handle: s.listPurposes},
		{Method: "POST", Path: "/api/v1/purposes", Tag: "purposes", Scope: auth.ScopeAdmin, Status: 201, Request: consent.PurposeInput{}, Response: consent.Purpose{},
			Summary: "Create a purpose", handle: s.createPurpose},
		{Method: "GET", Path: "/api/v1/purposes/{id}", Tag: "purposes", Status: 200, Response: consent.Purpose{},
			Summary: "Get a purpose by id or name", handle: s.getPurpose},
		{Method: "PATCH", Path: "/api/v1/purposes/{id}", Tag: "purposes", Scope: auth.ScopeAdmin, Status: 200, Request: consent.PurposeInput{}, Response: consent.Purpose{},
			Summary: "Change a purpose; a changed consent text becomes a new version", handle: s.updatePurpose},
		{Method: "GET", Path: "/api/v1/purposes/{id}/texts", Tag: "purposes", Status: 200, Response: []consent.PurposeText{},
			Summary: "Every version of the purpose's consent text, with its translations", handle: s.purposeTexts},
		{Method: "PUT", Path: "/api/v1/purposes/{id}/texts/{version}/translations/{language}", Tag: "purposes", Scope: auth.ScopeAdmin, Status: 200,
			Request: TranslationInput{}, Response: consent.PurposeText{},
			Summary: "Translate the current consent text version into a language; as a version never changes, this makes a new version with the text and the other translations (the same translation again changes nothing)",
			handle:  s.setTranslation},

		{Method: "GET", Path: "/api/v1/sources", Tag: "sources", Status: 200, Response: []consent.Source{},
			Summary: "List sources", handle: s.listSources},
		{Method: "POST", Path: "/api/v1/sources", Tag: "sources", Status: 201, Request: consent.SourceInput{}, Response: consent.Source{},
			Summary: "Add a source", handle: s.createSource},
		{Method: "PATCH", Path: "/api/v1/sources/{id}", Tag: "sources", Status: 200, Request: consent.SourceInput{}, Response: consent.Source{},
			Summary: "Rename, deactivate or reactivate a source", handle: s.updateSource},

		{Method: "POST", Path: "/api/v1/double-opt-in", Tag: "email", Status: 200, Request: InviteRequest{}, Response: optin.Result{},
			Accepted: optin.Bulk{}, Idempotent: true,
			Summary: "Send the double opt-in email to contacts (by id or by condition), skipping those who opted out. Up to 1,000 contacts are " +
				"invited at once and the answer says who was skipped and why (200); more run as a job, answered at once (202) with the run " +
				"to follow at GET /api/v1/double-opt-in/runs/{id}",
			handle: s.invite},
		{Method: "GET", Path: "/api/v1/double-opt-in/runs/{id}", Tag: "email", Status: 200, Response: optin.Bulk{},
			Summary: "A double opt-in run for many contacts: its status, how many contacts it has processed, invited and skipped (by reason)",
			handle:  s.bulkRun},
		{Method: "GET", Path: "/api/v1/contacts/{id}/double-opt-in", Tag: "email", Status: 200, Response: []optin.Invitation{},
			Summary: "The contact's double opt-in invitations: invited, reminded, expired, superseded or confirmed", handle: s.invitations},
		{Method: "GET", Path: "/api/v1/contacts/{id}/emails", Tag: "email", Status: 200, Response: []mail.Entry{},
			Summary: "Every email queued for the contact: sent, waiting, or suppressed and why", handle: s.contactEmails},
		{Method: "POST", Path: "/api/v1/bounces", Tag: "email", Status: 200, Request: BounceRequest{}, Response: contact.Deliverability{},
			Summary: "Report a bounce: a hard bounce marks the address bounced, soft bounces do once they reach the limit", handle: s.bounce},
		{Method: "POST", Path: "/api/v1/contacts/{id}/blocklist", Tag: "email", Status: 200, Response: contact.Deliverability{},
			Summary: "Put the contact's address on the blocklist: no email reaches it", handle: s.blocklist},
		{Method: "DELETE", Path: "/api/v1/contacts/{id}/blocklist", Tag: "email", Status: 200, Response: contact.Deliverability{},
			Summary: "Take the contact's address off the blocklist", handle: s.unblocklist},
		{Method: "GET", Path: "/api/v1/mailbox", Tag: "email", Status: 200, Response: []mail.MailboxMessage{},
			Query:   []Param{{"limit", "how many of the newest messages, 1 to 500 (default 50)", "integer"}},
			Summary: "The dev mailbox: what would have been sent, when no SMTP server is configured", handle: s.mailbox},
		{Method: "GET", Path: "/api/v1/settings", Tag: "settings", Status: 200, Response: settings.Settings{},
			Summary: "The operator's settings", handle: s.getSettings},
		{Method: "PATCH", Path: "/api/v1/settings", Tag: "settings", Scope: auth.ScopeAdmin, Status: 200, Request: settings.Patch{}, Response: settings.Settings{},
			Summary: "Change settings; absent fields stay. Each setting changed gets an entry in the audit log", handle: s.patchSettings},
		{Method: "GET", Path: "/api/v1/audit-log", Tag: "settings", Scope: auth.ScopeAdmin, Status: 200, Response: AuditPage{},
			Query: []Param{{"limit", "1 to 500 (default 100)", "integer"}, {"after", "the next cursor of the previous page", "string"},
				{"kind", "only entries about this kind of object: " + strings.Join(audit.Kinds, ", "), "string"},
				{"actor", "only entries made by this user or API token, by its id", "string"}},
			Summary: "The audit log, newest first: who changed a setting, purpose, user, API token, webhook endpoint, webform, source, " +
				"custom field, list, workflow rule, campaign or campaign template, when, and each changed field's value before and after " +
				"(a secret is named with its values left out; a password is never written; a campaign's body or a template's layout is written as its digest)",
			handle: s.auditLog},

		{Method: "GET", Path: "/api/v1/ledger/verify", Tag: "ledger", Status: 200, Response: LedgerReport{},
			Summary: "Recompute the ledger's hash chain, replay it and compare it with the current consent state; rebuild its Merkle tree " +
				"and check every stored hash and signed checkpoint (tree). ok is false when either finds a problem", handle: s.verifyLedger},
	}
}

// Health is the /healthz body.
type Health struct {
	Status   string `json:"status"`
	Database string `json:"database"`
	Version  string `json:"version"`
}

func (s *Server) health(r *http.Request, _ consent.Actor) (int, any, error) {
	if err := s.DB.Read.PingContext(r.Context()); err != nil {
		return 0, nil, err
	}
	return 200, Health{Status: "ok", Database: string(s.DB.Dialect), Version: s.Version}, nil
}

// Readiness is the /readyz body.
type Readiness struct {
	Status string `json:"status" doc:"ready, or not_ready"`
	// Checks are the checks that ran, each "ok" or what is wrong.
	Checks map[string]string `json:"checks" doc:"each check (database, migrations, keyset) with ok or what is wrong"`
	// NotReady names the checks that failed.
	NotReady []string `json:"not_ready,omitempty" doc:"the checks that failed"`
}

// Ready reports whether every check passed.
func (r Readiness) Ready() bool { return len(r.NotReady) == 0 }

// readiness answers 200 when the service is ready and 503 with what is
// not otherwise; without Ready, only the database is checked.
func (s *Server) readiness(r *http.Request, _ consent.Actor) (int, any, error) {
	var rd Readiness
	if s.Ready != nil {
		rd = s.Ready(r.Context())
	} else {
		rd = Readiness{Checks: map[string]string{"database": "ok"}}
		if err := s.DB.Read.PingContext(r.Context()); err != nil {
			rd.Checks["database"], rd.NotReady = "not reachable", []string{"database"}
		}
	}
	if !rd.Ready() {
		rd.Status = "not_ready"
		return http.StatusServiceUnavailable, rd, nil
	}
	rd.Status = "ready"
	return 200, rd, nil
}

func (s *Server) openapi(r *http.Request, _ consent.Actor) (int, any, error) {
	return 200, s.OpenAPI(), nil
}

// ContactPage is one page of contacts.
type ContactPage struct {
	Items []*contact.Contact `json:"items"`
	Next  string             `json:"next,omitempty" doc:"pass as after= for the next page; absent on the last page"`
}

func (s *Server) listContacts(r *http.Request, caller consent.Actor) (int, any, error) {
	q := r.URL.Query()
	lq := contact.ListQuery{After: q.Get("after"), Email: q.Get("email"), Filter: q.Get("filter"), Asker: s.asker(r, caller)}
	// field.NAME=value look-ups are conditions too, so a sensitive field is
	// matched through its blind index like anywhere else.
	var lookups []string
	for k, vs := range q {
		if name, ok := strings.CutPrefix(k, "field."); ok {
			if err := errs.PlainText(k, vs[0]); err != nil {
				return 0, nil, err
			}
			if !fieldNameRE.MatchString(name) {
				return 0, nil, errs.Invalid(k, "is not a field name")
			}
			cond, err := s.Contacts.LookupCondition(r.Context(), name, vs[0])
			if err != nil {
				return 0, nil, err
			}
			lookups = append(lookups, cond)
		}
	}
	if len(lookups) > 0 {
		sort.Strings(lookups)
		if lq.Filter != "" {
			lookups = append(lookups, "("+lq.Filter+")")
		}
		lq.Filter = strings.Join(lookups, " && ")
	}
	var err error
	if lq.Limit, err = queryLimit(q, 0); err != nil {
		return 0, nil, err
	}
	items, next, err := s.Contacts.List(r.Context(), lq)
	if err != nil {
		return 0, nil, err
	}
	return 200, ContactPage{Items: items, Next: next}, nil
}

// CountRequest counts the contacts matching a condition.
type CountRequest struct {
	Filter string `json:"filter" doc:"a condition (docs/conditions.md); empty counts every contact"`
}

// CountResponse is how many contacts matched.
type CountResponse struct {
	Count int64 `json:"count"`
}

func (s *Server) countContacts(r *http.Request, caller consent.Actor) (int, any, error) {
	var req CountRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	n, err := s.Contacts.Count(r.Context(), req.Filter, s.asker(r, caller))
	if err != nil {
		return 0, nil, err
	}
	return 200, CountResponse{Count: n}, nil
}

// EvidenceRequest is how an integrator passes on how a consent was collected.
type EvidenceRequest struct {
	Method    string `json:"method" enum:"@user_method" doc:"default api"`
	IP        string `json:"ip" doc:"the contact's IP address when they gave it, if relayed"`
	UserAgent string `json:"user_agent" doc:"the contact's browser when they gave it, if relayed"`
}

func (e *EvidenceRequest) evidence() consent.Evidence {
	if e == nil || e.Method == "" {
		ev := consent.Evidence{Method: consent.MethodAPI}
		if e != nil {
			ev.IP, ev.UserAgent = e.IP, e.UserAgent
		}
		return ev
	}
	return consent.Evidence{Method: e.Method, IP: e.IP, UserAgent: e.UserAgent}
}

// ConsentRequest records a consent.
type ConsentRequest struct {
	Purpose      string           `json:"purpose" required:"true" doc:"purpose name or id"`
	State        string           `json:"state" required:"true" enum:"@consent_state"`
	Source       string           `json:"source" required:"true" doc:"source name or id"`
	LegalBasis   string           `json:"legal_basis" doc:"default: the purpose's legal basis, the only one a consent record of it may rest on; another is refused (400, field legal_basis) and nothing is written"`
	TextVersion  int              `json:"text_version" doc:"the consent text version shown; default: the current one"`
	TextLanguage string           `json:"text_language" doc:"the language the consent text was shown in, if known: a BCP 47 tag such as en, sv or pt-BR, kept in its canonical form"`
	ExpiresAt    *time.Time       `json:"expires_at"`
	Evidence     *EvidenceRequest `json:"evidence"`
}

func (c *ConsentRequest) input(caller consent.Actor) consent.RecordInput {
	return consent.RecordInput{Purpose: c.Purpose, State: c.State, Source: c.Source, LegalBasis: c.LegalBasis,
		TextVersion: c.TextVersion, TextLanguage: c.TextLanguage, ExpiresAt: c.ExpiresAt, Actor: caller, Evidence: c.Evidence.evidence()}
}

// maxConsentsPerRequest bounds the work one request can put into a single
// write, which every other writer waits for.
const maxConsentsPerRequest = 50

// CreateContactRequest creates a contact.
type CreateContactRequest struct {
	contact.Input
	OptInStatus string           `json:"opt_in_status" enum:"@opt_in_status_on_create" doc:"default none"`
	Consents    []ConsentRequest `json:"consents" doc:"consents recorded with the contact, in the same transaction"`
	Evidence    *EvidenceRequest `json:"evidence" doc:"how the opt-in status was obtained"`
}

func (s *Server) createContact(r *http.Request, caller consent.Actor) (int, any, error) {
	var req CreateContactRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Evidence != nil && req.OptInStatus == "" {
		return 0, nil, errs.Invalid("evidence", "says how the opt-in status was obtained; give opt_in_status with it (consents carry their own evidence)")
	}
	if len(req.Consents) > maxConsentsPerRequest {
		return 0, nil, errs.Invalid("consents", "at most %d consents can be recorded with a contact", maxConsentsPerRequest)
	}
	nc := contact.NewContact{Input: req.Input, OptInStatus: req.OptInStatus, Actor: caller, Evidence: req.Evidence.evidence()}
	for _, c := range req.Consents {
		nc.Consents = append(nc.Consents, c.input(caller))
	}
	c, err := s.Contacts.Create(r.Context(), nc)
	if err != nil {
		return 0, nil, err
	}
	return 201, c, nil
}

func (s *Server) getContact(r *http.Request, _ consent.Actor) (int, any, error) {
	c, err := s.Contacts.Get(r.Context(), r.PathValue("id"))
	return 200, c, err
}

// UpdateContactRequest changes a contact's fields.
type UpdateContactRequest struct {
	contact.Input
	OptInStatus *string `json:"opt_in_status" doc:"not accepted here: use POST /api/v1/contacts/{id}/opt-in"`
}

func (s *Server) updateContact(r *http.Request, _ consent.Actor) (int, any, error) {
	var req UpdateContactRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.OptInStatus != nil {
		return 0, nil, errs.Invalid("opt_in_status", "is changed with POST /api/v1/contacts/{id}/opt-in, where its rules apply")
	}
	c, err := s.Contacts.Update(r.Context(), r.PathValue("id"), req.Input)
	return 200, c, err
}

func (s *Server) deleteContact(r *http.Request, caller consent.Actor) (int, any, error) {
	return 204, nil, s.Erasure.Delete(r.Context(), r.PathValue("id"), caller)
}

// ConsentsResponse is a contact's consents: the current state per purpose
// and every record, oldest first.
type ConsentsResponse struct {
	ContactID string            `json:"contact_id"`
	Current   []consent.Current `json:"current"`
	History   []consent.Record  `json:"history"`
}

func (s *Server) getConsents(r *http.Request, _ consent.Actor) (int, any, error) {
	id := r.PathValue("id")
	cur, err := s.Consent.CurrentConsents(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	hist, err := s.Consent.History(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	return 200, ConsentsResponse{ContactID: id, Current: cur, History: hist}, nil
}

func (s *Server) recordConsent(r *http.Request, caller consent.Actor) (int, any, error) {
	var req ConsentRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	rec, err := s.Consent.Record(r.Context(), r.PathValue("id"), req.input(caller))
	if err != nil {
		return 0, nil, err
	}
	return 201, rec, nil
}

// OptInRequest changes the email opt-in status.
type OptInRequest struct {
	Status   string           `json:"status" required:"true" enum:"@opt_in_status_by_user"`
	Evidence *EvidenceRequest `json:"evidence"`
}

// OptInResponse is a contact's opt-in status with its history; Change is the
// change just made, absent when the status stayed as it was.
type OptInResponse struct {
	ContactID string                `json:"contact_id"`
	Status    string                `json:"status"`
	Change    *consent.OptInChange  `json:"change,omitempty"`
	History   []consent.OptInChange `json:"history"`
}

func (s *Server) optInResponse(r *http.Request, id string, change *consent.OptInChange) (int, any, error) {
	c, err := s.Contacts.Get(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	hist, err := s.Consent.OptInHistory(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	return 200, OptInResponse{ContactID: id, Status: c.OptInStatus, Change: change, History: hist}, nil
}

func (s *Server) getOptIn(r *http.Request, _ consent.Actor) (int, any, error) {
	return s.optInResponse(r, r.PathValue("id"), nil)
}

func (s *Server) setOptIn(r *http.Request, caller consent.Actor) (int, any, error) {
	var req OptInRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	id := r.PathValue("id")
	ch, err := s.Consent.SetOptIn(r.Context(), id, consent.OptInInput{Status: req.Status, Channel: consent.ChannelUser,
		Actor: caller, Evidence: req.Evidence.evidence()})
	if err != nil {
		return 0, nil, err
	}
	return s.optInResponse(r, id, ch)
}

func (s *Server) listFields(r *http.Request, _ consent.Actor) (int, any, error) {
	f, err := s.Contacts.Fields(r.Context())
	return 200, f, err
}

func (s *Server) createField(r *http.Request, caller consent.Actor) (int, any, error) {
	var in contact.FieldInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	f, err := s.Contacts.CreateField(r.Context(), audit.Actor(caller), in)
	return 201, f, err
}

func (s *Server) getField(r *http.Request, _ consent.Actor) (int, any, error) {
	f, err := s.Contacts.Field(r.Context(), r.PathValue("name"))
	return pathResult(200, f, err)
}

func (s *Server) updateField(r *http.Request, caller consent.Actor) (int, any, error) {
	var in contact.FieldInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	f, err := s.Contacts.UpdateField(r.Context(), audit.Actor(caller), r.PathValue("name"), in)
	return pathResult(200, f, err)
}

func (s *Server) listPurposes(r *http.Request, _ consent.Actor) (int, any, error) {
	p, err := s.Consent.Purposes(r.Context())
	return 200, p, err
}

func (s *Server) createPurpose(r *http.Request, caller consent.Actor) (int, any, error) {
	var in consent.PurposeInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	p, err := s.Consent.CreatePurpose(r.Context(), audit.Actor(caller), in)
	return 201, p, err
}

func (s *Server) getPurpose(r *http.Request, _ consent.Actor) (int, any, error) {
	p, err := s.Consent.Purpose(r.Context(), r.PathValue("id"))
	return pathResult(200, p, err)
}

func (s *Server) updatePurpose(r *http.Request, caller consent.Actor) (int, any, error) {
	var in consent.PurposeInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	p, err := s.Consent.Purpose(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, inPath(err)
	}
	p, err = s.Consent.UpdatePurpose(r.Context(), audit.Actor(caller), p.ID, in)
	return pathResult(200, p, err)
}

func (s *Server) purposeTexts(r *http.Request, _ consent.Actor) (int, any, error) {
	t, err := s.Consent.PurposeTexts(r.Context(), r.PathValue("id"))
	return pathResult(200, t, err)
}

// TranslationInput is a consent text's translation into the language the
// path names.
type TranslationInput struct {
	Text string `json:"text" required:"true" doc:"the consent text in the language of the path"`
}

func (s *Server) setTranslation(r *http.Request, caller consent.Actor) (int, any, error) {
	var in TranslationInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 1 {
		return 0, nil, errs.Invalid("version", "must be a consent text version number")
	}
	t, err := s.Consent.SetTranslation(r.Context(), audit.Actor(caller), r.PathValue("id"), v, r.PathValue("language"), in.Text)
	if e := errs.As(err); e != nil && e.Kind == errs.KindNotFound && e.Field == "purpose" {
		return 0, nil, inPath(err)
	}
	return 200, t, err
}

func (s *Server) listSources(r *http.Request, _ consent.Actor) (int, any, error) {
	src, err := s.Consent.Sources(r.Context())
	return 200, src, err
}

func (s *Server) createSource(r *http.Request, caller consent.Actor) (int, any, error) {
	var in consent.SourceInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	src, err := s.Consent.CreateSource(r.Context(), audit.Actor(caller), in)
	return 201, src, err
}

func (s *Server) updateSource(r *http.Request, caller consent.Actor) (int, any, error) {
	var in consent.SourceInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	src, err := s.Consent.UpdateSource(r.Context(), audit.Actor(caller), r.PathValue("id"), in)
	return pathResult(200, src, err)
}

// LedgerReport is the chain's report (ledger.Report) with the tree's.
type LedgerReport struct {
	*ledger.Report
	Tree *ledgertree.Report `json:"tree,omitempty" doc:"the Merkle tree and its checkpoints, rebuilt from the events and compared"`
}

func (s *Server) verifyLedger(r *http.Request, _ consent.Actor) (int, any, error) {
	ctx := r.Context()
	if s.Tree == nil {
		rep, err := s.Consent.VerifyLedger(ctx)
		return 200, LedgerReport{Report: rep}, err
	}
	rep, tree, err := s.Tree.VerifyWithChain(ctx, s.Consent.VerifyLedger)
	if err != nil {
		return 0, nil, err
	}
	rep.OK = rep.OK && tree.OK()
	return 200, LedgerReport{Report: rep, Tree: tree}, nil
}

var fieldNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// RevealRequest is the optional body of a reveal: why the value is
// needed. A reason is not required, so that a CRM syncing values through a
// token with the reveal scope keeps working; the admin UI always asks for
// one.
type RevealRequest struct {
	Reason string `json:"reason" doc:"why the value is needed, kept in the access log: one line of at most 200 characters, without control characters; optional"`
}

// RevealResponse is a sensitive field's clear value.
type RevealResponse struct {
	ContactID string `json:"contact_id"`
	Field     string `json:"field"`
	Value     string `json:"value"`
}

func (s *Server) reveal(r *http.Request, caller consent.Actor) (int, any, error) {
	if err := requireScope(r, auth.ScopeReveal); err != nil {
		return 0, nil, err
	}
	var in RevealRequest
	if err := decodeOptional(r, &in); err != nil {
		return 0, nil, err
	}
	id, field := r.PathValue("id"), r.PathValue("field")
	if _, err := s.Contacts.Get(r.Context(), id); err != nil {
		return 0, nil, err
	}
	v, err := s.Contacts.RevealFor(r.Context(), contact.RevealRequest{ContactID: id, Field: field, Actor: caller, IP: s.ip(r), Reason: in.Reason})
	if err != nil {
		return 0, nil, err
	}
	return 200, RevealResponse{ContactID: id, Field: field, Value: v}, nil
}

// ip is the client's address, as evidence and for the access log.
func (s *Server) ip(r *http.Request) string {
	if a := s.IPs.IP(r); a.IsValid() {
		return a.String()
	}
	return ""
}

// asker says who asks a question about contacts.
func (s *Server) asker(r *http.Request, caller consent.Actor) contact.Asker {
	return contact.Asker{Actor: caller, MayReveal: requireScope(r, auth.ScopeReveal) == nil, IP: s.ip(r)}
}

// AccessLogPage is one page of the access log, newest first.
type AccessLogPage struct {
	Items []contact.AccessEntry `json:"items"`
	Next  string                `json:"next,omitempty"`
}

func (s *Server) accessLog(r *http.Request, _ consent.Actor) (int, any, error) {
	if err := requireScope(r, auth.ScopeReveal); err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	aq := contact.AccessQuery{Actor: q.Get("actor"), Contact: q.Get("contact"), Field: q.Get("field"), After: q.Get("after")}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &aq.From}, {"to", &aq.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return 0, nil, errs.Invalid(p.name, "must be an RFC 3339 time such as 2026-11-24T09:00:00Z")
			}
			*p.dst = t
		}
	}
	var err error
	if aq.Limit, err = queryLimit(q, 0); err != nil {
		return 0, nil, err
	}
	items, next, err := s.Contacts.AccessLog(r.Context(), aq)
	if err != nil {
		return 0, nil, err
	}
	return 200, AccessLogPage{Items: items, Next: next}, nil
}

// InviteRequest names the contacts to invite: by id, or by a condition.
type InviteRequest struct {
	ContactIDs []string `json:"contact_ids" doc:"at most 100,000; for more, select them with filter"`
	Filter     string   `json:"filter" doc:"a condition (docs/conditions.md) selecting the contacts instead, e.g. inList(\"Newsletter\")"`
}

// Bounds of one double opt-in request: the ids a body may list (the body
// is read up to maxInviteBody, room for them), and the contacts a
// condition may select (one run holds their ids).
const (
	maxInviteIDs  = 100_000
	maxInviteBody = 8 << 20
	maxAudience   = 1_000_000
)

func (s *Server) invite(r *http.Request, caller consent.Actor) (int, any, error) {
	return s.idempotent(r, caller, maxInviteBody, func(finish finishFunc) (int, any, error) {
		var req InviteRequest
		if err := decodeUpTo(r, &req, maxInviteBody); err != nil {
			return 0, nil, err
		}
		ids := req.ContactIDs
		switch {
		case len(ids) > 0 && req.Filter != "":
			return 0, nil, errs.Invalid("filter", "give contact_ids or filter, not both")
		case req.Filter != "":
			var err error
			if ids, err = s.Contacts.MatchingIDs(r.Context(), req.Filter, maxAudience+1); err != nil {
				return 0, nil, err
			}
			if len(ids) > maxAudience {
				return 0, nil, errs.Invalid("filter", "selects more than %d contacts; narrow it and invite in parts", maxAudience)
			}
		case len(ids) == 0:
			return 0, nil, errs.Required("contact_ids")
		case len(ids) > maxInviteIDs:
			return 0, nil, errs.Invalid("contact_ids", "at most %d contacts by id; select more with filter", maxInviteIDs)
		}
		if len(ids) > optin.MaxInline {
			b, err := s.OptIn.StartBulk(r.Context(), ids, optin.TriggerAPI, func(tx *store.Tx, b *optin.Bulk) error { return finish(tx, 202, b) })
			return 202, b, err
		}
		res, err := s.OptIn.InviteThen(r.Context(), ids, optin.TriggerAPI, func(tx *store.Tx, res *optin.Result) error { return finish(tx, 200, res) })
		return 200, res, err
	})
}

func (s *Server) bulkRun(r *http.Request, _ consent.Actor) (int, any, error) {
	b, err := s.OptIn.GetBulk(r.Context(), r.PathValue("id"))
	return 200, b, err
}

// contactExists is a 404 for an unknown contact in the path.
func (s *Server) contactExists(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if _, err := s.Contacts.Get(r.Context(), id); err != nil {
		return "", err
	}
	return id, nil
}

func (s *Server) invitations(r *http.Request, _ consent.Actor) (int, any, error) {
	id, err := s.contactExists(r)
	if err != nil {
		return 0, nil, err
	}
	inv, err := s.OptIn.Invitations(r.Context(), id)
	return 200, inv, err
}

func (s *Server) contactEmails(r *http.Request, _ consent.Actor) (int, any, error) {
	id, err := s.contactExists(r)
	if err != nil {
		return 0, nil, err
	}
	e, err := mail.ContactEntries(r.Context(), s.DB, id)
	return 200, e, err
}

// BounceRequest reports a bounce from the mail system.
type BounceRequest struct {
	Email string `json:"email" required:"true"`
	Type  string `json:"type" required:"true" enum:"hard,soft"`
}

func (s *Server) bounce(r *http.Request, _ consent.Actor) (int, any, error) {
	var req BounceRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Type != "hard" && req.Type != "soft" {
		return 0, nil, errs.Invalid("type", "must be hard or soft")
	}
	d, err := s.Contacts.RecordBounce(r.Context(), req.Email, req.Type == "hard")
	return 200, d, err
}

func (s *Server) blocklist(r *http.Request, _ consent.Actor) (int, any, error) {
	d, err := s.Contacts.SetBlocklisted(r.Context(), r.PathValue("id"), true)
	return 200, d, err
}

func (s *Server) unblocklist(r *http.Request, _ consent.Actor) (int, any, error) {
	d, err := s.Contacts.SetBlocklisted(r.Context(), r.PathValue("id"), false)
	return 200, d, err
}

func (s *Server) mailbox(r *http.Request, _ consent.Actor) (int, any, error) {
	limit, err := queryLimit(r.URL.Query(), 50)
	if err != nil {
		return 0, nil, err
	}
	m, err := mail.MailboxMessages(r.Context(), s.DB, limit)
	return 200, m, err
}

func (s *Server) getSettings(r *http.Request, _ consent.Actor) (int, any, error) {
	st, err := settings.Get(r.Context(), s.DB.Read)
	return 200, st, err
}

func (s *Server) patchSettings(r *http.Request, caller consent.Actor) (int, any, error) {
	var p settings.Patch
	if err := decode(r, &p); err != nil {
		return 0, nil, err
	}
	st, err := settings.Update(r.Context(), s.DB, p, audit.Actor(caller), time.Now())
	return 200, st, err
}

// AuditPage is one page of the audit log, newest first.
type AuditPage struct {
	Items []audit.Entry `json:"items"`
	Next  string        `json:"next,omitempty" doc:"pass as after= for the next page; absent on the last page"`
}

func (s *Server) auditLog(r *http.Request, _ consent.Actor) (int, any, error) {
	limit, err := queryLimit(r.URL.Query(), 100)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	items, next, err := audit.List(r.Context(), s.DB.Read, audit.Query{Kind: q.Get("kind"), Actor: q.Get("actor"), After: q.Get("after"), Limit: limit})
	if err != nil {
		return 0, nil, err
	}
	return 200, AuditPage{Items: items, Next: next}, nil
}

// queryLimit reads the page size in the query's "limit": a whole number
// from 1 to 500, or def when it is not given.
func queryLimit(q url.Values, def int) (int, error) { return queryLimitUpTo(q, def, 500) }

// queryLimitUpTo is queryLimit for a list whose pages hold up to most.
func queryLimitUpTo(q url.Values, def, most int) (int, error) {
	l := q.Get("limit")
	if l == "" {
		return def, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > most {
		return 0, errs.Invalid("limit", "must be a whole number from 1 to %d", most)
	}
	return n, nil
}

// inPath turns a not-found error into one about the URL (a 404), for look-ups
// of the resource the path names.
func inPath(err error) error {
	if errs.Is(err, errs.KindNotFound) {
		return errs.WithField(err, errs.Field(""))
	}
	return err
}

// pathResult is a handler's result for a resource named by the path.
func pathResult[T any](status int, v T, err error) (int, any, error) { return status, v, inPath(err) }
