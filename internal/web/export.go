package web

import (
	"net/http"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/export"
	"github.com/consentry/consentry/internal/httpx"
)

func (s *Server) exportRoutes() {
	// A post, not a link: the download writes to the access log in the
	// user's name, which no other site may make their browser do.
	s.mux.HandleFunc("POST /admin/contacts/{id}/export", s.need(auth.PermViewContacts, s.exportContact))
}

// exportContact sends the contact's access export as a file: sensitive
// values in the clear, each logged, for a user who may reveal them;
// masked for anyone else, as the record page says.
func (s *Server) exportContact(w http.ResponseWriter, r *http.Request, u *auth.User) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "The form could not be read.", http.StatusBadRequest)
		return
	}
	f, err := export.ParseFormat(r.PostForm.Get("format"))
	if err != nil {
		s.fail(w, err, u)
		return
	}
	e, err := s.Export.Build(r.Context(), r.PathValue("id"), export.Viewer{Actor: actor(u), Clear: u.Can(auth.PermReveal), IP: s.clientIP(r)})
	if err != nil {
		s.fail(w, err, u)
		return
	}
	httpx.Attachment(w, f.ContentType(), e.FileName(f))
	if err := e.Write(w, f); err != nil {
		s.Log.Warn("export download not completed", "err", err)
	}
}
