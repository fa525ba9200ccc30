package public

import (
	"net/http"
	"net/url"

	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/inbound"
)

// The pages of a request emailed to the privacy address (R19): the link
// emailed back to the sender shows a button, and only posting it confirms,
// so that a mail scanner following the link confirms nothing. The pages
// are the same whether the address is a contact's or not, and a link that
// does not work gets the one page every such link gets (gone).

// inboundRoutes adds the confirmation pages and parses their templates.
func (s *Server) inboundRoutes() error {
	t, err := parsePage("request_confirm")
	if err != nil {
		return err
	}
	s.pages["request_confirm"] = t
	s.mux.HandleFunc("GET /r/{token}", s.requestConfirmPage)
	s.mux.HandleFunc("POST /r/{token}", s.requestConfirm)
	s.mux.HandleFunc("GET /r/confirmed", s.requestConfirmed)
	return nil
}

func (s *Server) requestConfirmPage(w http.ResponseWriter, r *http.Request) {
	l := lang(r, "")
	ok := false
	if s.Inbound != nil {
		var err error
		if ok, err = s.Inbound.Pending(r.Context(), r.PathValue("token")); err != nil {
			s.fault(w, r, "read request confirmation", err, i18n.T(l, "prefs.error"))
			return
		}
	}
	if !ok {
		s.gone(w, r)
		return
	}
	s.render(w, r, http.StatusOK, "request_confirm", map[string]any{"Lang": l, "Title": i18n.T(l, "page.request.title")})
}

// requestConfirm confirms and redirects (post/redirect/get) to the page
// that says so, so that reloading it posts nothing again; a link unknown,
// used or expired alike redirects to /p/link-invalid, as every
// confirmation post does.
func (s *Server) requestConfirm(w http.ResponseWriter, r *http.Request) {
	l := lang(r, "")
	err := inbound.ErrNotConfirmed
	if s.Inbound != nil {
		err = s.Inbound.Confirm(r.Context(), r.PathValue("token"))
	}
	if err != nil {
		s.confirmFailed(w, r, "confirm request", err, inbound.ErrNotConfirmed)
		return
	}
	http.Redirect(w, r, "/r/confirmed?"+url.Values{"lang": {l}}.Encode(), http.StatusSeeOther)
}

func (s *Server) requestConfirmed(w http.ResponseWriter, r *http.Request) {
	l := lang(r, "")
	s.render(w, r, http.StatusOK, "message", map[string]any{"Lang": l, "Title": i18n.T(l, "page.request_done.title"),
		"Text": i18n.T(l, "page.request_done.text")})
}
