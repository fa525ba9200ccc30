package public

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/preferences"
	"github.com/consentry/consentry/internal/store"
)

// The links in campaign messages (campaign.Links): unsubscribe, the
// preferences page, the message in the browser, and for tracked
// recipients the open pixel and each click. Each is signed for its
// recipient row; one that does not verify, or has expired, gets the page
// of every link that cannot be used (gone), but for the open pixel, which
// is always the image.

// campaignBypasses are the campaign posts that cross-origin protection
// lets through: the one-click unsubscribe is posted by mail providers'
// servers (RFC 8058), and the address's signature authorises it.
var campaignBypasses = []string{"POST /m/u/{rid}/{sig}"}

// campaignRoutes adds the campaign links' pages, when campaigns are wired.
func (s *Server) campaignRoutes() {
	if s.CampaignLinks == nil {
		return
	}
	s.mux.HandleFunc("GET /m/u/{rid}/{sig}", s.campaignUnsubscribePage)
	s.mux.HandleFunc("POST /m/u/{rid}/{sig}", s.campaignUnsubscribe)
	s.mux.HandleFunc("GET /m/u/done", s.campaignUnsubscribed)
	s.mux.HandleFunc("GET /m/p/{rid}/{sig}", s.campaignPreferences)
	s.mux.HandleFunc("GET /m/v/{rid}/{sig}", s.campaignView)
	s.mux.HandleFunc(trackingRoutes[0], s.campaignOpen)
	s.mux.HandleFunc(trackingRoutes[1], s.campaignClick)
}

// campaignTarget checks the request's link of kind and reads what it is
// about. With expires, a link past the setting unsubscribe_link_days
// cannot be used. ok is false after the page that says why was shown; a
// click is the number of the link, else 0.
//
// A link that cannot be used (its signature is not ours, its contact was
// erased, or it expired: the same answer, so that it tells nothing about
// an address) is answered 410 with the page every such link gets (gone);
// a post with one, the one-click unsubscribe that a mail provider's
// server sends and judges by its status alone, changes nothing, so that
// a forged, damaged or expired link never passes for an unsubscribe done.
func (s *Server) campaignTarget(w http.ResponseWriter, r *http.Request, kind string, expires bool) (*campaign.Target, int, bool) {
	rid, n, err := s.CampaignLinks.Check(r.Context(), kind, r.PathValue("rid"), r.PathValue("n"), r.PathValue("sig"))
	var t *campaign.Target
	if err == nil && expires {
		t, err = s.Campaigns.Lasting(r.Context(), rid)
	} else if err == nil {
		t, err = s.Campaigns.Target(r.Context(), rid)
	}
	if err != nil {
		s.linkFailed(w, r, "campaign link", err, campaign.ErrLinkExpired, campaign.ErrBadLink)
		return nil, 0, false
	}
	return t, n, true
}

func (s *Server) campaignUnsubscribePage(w http.ResponseWriter, r *http.Request) {
	t, _, ok := s.campaignTarget(w, r, campaign.LinkUnsubscribe, true)
	if !ok {
		return
	}
	l := lang(r, t.Language)
	q := i18n.T(l, "campaign.unsub.all")
	if len(t.Lists) > 0 {
		q = i18n.T(l, "campaign.unsub.lists", strings.Join(t.Lists, ", "))
	}
	manage, err := s.CampaignLinks.URL(r.Context(), campaign.LinkPreferences, t.Recipient, 0)
	if err != nil {
		s.fault(w, r, "campaign preferences link", err, i18n.T(l, "prefs.error"))
		return
	}
	s.render(w, r, http.StatusOK, "campaign_unsub", map[string]any{"Lang": l, "Title": i18n.T(l, "campaign.unsub.title"),
		"Question": q, "Manage": strings.TrimPrefix(manage, s.CampaignLinks.BaseURL)})
}

// campaignUnsubscribe is the one-click unsubscribe (RFC 8058) of a
// campaign message, and the post of its page's button, which then
// redirects to the page that says it is done.
func (s *Server) campaignUnsubscribe(w http.ResponseWriter, r *http.Request) {
	if !s.oneClickForm(w, r) {
		return
	}
	t, _, ok := s.campaignTarget(w, r, campaign.LinkUnsubscribe, true)
	if !ok {
		return
	}
	ev := s.evidence(r)
	linkEv := consent.Evidence{Method: consent.MethodUnsubscribeLink, IP: ev.IP, UserAgent: ev.UserAgent}
	err := s.Campaigns.Unsubscribe(r.Context(), t, linkEv, func(tx *store.Tx, contactID string, now time.Time) error {
		return s.Prefs.OptOutTx(tx, contactID, linkEv, now)
	})
	if err != nil {
		s.Log.ErrorContext(r.Context(), "campaign unsubscribe", "err", err)
		http.Error(w, "The unsubscribe could not be saved; try again.", http.StatusServiceUnavailable)
		return
	}
	if r.PostFormValue("page") == "1" {
		// A person clicked the page's button: the done page leads back to
		// their preferences, as the message's preferences link would.
		q := url.Values{}
		if s.openSessionFor(w, r, t.ContactID, "") {
			q.Set("back", "1")
		}
		q.Set("lang", lang(r, t.Language)) // the done page speaks as the page did
		done := "/m/u/done"
		if len(q) > 0 {
			done += "?" + q.Encode()
		}
		http.Redirect(w, r, done, http.StatusSeeOther)
		return
	}
	s.campaignUnsubscribed(w, r)
}

// campaignUnsubscribed says the unsubscribe is done; back=1 (set after a
// page session was opened) adds the way to the preferences page.
func (s *Server) campaignUnsubscribed(w http.ResponseWriter, r *http.Request) {
	l := lang(r, "")
	data := map[string]any{"Lang": l, "Title": i18n.T(l, "campaign.unsub.done.title"), "Text": i18n.T(l, "campaign.unsub.done.text")}
	if r.URL.Query().Get("back") == "1" {
		data["Back"] = backToPage(r, l, "/p#email")
	}
	s.render(w, r, http.StatusOK, "message", data)
}

// campaignPreferences opens the preferences page at its email section,
// as /u/{token} does.
func (s *Server) campaignPreferences(w http.ResponseWriter, r *http.Request) {
	t, _, ok := s.campaignTarget(w, r, campaign.LinkPreferences, true)
	if !ok {
		return
	}
	secret, expires, err := s.Prefs.OpenSessionFor(r.Context(), t.ContactID, "")
	if err != nil {
		s.linkFailed(w, r, "open preferences session", err, preferences.ErrNoSession)
		return
	}
	s.toSession(w, r, secret, expires, "/p#email")
}

// viewPolicy lets the operator's message show its images and styles, and
// nothing else: no script, no form, no frame.
const viewPolicy = "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; font-src https:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'; sandbox allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation"

func (s *Server) campaignView(w http.ResponseWriter, r *http.Request) {
	t, _, ok := s.campaignTarget(w, r, campaign.LinkView, true)
	if !ok {
		return
	}
	_, html, err := s.CampaignSender.View(r.Context(), t)
	if err != nil {
		s.linkFailed(w, r, "campaign view", err, campaign.ErrBadLink)
		return
	}
	w.Header().Set("Content-Security-Policy", viewPolicy)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte(html))
}

// trackingRoutes are the open pixel and the click redirect: each hit is
// an engagement event, so the request log keeps them at debug level.
var trackingRoutes = []string{"GET /m/o/{rid}/{sig}", "GET /m/c/{rid}/{n}/{sig}"}

// pixel is a transparent 1x1 GIF.
var pixel = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// campaignOpen answers the open pixel, recording an open for a tracked
// recipient. Whatever the link, the answer is the image.
func (s *Server) campaignOpen(w http.ResponseWriter, r *http.Request) {
	rid, _, err := s.CampaignLinks.Check(r.Context(), campaign.LinkOpen, r.PathValue("rid"), "", r.PathValue("sig"))
	if err == nil {
		s.Tracker.Record(rid, campaign.EventOpen, -1)
	}
	w.Header().Set("Content-Type", "image/gif")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(pixel)
}

// campaignClick records a click for a tracked recipient and redirects to
// the operator's link from the campaign's stored content.
func (s *Server) campaignClick(w http.ResponseWriter, r *http.Request) {
	t, n, ok := s.campaignTarget(w, r, campaign.LinkClick, false)
	if !ok {
		return
	}
	to, err := s.CampaignSender.ClickTarget(r.Context(), t, n)
	if err != nil {
		s.linkFailed(w, r, "campaign click", err, campaign.ErrBadLink)
		return
	}
	s.Tracker.Record(t.Recipient, campaign.EventClick, n)
	http.Redirect(w, r, to, http.StatusFound)
}
