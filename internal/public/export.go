package public

import (
	"net/http"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/export"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/preferences"
)

// "Download my data" on the preferences page: the button emails the
// contact a link (R7: data goes only to the address on file), and the link
// opens a page whose buttons post to download. The page changes nothing
// when opened, since mail scanners open links; the download is a post,
// authorised by the token in its address as a confirmation is, so it is
// let past cross-origin protection like them. The token in the address
// leaks nowhere: the pages set Referrer-Policy no-referrer, load nothing
// from elsewhere and are not cached.

// exportBypasses are the posts cross-origin protection lets through here.
var exportBypasses = []string{"POST /p/export/{token}"}

// Asking for a link sends an email: a few an hour per contact, past which
// the page says to use the newest link.
const (
	exportLinksPerContact = 3
	exportLinkWindow      = time.Hour
)

func (s *Server) exportRoutes() {
	s.exportLinks = newAddressLimiter(exportLinksPerContact, exportLinkWindow)
	s.mux.HandleFunc("POST /p/export", s.askExport)
	s.mux.HandleFunc("GET /p/export/sent", s.exportSent)
	s.mux.HandleFunc("GET /p/export/{token}", s.exportPage)
	s.mux.HandleFunc("POST /p/export/{token}", s.download)
}

// askExport takes the page's "Download my data" button: it records the
// access request and emails the link, then redirects.
func (s *Server) askExport(w http.ResponseWriter, r *http.Request) {
	id, p, l, ok := s.sessionPage(w, r)
	if !ok {
		return
	}
	if !p.Full {
		s.showPage(w, r, id, http.StatusForbidden, map[string]string{"page": i18n.T(l, "prefs.refused")}, "", nil)
		return
	}
	if ok, wait := s.exportLinks.take(id); !ok {
		httpx.SetRetryAfter(w, wait)
		s.showPage(w, r, id, http.StatusTooManyRequests, map[string]string{"page": i18n.T(l, "prefs.export.too_many")}, "", nil)
		return
	}
	if _, err := s.Prefs.RequestExport(r.Context(), id, l); err != nil {
		s.pageError(w, r, id, l, err, nil)
		return
	}
	redirectKeepingLang(w, r, "/p/export/sent")
}

// redirectKeepingLang answers a post with a redirect to the page at path,
// in the language the request chose with ?lang=, if any.
func redirectKeepingLang(w http.ResponseWriter, r *http.Request, path string) {
	if q := r.URL.Query().Get("lang"); i18n.Supported(q) {
		path += "?lang=" + strings.ToLower(q)
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

func (s *Server) exportSent(w http.ResponseWriter, r *http.Request) {
	l := lang(r, "")
	s.render(w, r, http.StatusOK, "message", map[string]any{"Lang": l, "Title": i18n.T(l, "prefs.export.sent.title"),
		"Text": i18n.T(l, "prefs.export.sent.text", preferences.ExportLinkHours)})
}

// exportPage shows the download buttons for a working link, and the one
// page for every link that does not work otherwise (gone).
func (s *Server) exportPage(w http.ResponseWriter, r *http.Request) {
	_, contactLang, err := s.Prefs.ExportLink(r.Context(), r.PathValue("token"))
	if err != nil {
		s.linkFailed(w, r, "read export link", err, preferences.ErrNoExport)
		return
	}
	l := lang(r, contactLang)
	s.render(w, r, http.StatusOK, "export", map[string]any{"Lang": l, "Title": i18n.T(l, "prefs.export.title"), "Formats": export.Formats})
}

// download sends the contact their own data in the format posted.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		if !s.tooLarge(w, r, err) {
			http.Error(w, "The form could not be read.", http.StatusBadRequest)
		}
		return
	}
	f, err := export.ParseFormat(r.PostForm.Get("format"))
	if err != nil || r.PostForm.Get("format") == "" {
		http.Error(w, "Choose json, csv or xlsx.", http.StatusBadRequest)
		return
	}
	e, err := s.Prefs.Export(r.Context(), r.PathValue("token"), s.evidence(r))
	if err != nil {
		s.linkFailed(w, r, "export a contact's own data", err, preferences.ErrNoExport)
		return
	}
	httpx.Attachment(w, f.ContentType(), e.FileName(f))
	if err := e.Write(w, f); err != nil {
		s.Log.WarnContext(r.Context(), "export download not completed", "err", err)
	}
}
