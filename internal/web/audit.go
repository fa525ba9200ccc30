package web

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/export"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/mail"
)

func (s *Server) auditRoutes() {
	audit := func(h handler) http.HandlerFunc { return s.need(auth.PermAudit, h) }
	s.mux.HandleFunc("GET /admin/outbox", audit(s.outboxPage))
	s.mux.HandleFunc("GET /admin/mailbox", audit(s.mailboxPage))
	s.mux.HandleFunc("GET /admin/mailbox/{id}/attachments/{n}", audit(s.mailboxFile))
	s.mux.HandleFunc("GET /admin/access-log", audit(s.accessLogPage))
	s.mux.HandleFunc("GET /admin/audit-log", audit(s.auditLogPage))
	s.mux.HandleFunc("GET /admin/ledger", audit(s.ledgerPage))
	s.post("/admin/ledger/verify", smallForm, audit(s.verifyLedger))
}

func (s *Server) outboxPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	q := mail.OutboxQuery{Status: r.URL.Query().Get("status"), After: r.URL.Query().Get("after"), Limit: 100}
	entries, next, err := mail.Entries(r.Context(), s.DB, q)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	total, err := mail.CountEntries(r.Context(), s.DB, q)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.render(w, http.StatusOK, "outbox", page{Title: "Outbox", User: u, Nav: "audit",
		Data: map[string]any{"Entries": entries, "Next": next, "Status": q.Status,
			"Total":    listTotal{ID: "outbox-total", One: "email", Many: "emails", Total: total, Shown: len(entries), Paged: next != "" || q.After != ""},
			"Statuses": []string{mail.StatusQueued, mail.StatusSending, mail.StatusSent, mail.StatusSuppressed, mail.StatusFailed}}})
}

func (s *Server) mailboxPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	msgs, err := mail.MailboxMessages(r.Context(), s.DB, 100)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.render(w, http.StatusOK, "mailbox", page{Title: "Dev mailbox", User: u, Nav: "audit", Data: msgs})
}

// mailboxFile downloads an attachment of a dev-mailbox message (a signed
// receipt, say); one whose content was removed is not found.
func (s *Server) mailboxFile(w http.ResponseWriter, r *http.Request, u *auth.User) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 {
		s.fail(w, errs.NotFound("attachment", ""), u)
		return
	}
	a, data, err := mail.MailboxFile(r.Context(), s.DB, r.PathValue("id"), n)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	httpx.Attachment(w, a.ContentType, a.Filename)
	_, _ = w.Write(data)
}

// accessRow is an access-log entry as the page says it: in words, with
// the contact named and the field by its label.
type accessRow struct {
	contact.AccessEntry
	// What says what happened: a reveal, a look-up or a download.
	What string
	// Contact names the contact as the viewer may see them; "" for a
	// look-up, which concerns no one contact.
	Contact string
}

// accessContact names the contact of an entry for the viewer: by name or
// address, masked for a viewer who may not see contacts, and saying so
// when the contact was deleted or erased.
func accessContact(c *contact.Contact, mayView bool) string {
	switch {
	case c == nil:
		return "a deleted contact"
	case c.ErasedAt != nil:
		return "an erased contact"
	case !mayView:
		return maskName(contactLabel(c))
	}
	return contactLabel(c)
}

// maskName keeps the first letter of each word of a name, and an email
// address's domain: enough to tell entries apart, not to know who.
func maskName(name string) string {
	local, domain, isEmail := strings.Cut(name, "@")
	words := strings.Fields(local)
	for i, w := range words {
		r := []rune(w)
		words[i] = string(r[0]) + "…"
	}
	out := strings.Join(words, " ")
	if isEmail {
		out += "@" + domain
	}
	return out
}

// accessLogPage searches the log of reveals, look-ups and downloads by
// who, whose record, which field and when (dates as YYYY-MM-DD, the "to"
// day included), and says each entry in words.
func (s *Server) accessLogPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	ctx := r.Context()
	v := r.URL.Query()
	q := contact.AccessQuery{Actor: v.Get("actor"), Contact: v.Get("contact"), Field: v.Get("field"), After: v.Get("after"), Limit: 100}
	var fe map[string]string
	day := func(k string) time.Time {
		if v.Get(k) == "" {
			return time.Time{}
		}
		t, err := time.Parse("2006-01-02", v.Get(k))
		if err != nil {
			fe = map[string]string{k: "must be a date as YYYY-MM-DD"}
		}
		return t
	}
	q.From, q.To = day("from"), day("to")
	if !q.To.IsZero() {
		q.To = q.To.Add(24 * time.Hour)
	}
	users, err := s.Users.List(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	names, err := s.actorNames(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	defs, err := s.Contacts.Fields(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	fields := map[string]string{}
	var sensitive []*contact.FieldDefinition
	for _, d := range defs {
		fields[d.Name] = d.Label
		if d.Sensitive {
			sensitive = append(sensitive, d)
		}
	}
	data := map[string]any{"Query": v, "Users": users, "Names": names, "Sensitive": sensitive, "ExportField": export.AccessField,
		"ListExportField": export.ListAccessField}
	if fe != nil {
		s.render(w, http.StatusBadRequest, "access_log", page{Title: "Access log", User: u, Nav: "audit", Errors: fe, Data: data})
		return
	}
	entries, next, err := s.Contacts.AccessLog(ctx, q)
	if e := errs.As(err); e != nil && e.Kind == errs.KindInvalid {
		s.render(w, http.StatusBadRequest, "access_log", page{Title: "Access log", User: u, Nav: "audit", Errors: fieldErrors(err), Data: data})
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	total, err := s.Contacts.AccessLogCount(ctx, q)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	var ids []string
	for _, e := range entries {
		if e.ContactID != "" && !slices.Contains(ids, e.ContactID) {
			ids = append(ids, e.ContactID)
		}
	}
	contacts, err := s.Contacts.Named(ctx, ids)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	rows := make([]accessRow, len(entries))
	for i, e := range entries {
		rows[i] = accessRow{AccessEntry: e, What: export.AccessWhat(e, fields)}
		if e.Field == export.ListAccessField {
			rows[i].Reason = "" // what the export held is in What; no one gave a reason
		}
		if e.ContactID != "" {
			rows[i].Contact = accessContact(contacts[e.ContactID], u.Can(auth.PermViewContacts))
		}
	}
	data["Entries"], data["Next"] = rows, next
	data["Total"] = listTotal{ID: "access-total", One: "entry", Many: "entries", Total: total, Shown: len(rows), Paged: next != "" || q.After != ""}
	s.render(w, http.StatusOK, "access_log", page{Title: "Access log", User: u, Nav: "audit", Data: data})
}

// ledgerPage shows the last verification of the ledger with its time and
// how many events were added since, so an old result is not taken for the
// state of today.
func (s *Server) ledgerPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	rep, ok, err := s.Consent.LastVerification(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	head, err := ledger.Head(r.Context(), s.DB.Read)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	data := map[string]any{"Report": rep, "Verified": ok, "Head": head}
	if ok {
		data["Since"] = head - rep.HeadSeq
	}
	flash := ""
	if r.URL.Query().Get("done") == "verified" {
		flash = "Verified."
	}
	s.render(w, http.StatusOK, "ledger", page{Title: "Consent ledger", User: u, Nav: "audit", Flash: flash, Data: data})
}

// verifyLedger verifies the whole ledger now (the result is kept) and
// goes back to the ledger page, which shows it.
func (s *Server) verifyLedger(w http.ResponseWriter, r *http.Request, u *auth.User) {
	rep, err := s.Consent.VerifyLedger(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.Log.InfoContext(r.Context(), "ledger verified", "ok", rep.OK, "events", rep.Events, "by", u.ID)
	http.Redirect(w, r, "/admin/ledger?done=verified", http.StatusSeeOther)
}

// auditKinds and auditActions say the audit log's kinds of object and
// actions in words; TestAuditLogPage checks that each has its words.
var (
	auditKinds = map[string]string{audit.KindSetting: "Setting", audit.KindPurpose: "Purpose", audit.KindUser: "User",
		audit.KindAPIToken: "API token", audit.KindWebhook: "Webhook endpoint", audit.KindWebform: "Webform",
		audit.KindSource: "Source", audit.KindField: "Custom field", audit.KindList: "List", audit.KindWorkflowRule: "Workflow rule",
		audit.KindCampaign: "Campaign", audit.KindCampaignTemplate: "Campaign template"}
	auditActions = map[string]string{audit.ActionSettingChanged: "changed", audit.ActionPurposeCreated: "created",
		audit.ActionPurposeChanged: "changed", audit.ActionUserCreated: "created", audit.ActionUserRoleChanged: "role changed",
		audit.ActionUserDisabled: "disabled", audit.ActionUserEnabled: "enabled", audit.ActionUserPasswordChanged: "password changed",
		audit.ActionAPITokenCreated: "created", audit.ActionAPITokenRevoked: "revoked", audit.ActionWebhookCreated: "created",
		audit.ActionWebhookChanged: "changed", audit.ActionWebhookSecretRotated: "secret rotated", audit.ActionWebhookDeleted: "deleted",
		audit.ActionWebformCreated: "created", audit.ActionWebformChanged: "changed", audit.ActionWebformDeleted: "deleted",
		audit.ActionSourceCreated: "created", audit.ActionSourceChanged: "changed", audit.ActionSourceDeactivated: "deactivated",
		audit.ActionSourceReactivated: "reactivated", audit.ActionFieldCreated: "created", audit.ActionFieldChanged: "changed",
		audit.ActionFieldMadeSensitive: "made sensitive", audit.ActionListCreated: "created", audit.ActionListChanged: "changed",
		audit.ActionListDeleted: "deleted", audit.ActionWorkflowRuleCreated: "created", audit.ActionWorkflowRuleChanged: "changed",
		audit.ActionWorkflowRuleEnabled: "turned on", audit.ActionWorkflowRuleDisabled: "turned off", audit.ActionWorkflowRuleDeleted: "deleted",
		audit.ActionCampaignCreated: "created", audit.ActionCampaignChanged: "changed", audit.ActionCampaignScheduled: "scheduled",
		audit.ActionCampaignUnscheduled: "unscheduled", audit.ActionCampaignStarted: "sending started", audit.ActionCampaignPaused: "paused",
		audit.ActionCampaignResumed: "resumed", audit.ActionCampaignCancelled: "cancelled",
		audit.ActionCampaignRetried: "unknown recipients sent again", audit.ActionCampaignDeleted: "deleted",
		audit.ActionCampaignTemplateCreated: "created", audit.ActionCampaignTemplateChanged: "changed", audit.ActionCampaignTemplateDeleted: "deleted"}
)

// auditRow is an audit-log entry as the page says it.
type auditRow struct {
	audit.Entry
	Kind, Action string // in words
}

// auditLogPage lists the audit log, newest first, a page at a time, by
// the kind of object and who made the change; a user or token is named
// as it is now, the object as it was when changed. An unknown kind is
// refused by name, with the filters shown again.
func (s *Server) auditLogPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	ctx := r.Context()
	v := r.URL.Query()
	users, err := s.Users.List(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	tokens, err := s.Tokens.List(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	// Who by the address a user signs in with, which tells users apart
	// as a name need not, and a token by its name.
	names := map[string]string{}
	for _, x := range users {
		names[x.ID] = x.Email
	}
	for _, t := range tokens {
		names[t.ID] = t.Name
	}
	data := map[string]any{"Query": v, "Names": names, "Users": users, "Tokens": tokens, "Kinds": audit.Kinds, "KindNames": auditKinds}
	entries, next, err := audit.List(ctx, s.DB.Read, audit.Query{Kind: v.Get("kind"), Actor: v.Get("actor"), After: v.Get("after"), Limit: 100})
	if e := errs.As(err); e != nil && e.Kind == errs.KindInvalid {
		s.render(w, http.StatusBadRequest, "audit_log", page{Title: "Audit log", User: u, Nav: "audit", Errors: fieldErrors(err), Data: data})
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	rows := make([]auditRow, len(entries))
	for i, e := range entries {
		rows[i] = auditRow{Entry: e, Kind: auditKinds[e.Kind], Action: auditActions[e.Action]}
	}
	data["Entries"], data["Next"] = rows, next
	s.render(w, http.StatusOK, "audit_log", page{Title: "Audit log", User: u, Nav: "audit", Data: data})
}
