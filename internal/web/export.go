package web

import (
	"net/http"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/export"
	"github.com/consentry/consentry/internal/httpx"
)

func (s *Server) exportRoutes() {
	// A post, not a link: the download writes to the access log in the
	// user's name, which no other site may make their browser do.
	s.post("/admin/contacts/{id}/export", smallForm, s.need(auth.PermViewContacts, s.exportContact))
	// The contact list's export answers its post with the file too, for
	// the same reason, and so does not redirect (docs/admin.md).
	s.post("/admin/contacts/export", textForm, s.need(auth.PermViewContacts, s.exportContactList))
}

// exportContact sends the contact's access export as a file: sensitive
// values in the clear, each logged, for a user who may reveal them;
// masked for anyone else, as the record page says.
func (s *Server) exportContact(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
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
		s.Log.WarnContext(r.Context(), "export download not completed", "err", err)
	}
}

// exportContactList sends the contacts the list shows (its search and
// condition, as posted from the page) as a CSV file or an Excel workbook,
// in the ticked columns, sensitive values masked. A refused export shows
// the list again with the reason next to the field, having written
// nothing.
func (s *Server) exportContactList(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	f := r.PostForm
	p := listPage{Query: f.Get("q"), Filter: f.Get("filter")}
	refuse := func(err error) {
		if errs.As(err) == nil {
			s.fail(w, err, u)
			return
		}
		p.Chosen, p.ExportErrors = append([]string{}, f["columns"]...), fieldErrors(err)
		s.showContactList(w, r, u, p, httpx.Status(err))
	}
	if len(f["columns"]) == 0 {
		refuse(errs.Invalid("columns", "tick at least one column to export"))
		return
	}
	who := contact.Asker{Actor: actor(u), MayReveal: mayLookUp(r, u), IP: s.clientIP(r)}
	cond, err := s.listCondition(r.Context(), p.Query, p.Filter, who.MayReveal)
	if err != nil {
		refuse(err)
		return
	}
	x, err := s.Export.PrepareList(r.Context(), export.ListRequest{Format: f.Get("format"), Filter: cond, Columns: f["columns"], Asker: who})
	if err != nil {
		refuse(err)
		return
	}
	httpx.Attachment(w, x.ContentType(), x.FileName())
	keep := httpx.KeepWriting(w, time.Minute)
	keep()
	if err := x.Write(r.Context(), w, keep); err != nil {
		s.Log.WarnContext(r.Context(), "contact list export not completed", "err", err)
		panic(http.ErrAbortHandler) // cut the connection: part of the file must not pass for all of it
	}
}
