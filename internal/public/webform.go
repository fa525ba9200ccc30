package public

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/consentry/consentry/internal/clientip"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/webform"
)

// Webform posts come from other sites (the snippet is pasted into a
// company's website), so cross-origin protection cannot guard them, and
// there is no token in the address to authorise them either. They are
// protected instead by:
//
//   - a honeypot field, hidden without CSS or JavaScript, that people never
//     fill and bots do: such a post is answered as any other and writes
//     nothing;
//   - a rate limit per client address, of webform posts only, so that one
//     busy office behind a single address that sends many forms is not
//     locked out of its confirmation links, and the other way round: a 429
//     page when it is hit;
//   - a rate limit per email address, so that a form cannot be used to
//     pester one person: past it, posts for that address are answered as
//     any other and write nothing (the double opt-in email itself goes out
//     at most once a day per address, in the database, across instances);
//   - answers that never tell whether an address was known: a new address,
//     a known one, a honeypot hit, a limited address and a contact who
//     stopped processing all get the same page (or the same redirect);
//   - double opt-in before any marketing email: a post sets only
//     single_opt_in_webform, and campaigns send only to double_opt_in by
//     default;
//   - strict parsing: a body of at most 64 KiB, each field at most once,
//     plain text only, checkboxes only as the markup sends them.
const (
	maxWebformBody = 64 << 10
	// Per client address by default (Limits.Webform): a form is filled
	// in by people, a few a minute even from one office.
	webformPerMinute = 20
	webformBurst     = 40
	// Per email address by default (Limits.WebformPerAddress), in
	// addressWindow.
	addressPosts  = 5
	addressWindow = time.Hour
)

// webformLimits are the rate limits of webform posts. They live in this
// process: with several instances behind a load balancer, each allows as
// much, which the once-a-day limit on double opt-in emails (kept in the
// database) bounds for what matters most.
type webformLimits struct {
	ip      *limiter
	address *addressLimiter
	// quantum evens out the time of a post's answer (httpx.EvenOut): a
	// post about a new address creates a lead and its consent records, one
	// about a known address only holds the post for confirmation, and the
	// answer must not tell which.
	quantum time.Duration
}

// webformQuantum is the time a webform post's answer is evened out to:
// well above what either kind of post takes on a machine that is not
// overloaded, and short for a person who has just pressed Send.
const webformQuantum = 100 * time.Millisecond

// webformRoutes adds the webform pages and posts to the public mux, and the
// link that confirms a post about a known address (its button is posted
// past cross-origin protection, authorised by the token in its address).
func (s *Server) webformRoutes() {
	s.webform = &webformLimits{ip: s.Limits.Webform.Limiter(time.Minute), address: newAddressLimiter(s.Limits.WebformPerAddress, addressWindow),
		quantum: webformQuantum}
	s.mux.HandleFunc("GET /f/{form}", s.webformPage)
	s.mux.HandleFunc("POST /f/{form}", s.webformPost)
	s.mux.HandleFunc("GET /f/sent", s.webformSent)
	s.mux.HandleFunc("GET /f/confirm/{token}", s.webformConfirmPage)
	s.mux.HandleFunc("POST /f/confirm/{token}", s.webformConfirm)
	s.mux.HandleFunc("GET /p/form-confirmed", s.webformConfirmed)
}

// webformConfirmPage shows what a confirmation link would apply, with a
// button, and changes nothing: mail scanners open links.
func (s *Server) webformConfirmPage(w http.ResponseWriter, r *http.Request) {
	c, err := s.Webforms.Pending(r.Context(), r.PathValue("token"))
	if err != nil {
		s.linkFailed(w, r, "read held webform post", err, webform.ErrNoConfirmation)
		return
	}
	l := lang(r, c.Lang)
	s.render(w, r, http.StatusOK, "webform_confirm", map[string]any{"Lang": l, "Title": i18n.T(l, "webform.confirm.title"), "Lines": c.Lines(l)})
}

// webformConfirm applies the post behind a confirmation link and
// redirects (post/redirect/get) to /p/form-confirmed (under the session cookie's path), whose session says which
// post was confirmed (the token never goes into an address), or, for a
// link unknown, used or expired alike, to /p/link-invalid. A reload of
// either applies nothing.
func (s *Server) webformConfirm(w http.ResponseWriter, r *http.Request) {
	ip := ""
	if a := s.IPs.IP(r); a.IsValid() {
		ip = a.String()
	}
	c, err := s.Webforms.Confirm(r.Context(), r.PathValue("token"), webform.Evidence{IP: ip, UserAgent: r.UserAgent()})
	switch {
	case errors.Is(err, webform.ErrNoConfirmation):
		redirectKeepingLang(w, r, "/p/link-invalid")
		return
	case errors.Is(err, webform.ErrNotApplied):
		l := lang(r, "")
		s.render(w, r, http.StatusConflict, "message", map[string]any{"Lang": l, "Title": i18n.T(l, "webform.not_applied.title"),
			"Text": i18n.T(l, "webform.not_applied.text")})
		return
	case err != nil:
		s.fault(w, r, "confirm webform post", err, i18n.T(lang(r, ""), "prefs.error"))
		return
	}
	s.openSessionFor(w, r, c.ContactID, c.ID)
	redirectKeepingLang(w, r, "/p/form-confirmed")
}

// webformConfirmed lists what the confirmed post applied, in the
// contact's language, and leads to their page (afterConfirmation).
func (s *Server) webformConfirmed(w http.ResponseWriter, r *http.Request) {
	s.afterConfirmation(w, r, "webform_done", webform.ErrNoConfirmation, func(ctx context.Context, contactID, subjectID string) (string, pageData, error) {
		c, err := s.Webforms.Confirmed(ctx, contactID, subjectID)
		if err != nil {
			return "", nil, err
		}
		return c.Lang, func(l string) map[string]any {
			return map[string]any{"Title": i18n.T(l, "webform.confirmed.title"), "Lines": c.Lines(l)}
		}, nil
	})
}

// formLang is the language a ?lang= parameter asks for, or "" for the
// form's own.
func formLang(r *http.Request) string {
	if q := r.URL.Query().Get("lang"); q != "" {
		return i18n.Match(q, "")
	}
	return ""
}

func (s *Server) webformPage(w http.ResponseWriter, r *http.Request) {
	v, err := s.Webforms.Page(r.Context(), r.PathValue("form"), formLang(r))
	if err != nil {
		s.webformError(w, r, err)
		return
	}
	s.showForm(w, r, http.StatusOK, v)
}

func (s *Server) showForm(w http.ResponseWriter, r *http.Request, status int, v *webform.View) {
	h, err := v.HTML()
	if err != nil {
		s.webformError(w, r, err)
		return
	}
	if v.RedirectOrigin != "" {
		// Browsers hold the redirect after a post to form-action too; the
		// policy is otherwise the one every page has.
		csp := w.Header().Get("Content-Security-Policy")
		w.Header().Set("Content-Security-Policy", strings.Replace(csp, "form-action 'self'", "form-action 'self' "+v.RedirectOrigin, 1))
	}
	s.render(w, r, status, "webform", map[string]any{"Lang": v.Lang, "Title": v.Title, "Form": h})
}

// webformError answers a form that does not exist with a 404 page and
// anything else with a 500 page, logged without the request's contents.
func (s *Server) webformError(w http.ResponseWriter, r *http.Request, err error) {
	l := lang(r, "")
	if errs.Is(err, errs.KindNotFound) {
		s.message(w, r, http.StatusNotFound, l, "webform.not_found")
		return
	}
	if errs.Is(store.Unavailable(err), errs.KindUnavailable) {
		// Said plainly: the visitor can send the form again shortly.
		s.Log.WarnContext(r.Context(), "webform: the database is unavailable", "err", err)
		w.Header().Set("Retry-After", httpx.RetryAfter)
		http.Error(w, "The form could not be saved just now; nothing was kept. Please send it again in a minute.", http.StatusServiceUnavailable)
		return
	}
	s.Log.ErrorContext(r.Context(), "webform", "err", err)
	http.Error(w, "The form could not be handled; please try again later.", http.StatusInternalServerError)
}

func (s *Server) message(w http.ResponseWriter, r *http.Request, status int, l, key string) {
	s.render(w, r, status, "message", map[string]any{"Lang": l, "Title": i18n.T(l, key+".title"), "Text": i18n.T(l, key+".text")})
}

func (s *Server) webformPost(w http.ResponseWriter, r *http.Request) {
	l := lang(r, "")
	ip := s.IPs.IP(r)
	if ok, wait := s.webform.ip.Take(clientip.LimitKey(ip)); !ok {
		httpx.SetRetryAfter(w, wait)
		s.message(w, r, http.StatusTooManyRequests, l, "webform.too_many")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxWebformBody)
	form, err := readForm(r)
	if err != nil && s.tooLarge(w, r, err) {
		return
	}
	if err != nil {
		// Not a form as a browser sends one: show the form with the
		// summary of errors, as for any other bad post.
		form = url.Values{}
	}
	addr := ""
	if ip.IsValid() {
		addr = ip.String()
	}
	start := time.Now()
	res, err := s.Webforms.Submit(r.Context(), r.PathValue("form"), webform.Submission{Form: form, IP: addr, UserAgent: r.UserAgent(),
		Lang: formLang(r), AllowAddress: s.webform.address.allow})
	httpx.EvenOut(r.Context(), start, s.webform.quantum)
	var invalid *webform.Invalid
	switch {
	case errors.As(err, &invalid):
		s.showForm(w, r, http.StatusBadRequest, invalid.View)
		return
	case err != nil:
		s.webformError(w, r, err)
		return
	case res.Redirect != "":
		http.Redirect(w, r, res.Redirect, http.StatusSeeOther)
		return
	}
	// Post/redirect/get: a reload shows the thanks again and posts
	// nothing. The page says the same for every post, so the address
	// carries nothing but the form's language.
	http.Redirect(w, r, "/f/sent?lang="+url.QueryEscape(res.Lang), http.StatusSeeOther)
}

// webformSent thanks whoever sent a webform, in the language the post's
// redirect names: the same page for every post (see webformPost).
func (s *Server) webformSent(w http.ResponseWriter, r *http.Request) {
	s.message(w, r, http.StatusOK, lang(r, ""), "webform.thanks")
}

// readForm reads a url-encoded body, and nothing from the query string. A
// body of another type reads as an empty form, whose required email is
// then missing.
func readForm(r *http.Request) (url.Values, error) {
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	return r.PostForm, nil
}

// addressLimiter counts posts per email address in fixed windows. It keeps
// a hash of each address, not the address, and forgets windows that have
// ended so that memory stays bounded.
type addressLimiter struct {
	mu      sync.Mutex
	max     int
	window  time.Duration
	seen    map[[16]byte]*addressWindowCount
	swept   time.Time
	nowFunc func() time.Time
}

type addressWindowCount struct {
	start time.Time
	n     int
}

func newAddressLimiter(max int, window time.Duration) *addressLimiter {
	return &addressLimiter{max: max, window: window, seen: map[[16]byte]*addressWindowCount{}, nowFunc: time.Now}
}

// allow counts a post for the (normalised) address and reports whether it
// is within the limit.
func (a *addressLimiter) allow(address string) bool {
	ok, _ := a.take(address)
	return ok
}

// take is allow that also says, when the address is over its limit, how
// long until it is not: until its window ends.
func (a *addressLimiter) take(address string) (ok bool, wait time.Duration) {
	sum := sha256.Sum256([]byte(address))
	var key [16]byte
	copy(key[:], sum[:])
	now := a.nowFunc()
	a.mu.Lock()
	defer a.mu.Unlock()
	if now.Sub(a.swept) > a.window {
		for k, c := range a.seen {
			if now.Sub(c.start) >= a.window {
				delete(a.seen, k)
			}
		}
		a.swept = now
	}
	c := a.seen[key]
	if c == nil || now.Sub(c.start) >= a.window {
		c = &addressWindowCount{start: now}
		a.seen[key] = c
	}
	c.n++
	if c.n <= a.max {
		return true, 0
	}
	return false, c.start.Add(a.window).Sub(now)
}
