// Package public serves the pages contacts reach from their email: the
// double opt-in confirmation, and in development the mailbox that stands in
// for a mail server. Pages are server-rendered, work without JavaScript and
// speak English, Swedish or Dutch.
//
// Every page has a Content-Security-Policy that allows nothing but the
// service's own stylesheet (static/public.css, no inline style) and
// images, Referrer-Policy no-referrer (so a token in the address
// never leaks to another site), and no caching for pages reached by token.
// Forms are protected from cross-site posts by http.CrossOriginProtection;
// the token in the address authorises the post itself. Requests are rate
// limited per client address.
package public

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/clientip"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/inbound"
	"github.com/consentry/consentry/internal/ledgertree"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/preferences"
	"github.com/consentry/consentry/internal/receipts"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/webform"
)

//go:embed templates
var templateFS embed.FS

// staticFS holds the pages' stylesheet, served under /static/.
//
//go:embed static
var staticFS embed.FS

var linkRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// linkify escapes text and turns its links into anchors.
func linkify(s string) template.HTML {
	var b strings.Builder
	last := 0
	for _, m := range linkRE.FindAllStringIndex(s, -1) {
		b.WriteString(template.HTMLEscapeString(s[last:m[0]]))
		u := template.HTMLEscapeString(s[m[0]:m[1]])
		b.WriteString(`<a href="` + u + `">` + u + `</a>`)
		last = m[1]
	}
	b.WriteString(template.HTMLEscapeString(s[last:]))
	return template.HTML(b.String())
}

// utc shows a time in UTC to the minute, as the admin pages do.
func utc(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// pageNames are the public pages, each a template of its own inside the
// shared layout.
var pageNames = []string{"confirm", "message", "mailbox", "preferences", "prefs_confirm", "prefs_done", "link_unusable",
	"webform", "webform_confirm", "webform_done", "export", "campaign_unsub"}

// parsePages parses every page with the layout; a broken template is an
// error at start-up, not on the first request that needs it.
func parsePages() (map[string]*template.Template, error) {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := parsePage(name)
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

// parsePage parses the page templates/NAME.html with the layout.
func parsePage(name string) (*template.Template, error) {
	t, err := template.New("layout.html").Funcs(template.FuncMap{"t": i18n.T, "linkify": linkify, "utc": utc}).
		ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
	if err != nil {
		return nil, fmt.Errorf("public: page %s: %w", name, err)
	}
	return t, nil
}

// Server serves the public pages.
type Server struct {
	DB    *store.DB
	OptIn *optin.Service
	Log   *slog.Logger
	// RequestLog says which requests are logged (CONSENTRY_LOG_REQUESTS).
	RequestLog httpx.RequestLog
	// Limits are the rate limits of the pages; zero fields take
	// DefaultLimits' values.
	Limits  Limits
	Mailbox bool // the dev mailbox is the transport, so show it
	// Sender names the operator on pages when the settings give no
	// organisation name: the name of the server's CONSENTRY_MAIL_FROM.
	Sender string
	Prefs  *preferences.Service
	// SecureCookies marks cookies Secure; set when the base URL is https.
	SecureCookies bool
	IPs           clientip.Resolver
	limiter       *limiter
	oneClickLimit *limiter
	ledgerLimit   *limiter
	cop           *http.CrossOriginProtection
	mux           *http.ServeMux
	pages         map[string]*template.Template
	logged        http.Handler // mux, with each request logged
	root          http.Handler // everything, with the headers

	Webforms *webform.Service // hosted webforms and their posts (webform.go)
	webform  *webformLimits
	newLink  *newLinkLimits // asking for a new preferences link (preferences.go)
	// exportLinks limits how often a contact asks for a download link
	// (export.go).
	exportLinks *addressLimiter

	Inbound *inbound.Service // confirming requests emailed to the privacy address (inbound.go)

	Tree *ledgertree.Service // the ledger's checkpoints, proofs and keys (ledger.go)

	// Receipts gives the public keys that check consent receipts
	// (jwks.go); without it, they are not served.
	Receipts *receipts.Service

	// The links in campaign messages (campaign.go); without them, those
	// addresses are not served.
	Campaigns      *campaign.Service
	CampaignSender *campaign.Sender
	CampaignLinks  *campaign.Links
	Tracker        *campaign.Tracker
}

// New builds the server and its routes, and parses its pages.
func New(s *Server) (*Server, error) {
	var err error
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	s.Limits = s.Limits.orDefault()
	s.limiter = s.Limits.Pages.Limiter(time.Minute)
	// Mail providers post one-click unsubscribes for many recipients from
	// few addresses; each is authorised by its token, and is cheap.
	s.oneClickLimit = s.Limits.OneClick.Limiter(time.Minute)
	s.ledgerLimit = s.Limits.Ledger.Limiter(time.Minute)
	staticDir, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	static, err := httpx.StaticFiles(staticDir, staticPrefix)
	if err != nil {
		return nil, err
	}
	s.mux = http.NewServeMux()
	s.mux.Handle("GET "+staticPrefix, static)
	s.mux.HandleFunc("GET /confirm/{token}", s.confirmPage)
	s.mux.HandleFunc("POST /confirm/{token}", s.confirm)
	s.mux.HandleFunc("GET /p/confirmed", s.confirmed)
	s.mux.HandleFunc("GET /dev/mailbox", s.mailbox)
	s.mux.HandleFunc("GET /dev/mailbox/{id}/attachments/{n}", s.mailboxFile)
	s.mux.HandleFunc("GET "+settings.LogoPath, s.logo)
	if s.Receipts != nil {
		s.mux.HandleFunc("GET "+JWKSPath, s.jwks)
		s.mux.HandleFunc("GET "+receipts.LinkPath+"{token}", s.receiptDownload)
	}
	s.webformRoutes()
	s.preferenceRoutes()
	s.exportRoutes()
	s.campaignRoutes()
	s.ledgerRoutes()
	if err := s.inboundRoutes(); err != nil {
		return nil, err
	}
	s.cop = http.NewCrossOriginProtection()
	// The confirmation post is authorised by the token in its address, which
	// a cross-site page cannot know; browsers that send no Sec-Fetch-Site
	// and, with no-referrer, an Origin of "null" must still get through.
	s.cop.AddInsecureBypassPattern("POST /confirm/{token}")
	for _, p := range append(append(crossOriginBypasses, exportBypasses...), campaignBypasses...) {
		s.cop.AddInsecureBypassPattern(p)
	}
	s.cop.AddInsecureBypassPattern("POST /f/{form}") // posted from other sites; see webform.go for its protections
	// The button confirming a held webform post, authorised by the token
	// in its address as POST /confirm/{token} is.
	s.cop.AddInsecureBypassPattern("POST /f/confirm/{token}")
	s.cop.AddInsecureBypassPattern("POST /r/{token}") // the same, for a request emailed to the privacy address
	s.logged = httpx.LogRequests(s.Log, "page", s.RequestLog, s.mux, trackingRoutes...)
	s.root = httpx.Headers(publicPolicy, http.HandlerFunc(s.serve))
	return s, nil
}

// staticPrefix is where the pages' stylesheet is served.
const staticPrefix = "/static/"

// publicPolicy lets pages use this site's own stylesheet and images (the
// operator's logo) and nothing else: no inline style, so text injected
// into a page cannot restyle it (to hide a consent box, say). Pages post
// forms only here and are framed by no one; no referrer leaves, so a
// token in the address never reaches another site.
var publicPolicy = httpx.Policy{
	CSP:      "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	Referrer: "no-referrer",
}

// ServeHTTP applies the headers, the rate limit and cross-origin protection
// to every page.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.root.ServeHTTP(w, r) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if ok, wait := s.allowed(r); !ok {
		httpx.SetRetryAfter(w, wait)
		http.Error(w, fmt.Sprintf("Too many requests; try again in %d seconds.", httpx.RetryAfterSeconds(wait)), http.StatusTooManyRequests)
		return
	}
	if err := s.cop.Check(r); err != nil {
		http.Error(w, "Cross-origin request refused.", http.StatusForbidden)
		return
	}
	s.logged.ServeHTTP(w, r)
}

// allowed applies the per-client rate limit that fits the request, and
// says how long until a request refused would be allowed (its
// Retry-After): webform posts have their own, in the handler
// (webform.go), so that a busy office cannot lock itself out of its
// confirmation links, one-click unsubscribes and the ledger's endpoints a
// higher one; the stylesheet has none.
func (s *Server) allowed(r *http.Request) (bool, time.Duration) {
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, staticPrefix) {
		// The stylesheet every page loads: the same file for everyone,
		// mostly answered 304, and not to halve what a contact may open.
		return true, 0
	}
	key := clientip.LimitKey(s.IPs.IP(r))
	if r.Method == http.MethodPost {
		switch _, pattern := s.mux.Handler(r); pattern {
		case "POST /f/{form}":
			return true, 0
		case "POST /u/{token}", "POST /m/u/{rid}/{sig}":
			return s.oneClickLimit.Take(key)
		}
	}
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/ledger/") {
		// An auditor's mirror fetches thousands of tiles.
		return s.ledgerLimit.Take(key)
	}
	if strings.HasPrefix(r.URL.Path, "/m/o/") || strings.HasPrefix(r.URL.Path, "/m/c/") {
		// Opens and clicks come through mail providers' image proxies
		// and link scanners, many recipients from few addresses.
		return s.oneClickLimit.Take(key)
	}
	return s.limiter.Take(key)
}

func lang(r *http.Request, contactLang string) string {
	if q := r.URL.Query().Get("lang"); q != "" {
		return i18n.Match(q, "")
	}
	if contactLang != "" {
		// The contact's language when it is one of ours ("sv-SE" is
		// Swedish), as their emails are; else the browser's.
		if l := i18n.Match(contactLang, ""); strings.HasPrefix(strings.ToLower(contactLang), l) {
			return l
		}
	}
	return i18n.Match("", r.Header.Get("Accept-Language"))
}

// render writes page with data, and with the operator (Operator) and
// their privacy statement and policy links (Privacy) for the header and
// footer that name the controller on every page. Settings that
// cannot be read leave the configured sender name, so the page still
// names someone.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page string, data map[string]any) {
	st, err := settings.Get(r.Context(), s.DB.Read)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "render page: read settings", "page", page, "err", err)
	}
	data["Operator"] = st.Controller(s.Sender)
	// The privacy statement and policy links are the operator's, not the
	// contact's: every page shows them, so that a contact the page is off
	// for, or whose link expired, still reads them (GDPR Art. 13). The
	// preferences page shows them at its top instead (PrivacyShown).
	if shown, _ := data["PrivacyShown"].(bool); !shown {
		cfg, err := preferences.GetConfig(r.Context(), s.DB.Read)
		if err != nil {
			s.Log.ErrorContext(r.Context(), "render page: read preferences settings", "page", page, "err", err)
		}
		data["Privacy"] = cfg
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", httpx.RetryAfter)
	}
	w.WriteHeader(status)
	if err := s.pages[page].Execute(w, data); err != nil {
		s.Log.ErrorContext(r.Context(), "render page", "page", page, "err", err)
	}
}

// logo serves the operator's logo with the type its content was
// recognised as when uploaded (never SVG), and nosniff so that no browser
// takes it for anything else. Its address with the current version
// (settings LogoURL, which the pages use) is cached for a day, as a new
// logo has a new address; the bare address is checked each time, by its
// ETag.
func (s *Server) logo(w http.ResponseWriter, r *http.Request) {
	l, err := settings.GetLogo(r.Context(), s.DB.Read)
	if errs.As(err) != nil {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "serve logo", "err", err)
		http.Error(w, "The logo could not be read.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", l.ContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", l.ETag)
	h.Set("Cache-Control", "no-cache")
	if r.URL.Query().Get("v") == l.Version() {
		h.Set("Cache-Control", "public, max-age=86400")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(l.Data))
}

// gone answers a personal link that cannot be used, whatever the reason
// (unknown, forged or damaged, expired, used, replaced by a newer one, or
// its contact erased), with 410 Gone and the one page for every such
// link (linkPage): it explains that links work for a while and some only
// once, and offers to email a new link to the preferences page. The
// answer is the same, byte for byte, for every link and every reason, so
// that it tells nothing about whether a token or an address exists or
// existed; and a link that does not work now never will, which is what
// 410 says. A confirmation button posted with such a link redirects to
// /p/link-invalid, which answers this. See docs/preferences.md.
func (s *Server) gone(w http.ResponseWriter, r *http.Request) {
	s.linkPage(w, r, http.StatusGone, "", "")
}

// linkPage shows the page of a link that cannot be used, with status: it
// says so, and its form asks for a new link to the preferences page
// (askNewLink). email and problem refill the form after a refused request.
func (s *Server) linkPage(w http.ResponseWriter, r *http.Request, status int, email, problem string) {
	l := lang(r, "")
	action := "/u"
	if q := r.URL.Query().Get("lang"); i18n.Supported(q) {
		action += "?lang=" + strings.ToLower(q)
	}
	s.render(w, r, status, "link_unusable", map[string]any{"Lang": l, "Title": i18n.T(l, "page.invalid.title"),
		"Action": action, "Email": email, "Error": problem})
}

// linkFailed answers a link whose use failed with err: when err says the
// link cannot be used (one of unusable, the sentinel errors of the link's
// service, or a domain not-found error: what the link was about is gone),
// the page for such links (gone); otherwise a fault of the server (fault,
// logged as what), never a claim that a working link does not work.
func (s *Server) linkFailed(w http.ResponseWriter, r *http.Request, what string, err error, unusable ...error) {
	for _, u := range unusable {
		if errors.Is(err, u) {
			s.gone(w, r)
			return
		}
	}
	if errs.Is(err, errs.KindNotFound) {
		s.gone(w, r)
		return
	}
	s.fault(w, r, what, err, i18n.T(lang(r, ""), "prefs.error"))
}

// confirmFailed answers a confirmation button whose post failed with err.
// A link that confirms nothing (notConfirmed, the service's sentinel
// error, or a rule of the domain that refused what it would do) redirects
// (post/redirect/get) to /p/link-invalid, the page of every link that
// cannot be used (gone); a fault of the server, such as a database that
// cannot be reached, is answered as one (fault), never as a link that
// does not work.
func (s *Server) confirmFailed(w http.ResponseWriter, r *http.Request, what string, err, notConfirmed error) {
	if e := errs.As(store.Unavailable(err)); errors.Is(err, notConfirmed) || (e != nil && e.Kind != errs.KindUnavailable) {
		redirectKeepingLang(w, r, "/p/link-invalid")
		return
	}
	s.fault(w, r, what, err, i18n.T(lang(r, ""), "prefs.error"))
}

// tooLarge answers a post whose body could not be read because it is over
// its limit (httpx.OverLimit) with the page that says so, naming the
// limit, and 413, and reports true; for any other error it answers
// nothing and reports false. Nothing of such a post is used.
func (s *Server) tooLarge(w http.ResponseWriter, r *http.Request, err error) bool {
	limit, over := httpx.OverLimit(err)
	if !over {
		return false
	}
	l := lang(r, "")
	s.render(w, r, http.StatusRequestEntityTooLarge, "message", map[string]any{"Lang": l, "Title": i18n.T(l, "page.too_large.title"),
		"Text": i18n.T(l, "page.too_large.text", errs.Size(limit))})
	return true
}

func (s *Server) confirmPage(w http.ResponseWriter, r *http.Request) {
	contactLang, err := s.OptIn.Pending(r.Context(), r.PathValue("token"))
	if err != nil {
		s.linkFailed(w, r, "read double opt-in link", err, optin.ErrNotConfirmed)
		return
	}
	l := lang(r, contactLang)
	s.render(w, r, http.StatusOK, "confirm", map[string]any{"Lang": l, "Title": i18n.T(l, "page.confirm.title")})
}

// confirm confirms the double opt-in behind the link, and redirects
// (post/redirect/get) to /p/confirmed, whose session says which invitation
// was confirmed (the token never goes into an address), or, for a link
// unknown, used or expired alike, to /p/link-invalid. A reload of either
// confirms nothing.
func (s *Server) confirm(w http.ResponseWriter, r *http.Request) {
	ip := ""
	if a := s.IPs.IP(r); a.IsValid() {
		ip = a.String()
	}
	done, err := s.OptIn.Confirm(r.Context(), r.PathValue("token"), optin.Evidence{IP: ip, UserAgent: truncateUA(r.UserAgent())})
	if err != nil {
		s.confirmFailed(w, r, "confirm double opt-in", err, optin.ErrNotConfirmed)
		return
	}
	s.openSessionFor(w, r, done.ContactID, done.InvitationID)
	redirectKeepingLang(w, r, "/p/confirmed")
}

// confirmed says the opt-in is confirmed, in the contact's language, and
// leads to their page (afterConfirmation).
func (s *Server) confirmed(w http.ResponseWriter, r *http.Request) {
	s.afterConfirmation(w, r, "message", optin.ErrNotConfirmed, func(ctx context.Context, contactID, subjectID string) (string, pageData, error) {
		done, err := s.OptIn.ConfirmedInvitation(ctx, contactID, subjectID)
		if err != nil {
			return "", nil, err
		}
		return done.Language, func(l string) map[string]any {
			return map[string]any{"Title": i18n.T(l, "page.confirmed.title"), "Text": i18n.T(l, "page.confirmed.text")}
		}, nil
	})
}

// pageData is a page's data in language l.
type pageData func(l string) map[string]any

// afterConfirmation shows page, where a confirmation link's post
// redirected: the session opened then says whose and what (openSessionFor),
// and read returns that contact's language and the page's data, or
// notFound when the session was opened after something else, which shows
// the page that says the link cannot be used. The page leads back to the
// preferences page, and a reload writes nothing.
func (s *Server) afterConfirmation(w http.ResponseWriter, r *http.Request, page string, notFound error,
	read func(ctx context.Context, contactID, subjectID string) (string, pageData, error)) {
	id, subjectID := s.sessionOf(w, r)
	if id == "" {
		return
	}
	contactLang, data, err := read(r.Context(), id, subjectID)
	if err != nil {
		s.linkFailed(w, r, "read what a confirmation did", err, notFound)
		return
	}
	l := lang(r, contactLang)
	d := data(l)
	d["Lang"], d["Back"] = l, backToPage(r, l, "/p")
	s.render(w, r, http.StatusOK, page, d)
}

// truncateUA keeps a user agent within what evidence stores.
func truncateUA(ua string) string {
	if len(ua) > 512 {
		return ua[:512]
	}
	return ua
}

// mailbox shows the dev mailbox to clients on this machine only, and only
// when they connect directly: its links work, and must not be readable from
// elsewhere, not even through a reverse proxy on this machine.
func (s *Server) mailbox(w http.ResponseWriter, r *http.Request) {
	if !s.Mailbox || !clientip.Direct(r) {
		http.NotFound(w, r)
		return
	}
	msgs, err := mail.MailboxMessages(r.Context(), s.DB, 100)
	if err != nil {
		s.fault(w, r, "read mailbox", err, "The mailbox could not be read.")
		return
	}
	l := lang(r, "")
	s.render(w, r, http.StatusOK, "mailbox", map[string]any{"Lang": l, "Title": i18n.T(l, "page.mailbox.title"), "Messages": msgs})
}

// mailboxFile downloads an attachment of a dev-mailbox message, to the
// same clients as mailbox.
func (s *Server) mailboxFile(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if !s.Mailbox || !clientip.Direct(r) || err != nil || n < 0 {
		http.NotFound(w, r)
		return
	}
	a, data, err := mail.MailboxFile(r.Context(), s.DB, r.PathValue("id"), n)
	if errs.Is(err, errs.KindNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.fault(w, r, "read mailbox attachment", err, "The attachment could not be read.")
		return
	}
	httpx.Attachment(w, a.ContentType, a.Filename)
	_, _ = w.Write(data)
}

// fault answers an error that is not the request's fault: a database that
// cannot be reached, or whose disk is full, as a 503 with a time to try
// again; anything else as a 500. Either way it is logged, and the person
// reads msg, which tells nothing about the cause.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, what string, err error, msg string) {
	if errs.Is(store.Unavailable(err), errs.KindUnavailable) {
		s.Log.WarnContext(r.Context(), what+": the database is unavailable", "err", err)
		w.Header().Set("Retry-After", httpx.RetryAfter)
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	s.Log.ErrorContext(r.Context(), what, "err", err)
	http.Error(w, msg, http.StatusInternalServerError)
}
