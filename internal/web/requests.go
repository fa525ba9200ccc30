package web

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/requests"
)

func (s *Server) requestRoutes() {
	req := func(h handler) http.HandlerFunc { return s.need(auth.PermRequests, h) }
	s.mux.HandleFunc("GET /admin/requests", req(s.requestsPage))
	s.mux.HandleFunc("GET /admin/requests/new", req(s.newRequestPage))
	s.post("/admin/requests", textForm, req(s.createRequest))
	s.mux.HandleFunc("GET /admin/requests/{id}", req(s.requestPage))
	s.post("/admin/requests/{id}/{action}", textForm, req(s.changeRequest))
}

// requestDone are the notices shown after a form on a request succeeded
// and redirected, by the done= the redirect carries.
var requestDone = map[string]string{"created": "Request recorded.", "status": "Status changed.", "note": "Note saved.",
	"extend": "Due date extended.", "contact": "Linked to the contact."}

// requestsView is the Requests page: the open requests, overdue ones
// first, then the latest closed ones, both narrowed by kind and status.
type requestsView struct {
	Kind, Status string
	Kinds        []string
	Statuses     []string
	Open, Closed []*requests.Request
	Total        listTotal // of either, with the kind and status chosen
}

func (s *Server) requestsPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	v := r.URL.Query()
	p := requestsView{Kind: v.Get("kind"), Status: v.Get("status"), Kinds: requests.Kinds, Statuses: requests.Statuses}
	q := requests.Query{Kind: p.Kind, Status: p.Status, Open: true, Limit: 500}
	var err error
	if p.Open, err = s.Requests.List(r.Context(), q); err == nil {
		q.Open, q.Closed, q.Limit = false, true, 50
		p.Closed, err = s.Requests.List(r.Context(), q)
	}
	if err == nil {
		p.Total = listTotal{ID: "requests-total", One: "request", Many: "requests", Shown: len(p.Open) + len(p.Closed)}
		p.Total.Total, err = s.Requests.Count(r.Context(), requests.Query{Kind: p.Kind, Status: p.Status})
		p.Total.Paged = int64(p.Total.Shown) < p.Total.Total
	}
	if fe := fieldErrors(err); fe != nil {
		s.render(w, httpx.Status(err), "requests", page{Title: "Requests", User: u, Nav: "requests", Errors: fe,
			Data: requestsView{Kinds: requests.Kinds, Statuses: requests.Statuses}})
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.render(w, http.StatusOK, "requests", page{Title: "Requests", User: u, Nav: "requests", Data: p})
}

// requestView is one request's page.
type requestView struct {
	Request *requests.Request
	Contact *contact.Contact // the contact it is about, or one found with its address
	Actors  map[string]string
	// Statuses are those it may move to now.
	Statuses []string
	Form     url.Values // what was posted, shown again with an error
}

func (s *Server) requestPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.showRequest(w, r, u, http.StatusOK, requestDone[r.URL.Query().Get("done")], nil)
}

func (s *Server) showRequest(w http.ResponseWriter, r *http.Request, u *auth.User, status int, flash string, fe map[string]string) {
	ctx := r.Context()
	req, err := s.Requests.Get(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, err, u)
		return
	}
	p := requestView{Request: req, Form: r.PostForm}
	switch {
	case req.ContactID != "":
		if p.Contact, err = s.Contacts.Get(ctx, req.ContactID); errs.Is(err, errs.KindNotFound) {
			err = nil // deleted since: the request stays, without its contact
		}
	case req.Address != "":
		p.Contact, err = s.contactByEmail(ctx, u, req.Address)
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	if p.Actors, err = s.actorNames(ctx); err != nil {
		s.fail(w, err, u)
		return
	}
	for _, st := range requests.Statuses {
		if st != requests.StatusReceived && st != req.Status {
			p.Statuses = append(p.Statuses, st)
		}
	}
	s.render(w, status, "request", page{Title: "Request: " + requestKindLabel(req.Kind), User: u, Nav: "requests", Flash: flash, Errors: fe, Data: p})
}

// contactByEmail returns the contact with this address, or nil when none
// has it.
func (s *Server) contactByEmail(ctx context.Context, u *auth.User, email string) (*contact.Contact, error) {
	found, _, err := s.Contacts.List(ctx, contact.ListQuery{Email: email, Limit: 1, Asker: contact.Asker{Actor: actor(u)}})
	if err != nil || len(found) == 0 {
		return nil, err
	}
	return found[0], nil
}

// changeRequest handles the forms of a request's page, one per action,
// and redirects back to it; an error is shown next to its field.
func (s *Server) changeRequest(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	f := r.PostForm
	var c requests.Change
	action := r.PathValue("action")
	switch action {
	case "status":
		c.Status, c.Reason = formText(f, "status"), formText(f, "reason")
		if c.Reason != nil && *c.Reason == "" {
			c.Reason = nil // an empty reason box keeps the reason recorded
		}
	case "note":
		c.Note = formText(f, "note")
	case "extend":
		months, _ := strconv.Atoi(f.Get("months")) // anything but 1 or 2 is refused by name
		c.Extend = &requests.Extension{Months: months, Reason: f.Get("extend_reason")}
	case "contact":
		id, err := s.contactRef(r.Context(), u, f.Get("contact"))
		if err != nil {
			s.showRequest(w, r, u, httpx.Status(err), "", fieldErrors(err))
			return
		}
		c.ContactID = &id
	default:
		http.NotFound(w, r)
		return
	}
	if _, err := s.Requests.Update(r.Context(), r.PathValue("id"), c, actor(u)); err != nil {
		if e := errs.As(err); e == nil || e.Field == "" {
			s.fail(w, err, u)
			return
		}
		fe := requestFieldErrors(err)
		if e := errs.As(err); e.Kind == errs.KindConflict {
			fe = map[string]string{"form": e.Message} // its form is gone from the page (closed, or extended)
		}
		s.showRequest(w, r, u, httpx.Status(err), "", fe)
		return
	}
	http.Redirect(w, r, "/admin/requests/"+url.PathEscape(r.PathValue("id"))+"?done="+action, http.StatusSeeOther)
}

// requestFieldErrors places a domain error next to the form field that
// holds it.
func requestFieldErrors(err error) map[string]string {
	fe := fieldErrors(err)
	for from, to := range map[string]string{"extend.months": "months", "extend.reason": "extend_reason", "contact_id": "contact"} {
		if msg, ok := fe[from]; ok {
			delete(fe, from)
			fe[to] = msg
		}
	}
	return fe
}

// contactRef reads the contact a user names to link a request to: its id,
// or an address that a contact has.
func (s *Server) contactRef(ctx context.Context, u *auth.User, ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return "", errs.Required("contact")
	}
	if !strings.Contains(ref, "@") {
		return ref, nil
	}
	c, err := s.contactByEmail(ctx, u, ref)
	if err != nil {
		return "", err
	}
	if c == nil {
		return "", errs.Invalid("contact", "no contact has this address")
	}
	return c.ID, nil
}

func (s *Server) newRequestPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.render(w, http.StatusOK, "request_new", page{Title: "New request", User: u, Nav: "requests",
		Data: map[string]any{"Kinds": requests.Kinds, "Form": url.Values{"contact": {r.URL.Query().Get("contact")}}}})
}

// createRequest records a request a user received by phone, letter or in
// person, as verified: the user checked who asked.
func (s *Server) createRequest(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	f := r.PostForm
	in := requests.New{Kind: f.Get("kind"), Channel: requests.ChannelUser, Note: f.Get("note"), Verified: true, Actor: actor(u)}
	ref := strings.TrimSpace(f.Get("contact"))
	id, err := s.contactRef(r.Context(), u, ref)
	switch {
	case err == nil:
		in.ContactID = id
	case strings.Contains(ref, "@") && errs.Is(err, errs.KindInvalid):
		in.Address, err = ref, nil // an address no contact has: the request is about the address
	}
	var req *requests.Request
	if err == nil {
		req, err = s.Requests.Create(r.Context(), in)
	}
	if err != nil {
		if fe := requestFieldErrors(err); fe != nil {
			if msg := fe["address"]; msg != "" {
				fe["contact"] = msg
			}
			s.render(w, httpx.Status(err), "request_new", page{Title: "New request", User: u, Nav: "requests", Errors: fe,
				Data: map[string]any{"Kinds": requests.Kinds, "Form": f}})
			return
		}
		s.fail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/requests/"+req.ID+"?done=created", http.StatusSeeOther)
}

var requestKindLabels = map[string]string{requests.KindAccess: "Access", requests.KindErasure: "Erasure",
	requests.KindRectification: "Rectification", requests.KindRestriction: "Restriction of processing", requests.KindObjection: "Objection"}

var requestStatusLabels = map[string]string{requests.StatusReceived: "Received (not yet verified)", requests.StatusVerified: "Verified",
	requests.StatusInProgress: "In progress", requests.StatusDone: "Done", requests.StatusRefused: "Refused", requests.StatusPartlyDone: "Partly done"}

var requestChannelLabels = map[string]string{requests.ChannelPreferences: "Preferences page", requests.ChannelEmail: "Email",
	requests.ChannelAPI: "API", requests.ChannelUser: "Entered by a user"}

func requestKindLabel(k string) string { return labelOr(requestKindLabels, k) }

func labelOr(labels map[string]string, k string) string {
	if l, ok := labels[k]; ok {
		return l
	}
	return k
}

// fulfilment is where on the contact's record the work that fulfils a
// request of a kind is done.
type fulfilment struct{ Href, Label string }

var fulfilments = map[string]fulfilment{
	requests.KindAccess:        {"#export", "Export their data"},
	requests.KindErasure:       {"/erasure", "Erase their data, or see the legal holds"},
	requests.KindRectification: {"#fields-h", "Correct their fields"},
	requests.KindRestriction:   {"#consents", "Review their consents and processing"},
	requests.KindObjection:     {"#consents", "Withdraw the consents they object to"},
}

// daysLeft says how long a request has, in words, never by colour alone.
func daysLeft(r *requests.Request) string {
	switch {
	case r.ClosedAt != nil:
		return "closed"
	case r.Overdue && r.DaysLeft == -1:
		return "overdue by 1 day"
	case r.Overdue:
		return "overdue by " + strconv.Itoa(-r.DaysLeft) + " days"
	case r.DaysLeft == 0:
		return "due within a day"
	case r.DaysLeft == 1:
		return "1 day left"
	}
	return strconv.Itoa(r.DaysLeft) + " days left"
}

func init() {
	funcs["requestKind"] = requestKindLabel
	funcs["requestStatus"] = func(s string) string { return labelOr(requestStatusLabels, s) }
	funcs["requestChannel"] = func(c string) string { return labelOr(requestChannelLabels, c) }
	funcs["daysLeft"] = daysLeft
	funcs["contains"] = func(list []string, v string) bool { return slices.Contains(list, v) }
	funcs["fulfil"] = func(kind, contactID string) fulfilment {
		f := fulfilments[kind]
		f.Href = "/admin/contacts/" + url.PathEscape(contactID) + f.Href
		return f
	}
}
