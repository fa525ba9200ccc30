package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/export"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/store"
)

func (s *Server) contactRoutes() {
	s.mux.HandleFunc("GET /admin/contacts", s.need(auth.PermViewContacts, s.contactList))
	s.mux.HandleFunc("GET /admin/contacts/new", s.need(auth.PermEditContacts, s.newContactPage))
	s.post("/admin/contacts", contactForm, s.need(auth.PermEditContacts, s.createContact))
	s.mux.HandleFunc("GET /admin/contacts/{id}", s.need(auth.PermViewContacts, s.contactPage))
	s.post("/admin/contacts/{id}", contactForm, s.need(auth.PermEditContacts, s.updateContact))
	s.post("/admin/contacts/{id}/consents", smallForm, s.need(auth.PermEditContacts, s.recordConsent))
	s.post("/admin/contacts/{id}/opt-in", smallForm, s.need(auth.PermEditContacts, s.setOptIn))
	s.post("/admin/contacts/{id}/double-opt-in", smallForm, s.need(auth.PermEditContacts, s.sendDoubleOptIn))
	s.post("/admin/contacts/{id}/reveal/{field}", smallForm, s.need(auth.PermReveal, s.askReveal))
	s.mux.HandleFunc("GET /admin/contacts/{id}/reveal/{field}/{grant}", s.need(auth.PermReveal, s.showRevealed))
	s.post("/admin/contacts/{id}/delete", smallForm, s.need(auth.PermDelete, s.deleteContact))
}

// listTotal is the line above a list that says how many entries match
// its search or filter, on every page, and whether this page shows them
// all (the partial "total").
type listTotal struct {
	ID        string // the line's element id
	One, Many string // what is counted, one and more: "contact", "contacts"
	Total     int64
	Shown     int  // on this page
	Paged     bool // the list has other pages
}

// Totals is the contact list's total line.
func (p listPage) Totals() listTotal {
	return listTotal{ID: "contacts-total", One: "contact", Many: "contacts", Total: p.Total, Shown: len(p.Contacts), Paged: p.Next != "" || p.After != ""}
}

// listPage is the contact list: one page found by key, never by offset.
type listPage struct {
	Query, Filter string
	Contacts      []*contact.Contact
	Purposes      []*consent.Purpose
	States        map[string]map[string]string
	Next          string
	// After is the page shown: the id of the last contact of the one before.
	After string
	// Total is how many contacts match, on every page.
	Total int64
	// FilterError and Caret show where a condition is wrong.
	FilterError string
	Caret       string
	// Columns are what the export of the list can hold; Chosen the
	// columns ticked in an export that was refused (nil: the defaults
	// are ticked), and ExportErrors why it was refused, by field.
	Columns      []export.Column
	Chosen       []string
	ExportErrors map[string]string
}

// Ticked says whether the export form ticks the column: as it was sent
// when the export was refused, else when it is a default one.
func (p listPage) Ticked(c export.Column) bool {
	if p.Chosen != nil {
		return slices.Contains(p.Chosen, c.Key)
	}
	return c.Default
}

// ListQuery is the list's query string as the user asked for it (search,
// condition and page), which a contact's record keeps to lead back to it.
func (p listPage) ListQuery() string {
	return listQuery(url.Values{"q": {p.Query}, "filter": {p.Filter}, "after": {p.After}})
}

// listQuery keeps of a contact list's query only what selects the list,
// for a link back to it.
func listQuery(v url.Values) string {
	keep := url.Values{}
	for _, k := range []string{"q", "filter", "after"} {
		if x := v.Get(k); x != "" {
			keep.Set(k, x)
		}
	}
	return keep.Encode()
}

// listBack is the contact list a record was opened from, as listQuery
// keeps it ("" for the whole list): the record's own "list" parameter or,
// for a form posted from the record, the one of the address it was posted
// from, so that the way back survives the redirect after the post.
func listBack(r *http.Request) string {
	v := r.URL.Query().Get("list")
	if v == "" && r.Method == http.MethodPost {
		if ref, err := url.Parse(r.Referer()); err == nil {
			v = ref.Query().Get("list")
		}
	}
	q, err := url.ParseQuery(v)
	if err != nil {
		return ""
	}
	return listQuery(q)
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
	v := r.URL.Query()
	s.showContactList(w, r, u, listPage{Query: v.Get("q"), Filter: v.Get("filter"), After: v.Get("after")}, http.StatusOK)
}

// listCondition is the condition the contact list shows: its search's
// and its typed condition's, both. A typed condition that is wrong is
// its error, checked on its own so that the position points into what
// the user typed.
func (s *Server) listCondition(ctx context.Context, query, cond string, mayReveal bool) (string, error) {
	var conds []string
	if c := searchCondition(query); c != "" {
		conds = append(conds, c)
	}
	if strings.TrimSpace(cond) != "" {
		if _, err := s.Contacts.Condition(ctx, cond, mayReveal); err != nil {
			return "", err
		}
		conds = append(conds, "("+cond+")")
	}
	return strings.Join(conds, " && "), nil
}

// showContactList renders the page of the contact list p asks for (its
// search, condition and page), with the export's columns; status is not
// 200 when the export of the list was refused (p.ExportErrors).
func (s *Server) showContactList(w http.ResponseWriter, r *http.Request, u *auth.User, p listPage, status int) {
	ctx := r.Context()
	cond, err := s.listCondition(ctx, p.Query, p.Filter, mayLookUp(r, u))
	if e := errs.As(err); e != nil {
		p.FilterError = e.Message
		if e.Position > 0 {
			p.Caret = strings.Repeat(" ", e.Position-1) + "^"
		}
		s.render(w, http.StatusBadRequest, "contacts", page{Title: "Contacts", User: u, Nav: "contacts", Data: p})
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	contacts, next, total, err := s.Contacts.ListCounted(ctx, contact.ListQuery{Limit: 50, After: p.After,
		Filter: cond, Asker: contact.Asker{Actor: actor(u), MayReveal: mayLookUp(r, u), IP: s.clientIP(r)}})
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
	if p.Columns, err = s.Export.ListColumns(ctx); err != nil {
		s.fail(w, err, u)
		return
	}
	p.Contacts, p.Next, p.Total = contacts, next, total
	s.render(w, status, "contacts", page{Title: "Contacts", User: u, Nav: "contacts", Errors: p.ExportErrors, Data: p})
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
	// Erased are the fields erased and locked because the contact withdrew
	// consent to storing them (R8), with when they withdrew it.
	Erased map[string]time.Time
	// EditOpen opens the edit form: an error is about one of its fields.
	EditOpen bool
	Requests []*requests.Request // the contact's data subject requests, for a user who handles them
	// Back is the contact list as the user left it (search, condition,
	// page), and Filtered whether it was narrowed by a search or condition.
	Back     string
	Filtered bool
	// Posted is the form on the record whose post was refused ("edit",
	// "consents", "opt-in", "reveal/FIELD"), and Form what was typed in
	// it, which the form shows again; "" and nil on a plain visit.
	Posted string
	Form   url.Values
}

// Typed is what was typed in field name of form when its post was
// refused, else stored: a refused form shows what was typed.
func (p recordPage) Typed(form, name, stored string) string {
	if p.Posted == form && p.Form != nil {
		return p.Form.Get(name)
	}
	return stored
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
var contactDone = map[string]string{"created": "Contact created.", "saved": "Saved.", "consent": "Consent recorded.", "optin": "Opt-in status changed.",
	"invited": "Double opt-in email queued.", "shown_once": "That value was shown once. To see it again, reveal it again with a reason."}

// notInvited starts the done key of a double opt-in email not sent,
// followed by the reason.
const notInvited = "not_invited:"

// contactNotice is the notice for a done key; "" for none or an unknown
// one.
func contactNotice(done string) string {
	if reason, ok := strings.CutPrefix(done, notInvited); ok && reason != "" && len(reason) <= 40 &&
		strings.Trim(reason, "abcdefghijklmnopqrstuvwxyz_") == "" {
		return "No email sent: " + skipLabel(reason) + "."
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
	p := recordPage{Contact: c, Revealed: revealed, Locked: c.ProcessingStoppedAt != nil, Back: "/admin/contacts"}
	if r.Method == http.MethodPost {
		p.Posted = strings.Trim(strings.TrimPrefix(r.URL.Path, "/admin/contacts/"+id), "/")
		if p.Posted == "" {
			p.Posted = "edit"
		}
		p.Form = r.PostForm
	}
	if q := listBack(r); q != "" {
		p.Back += "?" + q
		v, _ := url.ParseQuery(q) // listBack encoded it
		p.Filtered = v.Get("q") != "" || v.Get("filter") != ""
	}
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
	p.Erased = contact.StorageLocks(p.Fields, current)
	for k := range fieldErrs {
		// A reveal's reason has its own form.
		p.EditOpen = p.EditOpen || !strings.HasPrefix(k, "reason.")
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
	standing, err := s.OptIn.ReadStanding(ctx, id)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	p.NoInvite = optin.WhyNot(standing)
	if p.Lists, err = lists.Subscriptions(ctx, s.DB.Read, id); err != nil {
		s.fail(w, err, u)
		return
	}
	if p.Purposes, p.Sources, err = s.consentChoices(ctx); err != nil {
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

// consentChoices returns the purposes and sources a consent form offers.
func (s *Server) consentChoices(ctx context.Context) ([]*consent.Purpose, []*consent.Source, error) {
	ps, err := s.Consent.Purposes(ctx)
	if err != nil {
		return nil, nil, err
	}
	srcs, err := s.Consent.Sources(ctx)
	return ps, srcs, err
}

// newContactForm is the new contact page: the fields, the starting opt-in
// status and a consent line per purpose.
type newContactForm struct {
	Fields   []*contact.FieldDefinition
	Purposes []*consent.Purpose
	Sources  []*consent.Source
	// OptIn are the statuses a user may start a contact at (R5, R6).
	OptIn []string
	// Form is what was posted when it was refused, shown again; nil on a
	// fresh page.
	Form url.Values
}

func (s *Server) newContactPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.showNewContact(w, r, u, http.StatusOK, nil, nil)
}

func (s *Server) showNewContact(w http.ResponseWriter, r *http.Request, u *auth.User, status int, fe map[string]string, form url.Values) {
	ctx := r.Context()
	p := newContactForm{OptIn: consent.StatusesThrough(consent.ChannelUserCreate), Form: form}
	var err error
	if p.Fields, err = s.Contacts.Fields(ctx); err != nil {
		s.fail(w, err, u)
		return
	}
	if p.Purposes, p.Sources, err = s.consentChoices(ctx); err != nil {
		s.fail(w, err, u)
		return
	}
	s.render(w, status, "contact_new", page{Title: "New contact", User: u, Nav: "contacts", Errors: fe, Data: p})
}

// consentKey is the form name of a part of a purpose's consent line on
// the new contact page.
func consentKey(purposeID, part string) string { return "consent." + purposeID + "." + part }

// initialConsents reads the consent lines of the new contact page: one
// record for each purpose given a state, in the order of purposes, with
// the purpose id of each, to name a refused one's fields as the form does.
func initialConsents(f url.Values, purposes []*consent.Purpose, by consent.Actor, ev consent.Evidence) ([]consent.RecordInput, []string) {
	var ins []consent.RecordInput
	var ids []string
	for _, p := range purposes {
		state := f.Get(consentKey(p.ID, "state"))
		if state == "" {
			continue // not recorded
		}
		// The legal basis is the purpose's own (consent.Purpose.AllowsLegalBasis),
		// which a record without one takes.
		ins = append(ins, consent.RecordInput{Purpose: p.ID, State: state, Source: f.Get(consentKey(p.ID, "source")),
			Actor: by, Evidence: ev})
		ids = append(ids, p.ID)
	}
	return ins, ids
}

// consentFormField names the field of a refused consent, consents[i].part
// as the contact package names it, as the form does; any other field as it
// is.
func consentFormField(field string, ids []string) string {
	rest, ok := strings.CutPrefix(field, "consents[")
	if !ok {
		return field
	}
	n, part, _ := strings.Cut(rest, "]")
	i, err := strconv.Atoi(n)
	if err != nil || i < 0 || i >= len(ids) {
		return field
	}
	// The line shows its source; anything else about the consent (its
	// purpose, the state, the evidence) is said at its state.
	part = strings.TrimPrefix(part, ".")
	if part != "source" {
		part = "state"
	}
	return consentKey(ids[i], part)
}

// createContact creates a contact with its starting opt-in status and
// consents in one transaction (contact.Service.Create, as the API does),
// and goes to the new record; a refusal writes nothing and shows the form
// again as typed, with the error next to its field.
func (s *Server) createContact(w http.ResponseWriter, r *http.Request, u *auth.User) {
	defs, err := s.Contacts.Fields(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	purposes, err := s.Consent.Purposes(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	if !s.parse(w, r, u) {
		return
	}
	ev := consent.Evidence{Method: consent.MethodEnteredByUser, IP: s.clientIP(r)}
	nc := contact.NewContact{Input: contactInput(r, defs), Actor: actor(u), Evidence: ev}
	if st := r.PostForm.Get("opt_in_status"); st != contactstate.OptInNone {
		nc.OptInStatus = st
	}
	var ids []string
	nc.Consents, ids = initialConsents(r.PostForm, purposes, actor(u), ev)
	c, err := s.Contacts.Create(r.Context(), nc)
	if err != nil {
		e := errs.As(err)
		if e == nil || e.Kind == errs.KindNotFound && e.Field == "" {
			s.fail(w, err, u)
			return
		}
		field := consentFormField(e.Field, ids)
		if field == "" {
			field = "form"
		}
		s.showNewContact(w, r, u, httpx.Status(err), map[string]string{field: e.Message}, r.PostForm)
		return
	}
	http.Redirect(w, r, "/admin/contacts/"+url.PathEscape(c.ID)+"?done=created", http.StatusSeeOther)
}

func (s *Server) updateContact(w http.ResponseWriter, r *http.Request, u *auth.User) {
	defs, err := s.Contacts.Fields(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	if !s.parse(w, r, u) {
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
		to := "/admin/contacts/" + url.PathEscape(r.PathValue("id")) + "?done=" + url.QueryEscape(done)
		if back := listBack(r); back != "" {
			to += "&list=" + url.QueryEscape(back)
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
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
	if !s.parse(w, r, u) {
		return
	}
	_, err := s.Consent.Record(r.Context(), r.PathValue("id"), consent.RecordInput{Purpose: r.PostForm.Get("purpose"),
		State: r.PostForm.Get("state"), Source: r.PostForm.Get("source"), Actor: actor(u),
		Evidence: consent.Evidence{Method: consent.MethodEnteredByUser, IP: s.clientIP(r)}})
	s.afterAction(w, r, u, err, "consent")
}

func (s *Server) setOptIn(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
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

// revealSubject is what a reveal's one-time grant is about: one field of
// one contact.
func revealSubject(contactID, field string) string { return "reveal " + contactID + " " + field }

// askReveal takes the reason for revealing a sensitive value and
// redirects to the page that shows it once (showRevealed), through a
// one-time grant that carries the reason: the post shows nothing, so
// reloading a page never reveals, nor logs, a value again.
func (s *Server) askReveal(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	id, field := r.PathValue("id"), r.PathValue("field")
	reason := r.PostForm.Get("reason")
	// The admin UI always asks why; the API may not (contact.CheckRevealReason).
	if err := errs.TrimLine("reason", &reason, contact.MaxRevealReason); err != nil {
		s.showContact(w, r, u, http.StatusBadRequest, "", map[string]string{"reason." + field: errs.As(err).Message}, nil)
		return
	}
	if err := s.Contacts.CheckRevealable(r.Context(), field); err != nil {
		s.afterAction(w, r, u, err, "")
		return
	}
	if _, err := s.Contacts.Get(r.Context(), id); err != nil {
		s.fail(w, err, u)
		return
	}
	grant, err := s.grants.Issue(r.Context(), u.ID, revealSubject(id, field), reason)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/contacts/"+url.PathEscape(id)+"/reveal/"+url.PathEscape(field)+"/"+grant, http.StatusSeeOther)
}

// showRevealed shows a sensitive value once: it claims the grant that
// askReveal made, in the transaction that decrypts the value and writes
// the access-log entry with the reason. Once claimed (a reload, the
// address used again), it goes back to the record and says so.
func (s *Server) showRevealed(w http.ResponseWriter, r *http.Request, u *auth.User) {
	id, field, grant := r.PathValue("id"), r.PathValue("field"), r.PathValue("grant")
	v, err := s.Contacts.RevealFor(r.Context(), contact.RevealRequest{ContactID: id, Field: field, Actor: actor(u), IP: s.clientIP(r),
		Claim: func(tx *store.Tx) (string, error) { return s.grants.ClaimTx(tx, grant, u.ID, revealSubject(id, field)) }})
	if errors.Is(err, auth.ErrNoGrant) {
		http.Redirect(w, r, "/admin/contacts/"+url.PathEscape(id)+"?done=shown_once", http.StatusSeeOther)
		return
	}
	if err != nil {
		s.afterAction(w, r, u, err, "")
		return
	}
	label := field
	if d, err := s.Contacts.Field(r.Context(), field); err == nil {
		label = d.Label
	}
	s.showContact(w, r, u, http.StatusOK, "Revealed "+label+", shown this once; the reveal is in the access log with your reason.", nil, map[string]string{field: v})
}

func (s *Server) deleteContact(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	if r.PostForm.Get("confirm") != "yes" {
		s.afterAction(w, r, u, errs.Invalid("confirm", "tick the box to confirm the deletion"), "")
		return
	}
	if err := s.Erasure.Delete(r.Context(), r.PathValue("id"), actor(u)); err != nil {
		s.afterAction(w, r, u, err, "")
		return
	}
	http.Redirect(w, r, "/admin/contacts", http.StatusSeeOther)
}
