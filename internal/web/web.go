// Package web is the admin web UI: server-rendered pages for operators,
// agents and billing users, under /admin/. Pages are html/template with
// embedded templates and one hand-written stylesheet, and work without
// JavaScript.
//
// Every page has a Content-Security-Policy that allows nothing but this
// site's own stylesheet, no caching, and no framing; the campaign editor
// also runs a script of this site, for its live preview, and the page of
// a running import one that follows its progress; both work without it. Forms are protected from cross-site posts by
// http.CrossOriginProtection and the SameSite session cookie. What a user may see and do follows their role
// (auth.Can); handlers check the permission before they read anything.
package web

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"runtime"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/clientip"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/erasure"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/export"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/preferences"
	"github.com/consentry/consentry/internal/receipts"
	"github.com/consentry/consentry/internal/repermission"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/retention"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/tally"
	"github.com/consentry/consentry/internal/webform"
	"github.com/consentry/consentry/internal/webhook"
	"github.com/consentry/consentry/internal/workflow"
)

//go:embed templates static
var files embed.FS

// maxSignInAccounts is how many addresses the sign-in limit per account
// keeps at most: past it, the address seen least recently is forgotten.
// Ten thousand addresses of at most 254 bytes take a few megabytes.
const maxSignInAccounts = 10_000

// sessionCookie holds the signed-in user's session.
const sessionCookie = "consentry_session"

// Server serves the admin web UI.
type Server struct {
	DB       *store.DB
	Users    *auth.Users
	Consent  *consent.Service
	Contacts *contact.Service
	OptIn    *optin.Service
	Lists    *lists.Service
	Prefs    *preferences.Service
	Tokens   *auth.Tokens
	Requests *requests.Service
	// Retention flags and erases contacts past their retention periods.
	Retention *retention.Service
	Erasure   *erasure.Service
	Export    *export.Service
	// Tally keeps the dashboard's daily figures.
	Tally *tally.Service
	// Campaigns keeps campaigns; CampaignSender previews and tests them.
	Campaigns      *campaign.Service
	CampaignSender *campaign.Sender
	// Webforms keeps webforms and renders their preview and snippet as
	// the public page does.
	Webforms *webform.Service
	// Workflows keeps the workflow rules and their run log.
	Workflows *workflow.Service
	// Webhooks keeps the webhook endpoints and their delivery log.
	Webhooks *webhook.Service
	// Imports brings contacts in from CSV and Excel files.
	Imports *imports.Service
	// Repermission asks contacts for their marketing consent again.
	Repermission *repermission.Service
	// Receipts issues the consent receipts the proof view offers.
	Receipts *receipts.Service
	Log      *slog.Logger
	IPs      clientip.Resolver
	// RequestLog says which requests are logged (CONSENTRY_LOG_REQUESTS).
	RequestLog httpx.RequestLog
	// SecureCookies marks the session cookie Secure; set under https.
	SecureCookies bool

	// grants carry what a post makes to the one page that may show it
	// (a revealed value's reason, a new API token's or webhook endpoint's
	// secret).
	grants   *auth.Grants
	pages    map[string]*template.Template
	guides   map[string]*guide
	mux      *http.ServeMux
	logged   http.Handler // mux, with each request logged
	root     http.Handler // everything, with the headers
	cop      *http.CrossOriginProtection
	logins   *clientip.Limiter
	accounts *clientip.Limiter
	hashing  chan struct{} // a slot per password check running
}

// New builds the server, parsing every template at once so that a broken
// one stops start-up rather than a page.
func New(s *Server) (*Server, error) {
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	s.pages = map[string]*template.Template{}
	s.grants = auth.NewGrants(s.DB)
	if s.guides, err = loadGuides(); err != nil {
		return nil, err
	}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/partials.html", n)
		if err != nil {
			return nil, err
		}
		s.pages[name] = t
	}
	// Failed sign-ins per client address: ten in a burst, then one every
	// six seconds; per account, ten, then one a minute from anywhere:
	// enough for mistyped passwords, too few to guess one. Successful
	// sign-ins are not counted, so a busy office is not held up. Each
	// limiter holds a bounded number of keys (see clientip.Limiter).
	s.logins = clientip.NewLimiter(10, 10, 15*time.Minute)
	s.accounts = clientip.NewLimiter(1, 10, time.Hour).WithMaxKeys(maxSignInAccounts)
	s.hashing = make(chan struct{}, 2*runtime.GOMAXPROCS(0))
	s.cop = http.NewCrossOriginProtection()
	staticDir, err := fs.Sub(files, "static")
	if err != nil {
		return nil, err
	}
	static, err := httpx.StaticFiles(staticDir, "/admin/static/")
	if err != nil {
		return nil, err
	}
	s.mux = http.NewServeMux()
	s.routes(static)
	s.logged = httpx.LogRequests(s.Log, "admin", s.RequestLog, s.mux)
	s.root = httpx.Headers(adminPolicy, http.HandlerFunc(s.serve))
	return s, nil
}

// adminPolicy lets pages load nothing but this site's own stylesheet and
// images, post forms only here, and be framed by no one.
var adminPolicy = httpx.Policy{
	CSP:      "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	Referrer: "same-origin",
}

// ServeHTTP applies the headers and cross-origin protection to every page.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.root.ServeHTTP(w, r) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if err := s.cop.Check(r); err != nil {
		http.Error(w, "Cross-origin request refused.", http.StatusForbidden)
		return
	}
	s.logged.ServeHTTP(w, r)
}

// page is what every template gets.
type page struct {
	Title string
	User  *auth.User
	Nav   string // the menu entry to mark as current
	// Page is the template's name, set by render: a section's
	// sub-navigation marks the page it is on with it.
	Page   string
	Flash  string
	Errors map[string]string // field: message, shown next to the field
	// Refresh, when not 0, reloads the page after so many seconds.
	Refresh int
	// Script, when set, is the file under static/ the page loads; its
	// handler allows it in the page's Content-Security-Policy. Pages
	// work without it.
	Script string
	Data   any
}

// handler is a page that needs a signed-in user with a permission.
type handler func(w http.ResponseWriter, r *http.Request, u *auth.User)

// need wraps h so that it runs only for a signed-in user with permission p:
// others are sent to sign in, or refused with 403.
func (s *Server) need(p auth.Permission, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := s.user(r)
		if u == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/admin/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "Your session has ended; sign in again.", http.StatusUnauthorized)
			return
		}
		if !u.Can(p) {
			s.render(w, http.StatusForbidden, "message", page{Title: "Not allowed", User: u,
				Data: "Your role (" + roleLabel(u.Role) + ") does not allow this."})
			return
		}
		h(w, r, u)
	}
}

// user returns the signed-in user of the request, or nil.
func (s *Server) user(r *http.Request) *auth.User {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	u, err := s.Users.Session(r.Context(), c.Value)
	if err != nil {
		if !errors.Is(err, auth.ErrNoSession) {
			s.Log.ErrorContext(r.Context(), "read session", "err", err)
		}
		return nil
	}
	return u
}

func (s *Server) render(w http.ResponseWriter, status int, name string, p page) {
	t, ok := s.pages[name]
	if !ok {
		s.Log.Error("no such page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p.Page = name
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", httpx.RetryAfter)
	}
	w.WriteHeader(status)
	if err := t.Execute(w, p); err != nil {
		s.Log.Error("render page", "page", name, "err", err)
	}
}

// fail shows a domain error: a validation error goes next to its field on
// the page that the caller renders again; anything else is logged and
// shown as a plain failure.
func (s *Server) fail(w http.ResponseWriter, err error, u *auth.User) {
	if e := errs.As(store.Unavailable(err)); e != nil {
		status := httpx.Status(e)
		if status == http.StatusServiceUnavailable {
			s.Log.Warn("admin page: the database is unavailable", "err", err)
		}
		s.render(w, status, "message", page{Title: "Not done", User: u, Data: e.Message})
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	s.Log.Error("admin page", "err", err)
	s.render(w, http.StatusInternalServerError, "message", page{Title: "Something went wrong", User: u,
		Data: "The server could not do this; the log says why."})
}

// fieldErrors turns a validation error into a message next to its field.
func fieldErrors(err error) map[string]string {
	e := errs.As(err)
	if e == nil {
		return nil
	}
	field := e.Field
	if field == "" {
		field = "form"
	}
	return map[string]string{field: e.Message}
}

func (s *Server) clientIP(r *http.Request) string {
	if a := s.IPs.IP(r); a.IsValid() {
		return a.String()
	}
	return ""
}

func (s *Server) setSession(w http.ResponseWriter, secret string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: "/admin", Expires: expires, HttpOnly: true,
		Secure: s.SecureCookies, SameSite: http.SameSiteLaxMode})
}

func actor(u *auth.User) consent.Actor { return consent.Actor{Kind: consent.ActorUser, ID: u.ID} }
