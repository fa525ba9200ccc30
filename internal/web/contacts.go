package web

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/requests"
)

func (s *Server) contactRoutes() {
	s.mux.HandleFunc("GET /admin/contacts", s.need(auth.PermViewContacts, s.contactList))
	s.mux.HandleFunc("GET /admin/contacts/new", s.need(auth.PermEditContacts, s.newContactPage))
	s.mux.HandleFunc("POST /admin/contacts", s.need(auth.PermEditContacts, s.createContact))
	s.mux.HandleFunc("GET /admin/contacts/{id}", s.need(auth.PermViewContacts, s.contactPage))
	s.mux.HandleFunc("POST /admin/contacts/{id}", s.need(auth.PermEditContacts, s.updateContact))
	s.mux.HandleFunc("POST /admin/contacts/{id}/consents", s.need(auth.PermEditContacts, s.recordConsent))
	s.mux.HandleFunc("POST /admin/contacts/{id}/opt-in", s.need(auth.PermEditContacts, s.setOptIn))
	s.mux.HandleFunc("POST /admin/contacts/{id}/double-opt-in", s.need(auth.PermEditContacts, s.sendDoubleOptIn))
	s.mux.HandleFunc("POST /admin/contacts/{id}/reveal/{field}", s.need(auth.PermReveal, s.reveal))
	s.mux.HandleFunc("POST /admin/contacts/{id}/delete", s.need(auth.PermDelete, s.deleteContact))
}

// listPage is the contact list: one page found by key, never by offset.
type listPage struct {
	Query, Filter string
	Contacts      []*contact.Contact
	Purposes      []*consent.Purpose
	States        map[string]map[string]string
	Next          string
	// FilterError and Caret show where a condition is wrong.
	FilterError string
	Caret       string
}

// searchCondition turns a search box's text into a condition on the names
// and the email address, quoted so that it is only ever a value.
func searchCondition(q string) string {
	q = filter.Lower(strings.TrimSpace(q))
	if q == "" {
		return ""
	}
	v := strconv.Quote(q)
	return `(lower(email) contains ` + v + ` || lower(first_name) contains ` + v + ` || lower(last_name) contains ` + v + `)`
}

// mayLookUp reports whether the list may compare sensitive values with a
// value for this request: the user may reveal, and the request came from
// this UI itself (Sec-Fetch-Site same-origin) or from a client that does
// not say (an old browser, a script). Any other site, including another
// one under the same registrable domain (same-site), and a link opened from
// outside the browser (none), could otherwise make the user's browser
// write look-ups to the access log in their name.
func mayLookUp(r *http.Request, u *auth.User) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin":
		return u.Can(auth.PermReveal)
	}
	return false
}

func (s *Server) contactList(w http.ResponseWriter, r *http.Request, u *auth.User) {
	ctx := r.Context()
	p := listPage{Query: r.URL.Query().Get("q"), Filter: r.URL.Query().Get("filter")}
	var conds []string
	if c := searchCondition(p.Query); c != "" {
		conds = append(conds, c)
	}
	if strings.TrimSpace(p.Filter) != "" {
		// The filter is checked on its own first, so that an error's
		// position points into what the user typed.
		if _, err := s.Contacts.Condition(ctx, p.Filter, mayLookUp(r, u)); err != nil {
			e := errs.As(err)
			if e == nil {
				s.fail(w, err, u)
				return
			}
			p.FilterError = e.Message
			if e.Position > 0 {
				p.Caret = strings.Repeat(" ", e.Position-1) + "^"
			}
			s.render(w, http.StatusBadRequest, "contacts", page{Title: "Contacts", User: u, Nav: "contacts", Data: p})
			return
		}
		conds = append(conds, "("+p.Filter+")")
	}
	contacts, next, err := s.Contacts.List(ctx, contact.ListQuery{Limit: 50, After: r.URL.Query().Get("after"),
		Filter: strings.Join(conds, " && "), Asker: contact.Asker{Actor: actor(u), MayReveal: mayLookUp(r, u), IP: s.clientIP(r)}})
	if err != nil {
		s.fail(w, err, u)
		return
	}
	ids := make([]string, len(contacts))
	for i, c := range contacts {
		ids[i] = c.ID
	}
	if p.States, err = s.Consent.StatesOf(ctx, ids); err != nil {
		s.fail(w, err, u)
		return
	}
	if p.Purposes, err = s.Consent.Purposes(ctx); err != nil {
		s.fail(w, err, u)
		return
	}
	p.Contacts, p.Next = contacts, next
	s.render(w, http.StatusOK, "contacts", page{Title: "Contacts", User: u, Nav: "contacts", Data: p})
}

// recordPage is one contact's record.
type recordPage struct {
	Contact     *contact.Contact
	Fields      []*contact.FieldDefinition
	Revealed    map[string]string
	Consents    []consentRow
	History     []consent.Record
	OptIn       []consent.OptInChange
	Transitions []string // the opt-in statuses a user may set now
	Invitations []optin.Invitation
	// NoInvite is why a double opt-in email would not go out now (an
	// optin Skip reason); "" when the button does something.
	NoInvite string
	Lists    []lists.Subscription
	Purposes []*consent.Purpose
	Sources  []*consent.Source
	Actors   map[string]string // user or API token id: its name, for "by whom"
	Locked   bool
	Requests []*requests.Request // the contact's data subject requests, for a user who handles them
}

// consentRow is a line of the Consents block: a purpose with its current
// state and the record that set it.
type consentRow struct {
	consent.Current
	Record *consent.Record
}

// actorNames returns the names of users and API clients by id, for "by
// whom" on a page.
func (s *Server) actorNames(ctx context.Context) (map[string]string, error) {
	names := map[string]string{}
	users, err := s.Users.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, x := range users {
		names[x.ID] = x.Email
		if x.Name != "" {
			names[x.ID] = x.Name
		}
	}
	tokens, err := s.Tokens.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range tokens {
		names[t.ID] = t.Name
	}
	return names, nil
}

func (s *Server) contactPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.showContact(w, r, u, http.StatusOK, contactNotice(r.URL.Query().Get("done")), nil, nil)
}

// contactDone are the notices a change on a contact's record redirects
// with, by the key in ?done=.
var contactDone = map[string]string{"saved": "Saved.", "consent": "Consent recorded.", "optin": "Opt-in status changed.",
	"invited": "Double opt-in email queued."}

// notInvited starts the done key of a double opt-in email not sent,
// followed by the reason.
const notInvited = "not_invited:"

// contactNotice is the notice for a done key; "" for none or an unknown
// one.
func contactNotice(done string) string {
	if reason, ok := strings.CutPrefix(done, notInvited); ok && reason != "" && len(reason) <= 40 &&
		strings.Trim(reason, "abcdefghijklmnopqrstuvwxyz_") == "" {
		return "No email sent: " + strings.ReplaceAll(reason, "_", " ") + "."
	}
	return contactDone[done]
}

// showContact renders the record, with a notice, errors next to fields and
// any value just revealed.
func (s *Server) showContact(w http.ResponseWriter, r *http.Request, u *auth.User, status int, flash string, fieldErrs map[string]string, revealed map[string]string) {
	ctx := r.Context()
	id := r.PathValue("id")
	c, err := s.Contacts.Get(ctx, id)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	p := recordPage{Contact: c, Revealed: revealed, Locked: c.ProcessingStoppedAt != nil}
	if p.Fields, err = s.Contacts.Fields(ctx); err != nil {
		s.fail(w, err, u)
		return
	}
	current, err := s.Consent.CurrentConsents(ctx, id)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	if p.History, err = s.Consent.History(ctx, id); err != nil {
		s.fail(w, err, u)
		return
	}
	slices.Reverse(p.History) // newest first
	// Pointers into History are taken after the reverse, which moves the
	// records they point at.
	byID := make(map[string]*consent.Record, len(p.History))
	for i := range p.History {
		byID[p.History[i].ID] = &p.History[i]
	}
	for _, cur := range current {
		p.Consents = append(p.Consents, consentRow{Current: cur, Record: byID[cur.RecordID]})
	}
	if p.OptIn, err = s.Consent.OptInHistory(ctx, id); err != nil {
		s.fail(w, err, u)
		return
	}
	slices.Reverse(p.OptIn)
	for _, to := range contactstate.OptInStatuses {
		if p.Locked && to != contactstate.OptOutUser {
			continue // a locked record takes opt-outs only
		}
		if ok, err := consent.CheckOptIn(c.OptInStatus, to, consent.ChannelUser); ok && err == nil {
			p.Transitions = append(p.Transitions, to)
		}
	}
	if p.Invitations, err = s.OptIn.Invitations(ctx, id); err != nil {
		s.fail(w, err, u)
		return
	}
	p.NoInvite = optin.WhyNot(c.OptInStatus, c.Deliverability, c.ProcessingStoppedAt != nil, c.ErasedAt != nil)
	if p.Lists, err = lists.Subscriptions(ctx, s.DB.Read, id); err != nil {
		s.fail(w, err, u)
		return
	}
	if p.Purposes, err = s.Consent.Purposes(ctx); err != nil {
		s.fail(w, err, u)
		return
	}
	if p.Sources, err = s.Consent.Sources(ctx); err != nil {
		s.fail(w, err, u)
		return
	}
	if p.Actors, err = s.actorNames(ctx); err != nil {
		s.fail(w, err, u)
		return
	}
	if u.Can(auth.PermRequests) {
		if p.Requests, err = s.Requests.List(ctx, requests.Query{ContactID: id, Limit: 20}); err != nil {
			s.fail(w, err, u)
			return
		}
	}
	s.render(w, status, "contact", page{Title: contactLabel(c), User: u, Nav: "contacts", Flash: flash, Errors: fieldErrs, Data: p})
}

// contactInput reads the record form: core fields, and custom fields as
// fields.NAME (an empty custom field is removed).
func contactInput(r *http.Request, defs []*contact.FieldDefinition) contact.Input {
	f := r.PostForm
	str := func(k string) *string {
		if _, ok := f[k]; !ok {
			return nil
		}
		v := f.Get(k)
		return &v
	}
	in := contact.Input{Kind: str("kind"), Fields: map[string]any{}}
	for _, cf := range contact.CoreFields {
		if v := str(cf.Name); v != nil {
			cf.Set(&in, *v)
		}
	}
	for _, d := range defs {
		k := "fields." + d.Name
		if _, ok := f[k]; !ok {
			continue
		}
		v := strings.TrimSpace(f.Get(k))
		switch {
		case d.Sensitive && v == "":
			// A masked value is never sent back; empty means unchanged.
		case v == "":
			in.Fields[d.Name] = nil
		case d.Type == contact.TypeNumber:
			if n, err := strconv.ParseFloat(v, 64); err == nil {
				in.Fields[d.Name] = n
			} else {
				in.Fields[d.Name] = v // refused by the type check, with the field named
			}
		case d.Type == contact.TypeBoolean:
			switch v {
			case "true":
				in.Fields[d.Name] = true
			case "false":
				in.Fields[d.Name] = false
			default:
				in.Fields[d.Name] = v // refused by the type check, with the field named
			}
		default:
			in.Fields[d.Name] = v
		}
	}
	return in
}

func (s *Server) newContactPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	defs, err := s.Contacts.Fields(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.render(w, http.StatusOK, "contact_new", page{Title: "New contact", User: u, Nav: "contacts", Data: map[string]any{"Fields": defs}})
}

func (s *Server) createContact(w http.ResponseWriter, r *http.Request, u *auth.User) {
	defs, err := s.Contacts.Fields(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "The form could not be read.", http.StatusBadRequest)
		return
	}
	in := contactInput(r, defs)
	c, err := s.Contacts.Create(r.Context(), contact.NewContact{Input: in, Actor: actor(u),
		Evidence: consent.Evidence{Method: consent.MethodEnteredByUser, IP: s.clientIP(r)}})
	if err != nil {
		if fe := fieldErrors(err); fe != nil {
			s.render(w, http.StatusBadRequest, "contact_new", page{Title: "New contact", User: u, Nav: "contacts", Errors: fe,
				Data: map[string]any{"Fields": defs, "Form": r.PostForm}})
			return
		}
		s.fail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/contacts/"+c.ID, http.StatusSeeOther)
}

func (s *Server) updateContact(w http.ResponseWriter, r *http.Request, u *auth.User) {
	defs, err := s.Contacts.Fields(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "The form could not be read.", http.StatusBadRequest)
		return
	}
	if _, err := s.Contacts.Update(r.Context(), r.PathValue("id"), contactInput(r, defs)); err != nil {
		s.afterAction(w, r, u, err, "")
		return
	}
	s.afterAction(w, r, u, nil, "saved")
}

// afterAction ends a form on a contact's record: a change made redirects
// to the record with the done key of its notice (see contactDone); an
// error shows the record again with the error next to its field.
func (s *Server) afterAction(w http.ResponseWriter, r *http.Request, u *auth.User, err error, done string) {
	if err == nil {
		// Back to the record, so that reloading it changes nothing.
		http.Redirect(w, r, "/admin/contacts/"+url.PathEscape(r.PathValue("id"))+"?done="+url.QueryEscape(done), http.StatusSeeOther)
		return
	}
	e := errs.As(err)
	if e == nil || e.Kind == errs.KindNotFound && e.Field == "" {
		s.fail(w, err, u)
		return
	}
	s.showContact(w, r, u, httpx.Status(err), "", fieldErrors(err), nil)
}

func (s *Server) recordConsent(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "The form could not be read.", http.StatusBadRequest)
		return
	}
	_, err := s.Consent.Record(r.Context(), r.PathValue("id"), consent.RecordInput{Purpose: r.PostForm.Get("purpose"),
		State: r.PostForm.Get("state"), Source: r.PostForm.Get("source"), Actor: actor(u),
		Evidence: consent.Evidence{Method: consent.MethodEnteredByUser, IP: s.clientIP(r)}})
	s.afterAction(w, r, u, err, "consent")
}

func (s *Server) setOptIn(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "The form could not be read.", http.StatusBadRequest)
		return
	}
	_, err := s.Consent.SetOptIn(r.Context(), r.PathValue("id"), consent.OptInInput{Status: r.PostForm.Get("status"),
		Channel: consent.ChannelUser, Actor: actor(u), Evidence: consent.Evidence{Method: consent.MethodEnteredByUser, IP: s.clientIP(r)}})
	s.afterAction(w, r, u, err, "optin")
}

func (s *Server) sendDoubleOptIn(w http.ResponseWriter, r *http.Request, u *auth.User) {
	res, err := s.OptIn.Invite(r.Context(), []string{r.PathValue("id")}, optin.TriggerUser)
	if err != nil {
		s.afterAction(w, r, u, err, "")
		return
	}
	done := "invited"
	for reason := range res.Skipped {
		done = notInvited + reason
	}
	s.afterAction(w, r, u, nil, done)
}

func (s *Server) reveal(w http.ResponseWriter, r *http.Request, u *auth.User) {
	field := r.PathValue("field")
	v, err := s.Contacts.Reveal(r.Context(), r.PathValue("id"), field, actor(u), s.clientIP(r))
	if err != nil {
		s.afterAction(w, r, u, err, "")
		return
	}
	s.showContact(w, r, u, http.StatusOK, "Revealed "+field+"; this is in the access log.", nil, map[string]string{field: v})
}

func (s *Server) deleteContact(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("confirm") != "yes" {
		s.afterAction(w, r, u, errs.Invalid("confirm", "tick the box to confirm the deletion"), "")
		return
	}
	if err := s.Contacts.Delete(r.Context(), r.PathValue("id"), actor(u)); err != nil {
		s.afterAction(w, r, u, err, "")
		return
	}
	http.Redirect(w, r, "/admin/contacts", http.StatusSeeOther)
}
