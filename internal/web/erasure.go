package web

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/erasure"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/holds"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/suppression"
)

func (s *Server) erasureRoutes() {
	s.mux.HandleFunc("GET /admin/contacts/{id}/erasure", s.need(auth.PermViewContacts, s.erasurePage))
	s.post("/admin/contacts/{id}/erase", textForm, s.need(auth.PermDelete, s.eraseContact))
	s.post("/admin/contacts/{id}/holds", textForm, s.need(auth.PermDelete, s.setHold))
	s.post("/admin/contacts/{id}/holds/{hold}/lift", textForm, s.need(auth.PermDelete, s.liftHold))
}

// erasurePageData is the page "Erasure and legal holds" of a contact.
type erasurePageData struct {
	Contact  *contact.Contact
	Holds    []*holds.Hold
	Active   *holds.Hold // the first active hold, if any
	Log      []suppression.Entry
	Requests []*requests.Request // the contact's open erasure requests
	Bases    []string
	Actors   map[string]string
	Form     map[string]string // what was posted, shown again after an error
}

// erasureNotices are what the page says after each action; the redirect
// names one, so that no text of the user's travels in the address.
var erasureNotices = map[string]string{
	erasure.StatusErased:        "The contact's personal data was erased. The non-identifying remainder and the proof of consent stay.",
	erasure.StatusAlreadyErased: "The contact's personal data was already erased.",
	erasure.StatusPartlyErased:  "A legal hold is active: what it does not need was erased, and marketing email stops. The rest is erased when the hold ends.",
	"hold_set":                  "Legal hold set.",
	"hold_lifted":               "Legal hold lifted.",
}

func (s *Server) erasurePage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.showErasure(w, r, u, http.StatusOK, erasureNotices[r.URL.Query().Get("done")], nil)
}

// showErasure renders the page with a notice, or with the error of a form
// next to its field.
func (s *Server) showErasure(w http.ResponseWriter, r *http.Request, u *auth.User, status int, flash string, failed error) {
	ctx := r.Context()
	id := r.PathValue("id")
	c, err := s.Contacts.Get(ctx, id)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	d := erasurePageData{Contact: c, Bases: holds.Bases, Form: map[string]string{}}
	if d.Holds, err = s.Erasure.Holds(ctx, id); err != nil {
		s.fail(w, err, u)
		return
	}
	for _, h := range d.Holds {
		if h.Active && d.Active == nil {
			d.Active = h
		}
	}
	if d.Log, err = suppression.Log(ctx, s.DB.Read, id); err != nil {
		s.fail(w, err, u)
		return
	}
	if d.Requests, err = requests.List(ctx, s.DB.Read, requests.Query{ContactID: id, Kind: requests.KindErasure, Open: true}, time.Now()); err != nil {
		s.fail(w, err, u)
		return
	}
	if d.Actors, err = s.actorNames(ctx); err != nil {
		s.fail(w, err, u)
		return
	}
	if r.Method == http.MethodPost {
		for k := range r.PostForm {
			d.Form[k] = r.PostForm.Get(k)
		}
	}
	s.render(w, status, "erasure", page{Title: "Erasure and legal holds: " + contactLabel(c), User: u, Nav: "contacts", Flash: flash,
		Errors: fieldErrors(failed), Data: d})
}

// contactLabel names a contact in a title: their name, else their address.
func contactLabel(c *contact.Contact) string {
	if name := strings.TrimSpace(c.FirstName + " " + c.LastName); name != "" {
		return name
	}
	return c.Email
}

// afterErasureForm redirects to the page with the notice named done, or
// shows the page again with the error.
func (s *Server) afterErasureForm(w http.ResponseWriter, r *http.Request, u *auth.User, err error, done string) {
	if err == nil {
		http.Redirect(w, r, "/admin/contacts/"+url.PathEscape(r.PathValue("id"))+"/erasure?done="+url.QueryEscape(done), http.StatusSeeOther)
		return
	}
	if e := errs.As(err); e == nil || e.Kind == errs.KindNotFound && e.Field == "" {
		s.fail(w, err, u)
		return
	}
	s.showErasure(w, r, u, httpx.Status(err), "", err)
}

func (s *Server) eraseContact(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	if r.PostForm.Get("confirm") != "yes" {
		s.afterErasureForm(w, r, u, errs.Invalid("confirm", "tick the box to confirm the erasure"), "")
		return
	}
	out, err := s.Erasure.Erase(r.Context(), r.PathValue("id"), erasure.Why{Actor: actor(u), RequestID: r.PostForm.Get("request_id"),
		Note: r.PostForm.Get("note")})
	if err != nil {
		s.afterErasureForm(w, r, u, err, "")
		return
	}
	s.afterErasureForm(w, r, u, nil, out.Status)
}

func (s *Server) setHold(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	in := holds.New{Reason: r.PostForm.Get("reason"), LegalBasis: r.PostForm.Get("legal_basis")}
	if v := r.PostForm.Get("until"); v != "" {
		day, err := time.Parse(time.DateOnly, v)
		if err != nil {
			s.afterErasureForm(w, r, u, errs.Invalid("until", "must be a date, such as 2027-12-31"), "")
			return
		}
		end := day.AddDate(0, 0, 1) // the hold lasts through the day named
		in.Until = &end
	}
	_, err := s.Erasure.SetHold(r.Context(), r.PathValue("id"), in, actor(u))
	s.afterErasureForm(w, r, u, err, "hold_set")
}

func (s *Server) liftHold(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	_, out, err := s.Erasure.LiftHold(r.Context(), r.PathValue("id"), r.PathValue("hold"), r.PostForm.Get("lift_reason"), actor(u))
	if err != nil {
		// The lift form's reason is named lift_reason, apart from the
		// hold form's reason.
		if e := errs.As(err); e != nil && e.Field == "reason" {
			err = errs.WithField(err, errs.Field("lift_reason"))
		}
		s.afterErasureForm(w, r, u, err, "")
		return
	}
	done := "hold_lifted"
	if out != nil {
		done = out.Status
	}
	s.afterErasureForm(w, r, u, nil, done)
}

// holdBasisLabels names every legal basis of a hold (holds.Bases).
var holdBasisLabels = map[string]string{holds.BasisLegalObligation: "Legal obligation (such as bookkeeping)",
	holds.BasisLegalClaims: "Legal claims (a dispute)", holds.BasisContract: "Contract still being performed"}

func holdBasisLabel(b string) string {
	if l, ok := holdBasisLabels[b]; ok {
		return l
	}
	return b
}
