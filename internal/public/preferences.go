package public

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/clientip"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/preferences"
)

// sessionCookie holds the preferences page session. Its path keeps it to
// the page's addresses.
const sessionCookie = "consentry_prefs"

// preferenceRoutes adds the preferences page and unsubscribe links. A link
// from an email (/p/{token}, /u/{token}) is exchanged for a short session
// cookie and a redirect to /p, so that the token never stays in the
// address bar, the history, or a Referer header.
func (s *Server) preferenceRoutes() {
	s.newLink = &newLinkLimits{ip: s.Limits.NewLink.Limiter(time.Hour),
		address: newAddressLimiter(s.Limits.NewLinkPerAddress, newLinkAddressWindow)}
	s.mux.HandleFunc("GET /p/{token}", s.openPage(auth.PurposePreferences, "/p"))
	s.mux.HandleFunc("GET /u/{token}", s.openPage(auth.PurposeUnsubscribe, "/p#email"))
	s.mux.HandleFunc("POST /u/{token}", s.oneClick)
	s.mux.HandleFunc("POST /u", s.askNewLink)
	s.mux.HandleFunc("GET /u/sent", s.newLinkSent)
	s.mux.HandleFunc("GET /p", s.preferencesPage)
	s.mux.HandleFunc("POST /p", s.savePreferences)
	s.mux.HandleFunc("GET /p/sent", s.changeSent)
	s.mux.HandleFunc("POST /p/end", s.endSession)
	s.mux.HandleFunc("GET /p/ended", s.sessionEnded)
	s.mux.HandleFunc("GET /p/confirm/{token}", s.confirmChangePage)
	s.mux.HandleFunc("POST /p/confirm/{token}", s.confirmChange)
	s.mux.HandleFunc("GET /p/done", s.changeDone)
	s.mux.HandleFunc("GET /p/not-applied", s.changeNotApplied)
	s.mux.HandleFunc("GET /p/link-invalid", s.linkInvalid)
}

// newLinkLimits bound how often a new preferences link may be asked for:
// each one sends an email. Per client address, a few a minute; per email
// address, a few an hour, past which a request is answered as any other
// and sends nothing. Both live in this process, as the webform's do.
type newLinkLimits struct {
	ip      *limiter
	address *addressLimiter
}

const (
	newLinkPerMinute      = 1
	newLinkBurst          = 5
	newLinkPerAddress     = 3
	newLinkAddressWindow  = time.Hour
	maxNewLinkRequestBody = 4 << 10
)

// crossOriginBypasses are the posts that cross-origin protection lets
// through: each is authorised by the token in its address, which no other
// site can know. The one-click unsubscribe is posted by mail providers'
// servers (RFC 8058), and confirmation pages are posted by browsers that,
// with no-referrer, may send Origin "null".
var crossOriginBypasses = []string{"POST /u/{token}", "POST /p/confirm/{token}"}

func (s *Server) openPage(purpose, to string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		secret, expires, err := s.Prefs.OpenSession(r.Context(), purpose, r.PathValue("token"))
		if err != nil {
			s.linkFailed(w, r, "open preferences session", err, preferences.ErrNoSession)
			return
		}
		s.toSession(w, r, secret, expires, to)
	}
}

// toSession sets the session cookie and redirects to the page.
func (s *Server) toSession(w http.ResponseWriter, r *http.Request, secret string, expires time.Time, to string) {
	s.setSession(w, secret, expires)
	http.Redirect(w, r, pageAddress(r, to), http.StatusSeeOther)
}

func (s *Server) setSession(w http.ResponseWriter, secret string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: "/p", Expires: expires,
		HttpOnly: true, Secure: s.SecureCookies, SameSite: http.SameSiteLaxMode})
}

// pageAddress is to (an address on the page, /p or /p#email) with the
// request's choice of language kept.
func pageAddress(r *http.Request, to string) string {
	if q := r.URL.Query().Get("lang"); q != "" && i18n.Supported(q) {
		to = strings.Replace(to, "/p", "/p?lang="+strings.ToLower(q), 1)
	}
	return to
}

// backLink is the way back from a page that says something is done.
type backLink struct{ URL, Text string }

// backToPage leads a done page back to the preferences page (at to: /p
// or /p#email), for a contact who has a session: the session cookie goes
// only to the page's addresses, so the link works as long as it lasts.
func backToPage(r *http.Request, l, to string) backLink {
	return backLink{URL: pageAddress(r, to), Text: i18n.T(l, "prefs.back")}
}

// openSessionFor gives the contact a page session after they used a link
// emailed to them (a confirmation or an unsubscribe link proves the same
// as a link to the page), so that the done page leads back to the page.
// subjectID is what the link did (the change or invitation it confirmed),
// which the page a confirmation redirects to reads back; or "".
// It reports false, having logged why, when no session was opened.
func (s *Server) openSessionFor(w http.ResponseWriter, r *http.Request, contactID, subjectID string) bool {
	secret, expires, err := s.Prefs.OpenSessionFor(r.Context(), contactID, subjectID)
	if err != nil {
		if !errors.Is(err, preferences.ErrNoSession) {
			s.Log.ErrorContext(r.Context(), "open preferences session", "err", err)
		}
		return false
	}
	s.setSession(w, secret, expires)
	return true
}

// session returns the contact of the request's session, or "" after
// showing the page that says the session ended.
func (s *Server) session(w http.ResponseWriter, r *http.Request) string {
	id, _ := s.sessionOf(w, r)
	return id
}

// sessionOf is session, with what the session was opened after (see
// preferences.Service.Session).
func (s *Server) sessionOf(w http.ResponseWriter, r *http.Request) (id, subjectID string) {
	c, err := r.Cookie(sessionCookie)
	if err == nil {
		id, subjectID, err := s.Prefs.Session(r.Context(), c.Value)
		if err == nil {
			return id, subjectID
		}
		if !errors.Is(err, preferences.ErrNoSession) {
			s.Log.ErrorContext(r.Context(), "read preferences session", "err", err)
		}
	}
	l := lang(r, "")
	s.render(w, r, http.StatusOK, "message", map[string]any{"Lang": l, "Title": i18n.T(l, "prefs.ended.title"), "Text": i18n.T(l, "prefs.ended.text")})
	return "", ""
}

// sessionPage reads the page of the contact whose session the request
// carries, and the language to answer in. ok is false, after a page that
// says why was shown, when there is no session or no page.
func (s *Server) sessionPage(w http.ResponseWriter, r *http.Request) (id string, p *preferences.Page, l string, ok bool) {
	if id = s.session(w, r); id == "" {
		return "", nil, "", false
	}
	p, err := s.Prefs.Build(r.Context(), id)
	if err != nil {
		s.linkFailed(w, r, "build preferences page", err)
		return "", nil, "", false
	}
	return id, p, lang(r, p.Contact.Language), true
}

func (s *Server) preferencesPage(w http.ResponseWriter, r *http.Request) {
	id := s.session(w, r)
	if id == "" {
		return
	}
	s.showPage(w, r, id, http.StatusOK, nil, "", nil)
}

// showPage renders the page for the contact, with errors next to their
// fields and a notice on top. typed, when not nil, is the "Correct my
// details" form as posted, shown again in place of the values on file
// (preferences.Page.Retype).
func (s *Server) showPage(w http.ResponseWriter, r *http.Request, contactID string, status int, fieldErrs map[string]string, notice string, typed map[string]string) {
	p, err := s.Prefs.Build(r.Context(), contactID)
	if err != nil {
		s.linkFailed(w, r, "build preferences page", err)
		return
	}
	l := lang(r, p.Contact.Language)
	p.Localize(l)
	p.Retype(typed)
	action := "/p"
	if q := r.URL.Query().Get("lang"); i18n.Supported(q) {
		action += "?lang=" + strings.ToLower(q) // the choice stays on the page's own posts
	}
	s.render(w, r, status, "preferences", map[string]any{"Lang": l, "Title": i18n.T(l, "prefs.title"), "Page": p,
		"Errors": placeErrors(p, fieldErrs), "Notice": notice, "Action": action, "PrivacyShown": true})
}

// placeErrors keeps each error next to the choice it is about, and moves
// those about a choice the page does not show to the top of the page.
func placeErrors(p *preferences.Page, fieldErrs map[string]string) map[string]string {
	shown := map[string]bool{"page": true}
	for _, l := range p.Lists {
		shown["list."+l.ID] = true
	}
	for _, c := range p.Consents {
		shown["consent."+c.PurposeID] = true
	}
	for _, c := range p.Correctable {
		shown["profile."+c.Name] = true
	}
	out := map[string]string{}
	for k, v := range fieldErrs {
		if !shown[k] {
			k = "page"
		}
		out[k] = v
	}
	return out
}

func (s *Server) savePreferences(w http.ResponseWriter, r *http.Request) {
	id := s.session(w, r)
	if id == "" {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		if !s.tooLarge(w, r, err) {
			http.Error(w, "The form could not be read.", http.StatusBadRequest)
		}
		return
	}
	f := preferences.Form{OptOut: r.PostForm.Get("optout") == "1", Shown: map[string]bool{}, Lists: map[string]bool{},
		Consents: map[string]string{}, Versions: map[string]int{}, Stop: r.PostForm.Get("action") == "stop",
		Erase: r.PostForm.Get("action") == "erase", Correct: r.PostForm.Get("action") == "correct", Profile: map[string]string{}}
	for k, v := range r.PostForm {
		if field, ok := strings.CutPrefix(k, "profile."); ok && len(v) > 0 && f.Correct {
			f.Profile[field] = v[0]
		}
	}
	for _, l := range r.PostForm["shown"] {
		f.Shown[l] = true
	}
	for _, l := range r.PostForm["list"] {
		f.Lists[l] = true
	}
	for k, v := range r.PostForm {
		if purpose, ok := strings.CutPrefix(k, "consent."); ok && len(v) > 0 {
			f.Consents[purpose] = v[0]
		}
		if purpose, ok := strings.CutPrefix(k, "v."); ok && len(v) > 0 {
			f.Versions[purpose], _ = strconv.Atoi(v[0])
		}
	}
	p, err := s.Prefs.Build(r.Context(), id)
	if err != nil {
		s.linkFailed(w, r, "build preferences page", err)
		return
	}
	l := lang(r, p.Contact.Language)
	p.Localize(l) // the texts the page showed, in the language it showed them
	var typed map[string]string
	if f.Correct {
		typed = f.Profile // a refused correction comes back as typed
	}
	change, err := p.Diff(f)
	if err != nil {
		s.pageError(w, r, id, l, err, typed)
		return
	}
	if change.Empty() {
		s.showPage(w, r, id, http.StatusOK, nil, i18n.T(l, "prefs.unchanged"), nil)
		return
	}
	if _, err := s.Prefs.Request(r.Context(), id, change, l, s.evidence(r)); err != nil {
		s.pageError(w, r, id, l, err, typed)
		return
	}
	// Post/redirect/get: reloading the page that says so must not ask
	// again (a second email, the pending change replaced).
	redirectKeepingLang(w, r, "/p/sent")
}

// changeSent says a change waits for the contact's confirmation by email,
// in the page's language; without a session, that the session ended.
func (s *Server) changeSent(w http.ResponseWriter, r *http.Request) {
	_, _, l, ok := s.sessionPage(w, r)
	if !ok {
		return
	}
	s.render(w, r, http.StatusOK, "message", map[string]any{"Lang": l, "Title": i18n.T(l, "prefs.check_email.title"),
		"Text": i18n.T(l, "prefs.check_email.text", preferences.ConfirmHours), "Back": backToPage(r, l, "/p")})
}

// pageError shows the page again with a refused choice's reason next to
// it. A detail the contact typed into "Correct my details" and that cannot
// be stored gets the reason it cannot (i18n.InputError), and typed, the
// form as posted, is shown again (nil: the values on file).
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, contactID, l string, err error, typed map[string]string) {
	e := errs.As(err)
	if e == nil {
		s.fault(w, r, "save preferences", err, i18n.T(l, "prefs.error"))
		return
	}
	field := e.Field
	if field == "" {
		field = "page"
	}
	msg := i18n.T(l, "prefs.refused."+e.Code)
	if msg == "prefs.refused."+e.Code {
		msg = i18n.T(l, "prefs.refused")
	}
	if name, ok := strings.CutPrefix(field, "profile."); ok && e.Kind == errs.KindInvalid && correctable(name) {
		msg = i18n.InputError(l, name, e)
	}
	s.showPage(w, r, contactID, httpx.Status(err), map[string]string{field: msg}, "", typed)
}

// correctable reports whether name is a core field the contact may
// correct on the page; a refusal of any other is a choice the page does
// not offer.
func correctable(name string) bool {
	return slices.ContainsFunc(contact.CorrectableFields(), func(f contact.CoreField) bool { return f.Name == name })
}

func (s *Server) evidence(r *http.Request) preferences.Evidence {
	ip := ""
	if a := s.IPs.IP(r); a.IsValid() {
		ip = a.String()
	}
	return preferences.Evidence{IP: ip, UserAgent: truncateUA(r.UserAgent())}
}

// endSession closes the page on this device: the session ends and its
// cookie is removed, and the post redirects (post/redirect/get) to
// /p/ended, which says so; a reload of that page posts nothing.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.Prefs.EndSession(r.Context(), c.Value); err != nil {
			s.Log.ErrorContext(r.Context(), "end preferences session", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/p", MaxAge: -1, HttpOnly: true,
		Secure: s.SecureCookies, SameSite: http.SameSiteLaxMode})
	redirectKeepingLang(w, r, "/p/ended")
}

// sessionEnded says the page was closed on this device (endSession),
// whoever asks: it reads no session.
func (s *Server) sessionEnded(w http.ResponseWriter, r *http.Request) {
	l := lang(r, "")
	s.render(w, r, http.StatusOK, "message", map[string]any{"Lang": l, "Title": i18n.T(l, "prefs.ended_by_you.title"), "Text": i18n.T(l, "prefs.ended_by_you.text")})
}

func (s *Server) confirmChangePage(w http.ResponseWriter, r *http.Request) {
	p, err := s.Prefs.PendingChange(r.Context(), r.PathValue("token"))
	if err != nil {
		s.linkFailed(w, r, "read pending preferences change", err, preferences.ErrNoChange)
		return
	}
	l := lang(r, p.Lang)
	s.render(w, r, http.StatusOK, "prefs_confirm", map[string]any{"Lang": l, "Title": i18n.T(l, "prefs.confirm.title"), "Lines": p.Change.Lines(l)})
}

// confirmChange applies the change behind the link, and redirects
// (post/redirect/get) to the page that says what was done, which a reload
// shows again without applying anything: /p/done, whose session says which
// change (the token never goes into an address); /p/not-applied for a
// change refused as it was applied; /p/link-invalid for a link unknown,
// used or expired, alike.
func (s *Server) confirmChange(w http.ResponseWriter, r *http.Request) {
	p, err := s.Prefs.Confirm(r.Context(), r.PathValue("token"), s.evidence(r))
	if err != nil {
		switch e := errs.As(err); {
		case errors.Is(err, preferences.ErrNoChange):
			redirectKeepingLang(w, r, "/p/link-invalid")
		case e != nil:
			redirectKeepingLang(w, r, "/p/not-applied")
		default:
			s.fault(w, r, "confirm preferences change", err, i18n.T(lang(r, ""), "prefs.error"))
		}
		return
	}
	s.openSessionFor(w, r, p.ContactID, p.ID)
	redirectKeepingLang(w, r, "/p/done")
}

// changeDone says which change the confirmation applied, in the
// contact's language, and leads back to the page (afterConfirmation).
func (s *Server) changeDone(w http.ResponseWriter, r *http.Request) {
	s.afterConfirmation(w, r, "prefs_done", preferences.ErrNoChange, func(ctx context.Context, contactID, subjectID string) (string, pageData, error) {
		p, err := s.Prefs.AppliedChange(ctx, contactID, subjectID)
		if err != nil {
			return "", nil, err
		}
		return p.Lang, func(l string) map[string]any {
			return map[string]any{"Title": i18n.T(l, "prefs.done.title"), "Lines": p.Change.Lines(l)}
		}, nil
	})
}

// changeNotApplied says a confirmed change could not be applied (what it
// asked for is no longer allowed).
func (s *Server) changeNotApplied(w http.ResponseWriter, r *http.Request) {
	l := lang(r, "")
	s.render(w, r, http.StatusOK, "message", map[string]any{"Lang": l, "Title": i18n.T(l, "prefs.not_applied.title"),
		"Text": i18n.T(l, "prefs.not_applied.text")})
}

// linkInvalid is where a confirmation post with a link that cannot be used
// leads (post/redirect/get): the one page for every such link, with its
// status (gone).
func (s *Server) linkInvalid(w http.ResponseWriter, r *http.Request) {
	s.gone(w, r)
}

// oneClick is the RFC 8058 one-click unsubscribe: a POST whose body is
// List-Unsubscribe=One-Click opts the contact out, with no page, login or
// redirect. A link that no longer works (older than the setting
// unsubscribe_link_days, or unknown) answers 410 with the page of every
// such link, which offers a new one (gone), never "unsubscribed" for a
// change not made.
func (s *Server) oneClick(w http.ResponseWriter, r *http.Request) {
	if !s.oneClickForm(w, r) {
		return
	}
	err := s.Prefs.OneClick(r.Context(), r.PathValue("token"), s.evidence(r))
	if errors.Is(err, preferences.ErrNoSession) {
		s.gone(w, r)
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "one-click unsubscribe", "err", err)
		http.Error(w, "The unsubscribe could not be saved; try again.", http.StatusServiceUnavailable)
		return
	}
	l := lang(r, "")
	s.render(w, r, http.StatusOK, "message", map[string]any{"Lang": l, "Title": i18n.T(l, "prefs.unsubscribed.title"), "Text": i18n.T(l, "prefs.unsubscribed.text")})
}

// askNewLink takes the form of the page of a link that cannot be used
// (linkPage): it has a new preferences link emailed to the address when it
// is a contact's, and redirects to the same page whether it is or not,
// whether the address was over its limit or not, so the answer tells
// nothing about the address; nor does the time it takes, as the address
// is looked up later, by a job.
func (s *Server) askNewLink(w http.ResponseWriter, r *http.Request) {
	l := lang(r, "")
	if ok, wait := s.newLink.ip.Take(clientip.LimitKey(s.IPs.IP(r))); !ok {
		httpx.SetRetryAfter(w, wait)
		s.linkPage(w, r, http.StatusTooManyRequests, "", i18n.T(l, "prefs.link_expired.too_many"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxNewLinkRequestBody)
	if err := r.ParseForm(); err != nil {
		if !s.tooLarge(w, r, err) {
			s.linkPage(w, r, http.StatusBadRequest, "", i18n.T(l, "prefs.link_expired.invalid"))
		}
		return
	}
	email := strings.TrimSpace(r.PostForm.Get("email"))
	if len(email) > 254 {
		email = ""
	}
	if _, err := contact.NormalizeEmail(email); err != nil {
		s.linkPage(w, r, http.StatusBadRequest, email, i18n.T(l, "prefs.link_expired.invalid"))
		return
	}
	// Whether the address is a contact's is not looked up here: the
	// request writes one job, the same for any address, and the job finds
	// the contact and writes the email later (preferences.RequestLink).
	// Known and unknown addresses thus take the same work, and the same
	// time, before the same redirect.
	if s.newLink.address.allow(strings.ToLower(email)) {
		if err := s.Prefs.RequestLink(r.Context(), email, l); err != nil {
			s.fault(w, r, "ask for a new preferences link", err, i18n.T(l, "prefs.error"))
			return
		}
	}
	redirectKeepingLang(w, r, "/u/sent")
}

// newLinkSent is where askNewLink leads, whatever the address.
func (s *Server) newLinkSent(w http.ResponseWriter, r *http.Request) {
	l := lang(r, "")
	s.render(w, r, http.StatusOK, "message", map[string]any{"Lang": l, "Title": i18n.T(l, "prefs.link_sent.title"), "Text": i18n.T(l, "prefs.link_sent.text")})
}

// oneClickForm reads an RFC 8058 one-click post; it reports false after
// answering 400 when the body is not List-Unsubscribe=One-Click, 413 when
// it is over its limit.
func (s *Server) oneClickForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	// RFC 8058 asks senders to post multipart/form-data; many post
	// urlencoded. Both are read.
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		err = r.ParseMultipartForm(16 << 10)
	} else {
		err = r.ParseForm()
	}
	if err != nil && s.tooLarge(w, r, err) {
		return false
	}
	if err != nil || r.PostFormValue("List-Unsubscribe") != "One-Click" {
		http.Error(w, "Expected the form field List-Unsubscribe=One-Click (RFC 8058).", http.StatusBadRequest)
		return false
	}
	return true
}
