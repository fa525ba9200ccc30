package web

import (
	"context"
	"net/http"
	"net/url"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/lists"
)

// Lists are the audiences of campaigns, so those who keep campaigns keep
// them.
func (s *Server) listRoutes() {
	l := func(h handler) http.HandlerFunc { return s.need(auth.PermCampaigns, h) }
	s.mux.HandleFunc("GET /admin/lists", l(s.listsPage))
	s.post("/admin/lists", textForm, l(s.saveList))
	s.mux.HandleFunc("GET /admin/lists/{id}", l(s.listPage))
	s.post("/admin/lists/{id}", textForm, l(s.saveList))
	s.post("/admin/lists/{id}/delete", smallForm, l(s.deleteList))
}

// listDone are the notices shown after a list form succeeded and
// redirected, by the done= the redirect carries.
var listDone = map[string]string{"created": "List created.", "saved": "List saved.", "deleted": "List deleted."}

// listRow is a list with how many contacts are subscribed to it.
type listRow struct {
	*lists.List
	Subscribers int64
}

func (s *Server) listsPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.showLists(w, r, u, http.StatusOK, url.Values{"public": {"on"}}, nil)
}

// showLists renders the lists with their subscriber counts, and the form
// of a new list holding f.
func (s *Server) showLists(w http.ResponseWriter, r *http.Request, u *auth.User, status int, f url.Values, fe map[string]string) {
	all, err := s.Lists.All(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	counts, err := s.Lists.SubscriberCounts(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	rows := make([]listRow, len(all))
	for i, l := range all {
		rows[i] = listRow{l, counts[l.ID]}
	}
	purposes, err := s.purposeNames(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.render(w, status, "lists", page{Title: "Lists", User: u, Nav: "lists", Errors: fe,
		Flash: listDone[r.URL.Query().Get("done")], Data: map[string]any{"Lists": rows, "Form": f, "Purposes": purposes}})
}

func (s *Server) listPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	l, err := s.Lists.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, err, u)
		return
	}
	f := url.Values{"name": {l.Name}, "description": {l.Description}, "purpose": {l.Purpose}}
	if l.Public {
		f.Set("public", "on")
	}
	s.showList(w, r, u, http.StatusOK, l, f, nil)
}

func (s *Server) showList(w http.ResponseWriter, r *http.Request, u *auth.User, status int, l *lists.List, f url.Values, fe map[string]string) {
	purposes, err := s.purposeNames(r.Context())
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.render(w, status, "list", page{Title: "List: " + l.Name, User: u, Nav: "lists", Errors: fe,
		Data: map[string]any{"List": l, "Form": f, "Purposes": purposes}})
}

// purposeNames are the names of the purposes a list can be bound to.
func (s *Server) purposeNames(ctx context.Context) ([]string, error) {
	ps, err := s.Consent.Purposes(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return names, nil
}

// saveList creates a list (no id in the path) or changes one, and
// redirects to the lists; an error shows the form again with what was
// typed, next to its field.
func (s *Server) saveList(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	f := r.PostForm
	in := lists.Input{Name: formText(f, "name"), Description: formText(f, "description"), Public: formBool(f, "public"), Purpose: formText(f, "purpose")}
	done := "created"
	var err error
	id := r.PathValue("id")
	if id == "" {
		_, err = s.Lists.Create(r.Context(), audit.Actor(actor(u)), in)
	} else {
		done = "saved"
		_, err = s.Lists.Update(r.Context(), audit.Actor(actor(u)), id, in)
	}
	if e := errs.As(err); e != nil && !(e.Kind == errs.KindNotFound && e.Field == "list") {
		if id == "" {
			s.showLists(w, r, u, httpx.Status(err), f, fieldErrors(err))
			return
		}
		l, gerr := s.Lists.Get(r.Context(), id)
		if gerr != nil {
			s.fail(w, gerr, u)
			return
		}
		s.showList(w, r, u, httpx.Status(err), l, f, fieldErrors(err))
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/lists?done="+done, http.StatusSeeOther)
}

// deleteList removes a list and every subscription to it.
func (s *Server) deleteList(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if err := s.Lists.Delete(r.Context(), audit.Actor(actor(u)), r.PathValue("id")); err != nil {
		s.fail(w, err, u)
		return
	}
	http.Redirect(w, r, "/admin/lists?done=deleted", http.StatusSeeOther)
}
