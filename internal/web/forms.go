package web

import (
	"net/http"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
)

// The bodies of the admin forms are bounded when their route is
// registered (post), each by what its form carries, so that none is read
// past what it needs, nor refused for want of room: a limit of its own
// for a file (an import, the logo) or a campaign's bodies, and else one
// of these.
const (
	// smallForm: a button, or a few fields of one line (a name, a
	// status, an address, a reason of a few hundred characters).
	smallForm = 16 << 10
	// textForm: texts of up to a few thousand characters (a hold's
	// reason, a list's description, a request's note, the settings).
	textForm = 64 << 10
	// longForm: a consent text of up to 10,000 characters with its
	// description, a webform, a workflow rule, a condition, an import's
	// mapping.
	longForm = 256 << 10
	// contactForm: the contact record, every custom field of up to
	// 10,000 characters included; the API takes as much for a contact.
	contactForm = 1 << 20
)

// post serves h for POST requests to pattern, its body bounded at limit
// before anything reads it: a form over it is refused 413 (parse) and
// nothing of it is used. Every admin form post is registered so.
func (s *Server) post(pattern string, limit int64, h http.HandlerFunc) {
	s.mux.HandleFunc("POST "+pattern, func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		h(w, r)
	})
}

// parse reads the posted form (bounded by post) and reports whether it
// could; when not, it has answered with the page that says why (unreadable).
func (s *Server) parse(w http.ResponseWriter, r *http.Request, u *auth.User) bool {
	if err := r.ParseForm(); err != nil {
		s.unreadable(w, err, u)
		return false
	}
	return true
}

// unreadable answers a form that could not be read, with the admin's
// message page: 413, naming the limit, for one over its limit, 400 for
// anything else. Nothing of the form was used.
func (s *Server) unreadable(w http.ResponseWriter, err error, u *auth.User) {
	status, title, msg := formError(err)
	s.render(w, status, "message", page{Title: title, User: u, Data: msg})
}

// formError is the status, title and message that answer a form that
// could not be read because of err.
func formError(err error) (status int, title, msg string) {
	if limit, over := httpx.OverLimit(err); over {
		return http.StatusRequestEntityTooLarge, "Too much data",
			"The form sent more than " + errs.Size(limit) + ", the most it may send, so nothing was saved. Shorten what you entered and try again."
	}
	return http.StatusBadRequest, "Not done", "The form could not be read, so nothing was saved."
}
