package public

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/export"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/inbound"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/preferences"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webform/webformtest"
)

// fuzzSite is the public server on a database with one contact, and a
// valid link of each kind for that contact.
type fuzzSite struct {
	db      *store.DB
	s       *Server
	contact string
	links   map[string]string // token purpose: secret
}

// newFuzzSite is the site on a fresh SQLite database, for a fuzz target.
func newFuzzSite(f *testing.F) *fuzzSite { return newSite(f, storetest.OpenSQLite(f)) }

// newSite is the site on db, for a test on each database.
func newSite(f testing.TB, db *store.DB) *fuzzSite {
	log := slog.New(slog.DiscardHandler)
	cs := consent.NewService(db)
	people := contact.NewService(db, cs)
	ls := &lists.Service{DB: db, Now: time.Now}
	people.Lists = func(ctx context.Context) (filter.Lists, error) { return ls.Names(ctx) }
	tmpl, err := mail.NewTemplates()
	if err != nil {
		f.Fatal(err)
	}
	prefs := &preferences.Service{DB: db, Consent: cs, Contacts: people, Lists: ls, Log: log, Now: time.Now, BaseURL: "http://x", Mail: tmpl,
		Exports: &export.Service{DB: db, Contacts: people, Now: time.Now}}
	s, err := New(&Server{DB: db, Log: log, Prefs: prefs, Inbound: &inbound.Service{DB: db, Mail: tmpl, Now: time.Now},
		OptIn: &optin.Service{DB: db, Consent: cs, Log: log, Now: time.Now, BaseURL: "http://x", Mail: tmpl}})
	if err != nil {
		f.Fatal(err)
	}
	s.limiter = newLimiter(1<<30, 1<<30, time.Minute) // the fuzzer is one client sending fast
	ctx := context.Background()
	email := "fuzz@example.com"
	c, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: &email}, OptInStatus: contactstate.SingleOptInUser,
		Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := ls.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("News")}); err != nil {
		f.Fatal(err)
	}
	if _, err := prefs.SetConfig(ctx, preferences.Config{Offers: []preferences.Offer{{Purpose: "E-marketing"}}, AllowStopProcessing: true, AllowErasure: true}, audit.Actor{Kind: "user"}); err != nil {
		f.Fatal(err)
	}
	site := &fuzzSite{db: db, s: s, contact: c.ID, links: map[string]string{}}
	err = db.Write(ctx, func(tx *store.Tx) error {
		for _, p := range []string{auth.PurposePreferences, auth.PurposeUnsubscribe, auth.PurposePreferencesSession, auth.PurposeExport} {
			secret, _, err := auth.IssueContactToken(tx, p, c.ID, "", time.Now().Add(time.Hour), time.Now())
			if err != nil {
				return err
			}
			site.links[p] = secret
		}
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	return site
}

func ptr[T any](v T) *T { return &v }

// state sums what any request could write.
func (fs *fuzzSite) state(t testing.TB) (writes, optIns, ledger, changes, confirmations int) {
	err := fs.db.Read.QueryRow(`SELECT (SELECT count(*) FROM tokens) + (SELECT count(*) FROM tokens WHERE used_at IS NOT NULL)
		+ (SELECT count(*) FROM consent_records) + (SELECT count(*) FROM opt_in_changes) + (SELECT count(*) FROM preference_changes)
		+ (SELECT count(*) FROM outbox) + (SELECT count(*) FROM list_subscriptions)
		+ (SELECT count(*) FROM subject_requests) + (SELECT count(*) FROM request_tokens WHERE used_at IS NOT NULL),
		(SELECT count(*) FROM opt_in_changes), (SELECT count(*) FROM ledger_events),
		(SELECT count(*) FROM preference_changes), (SELECT count(*) FROM outbox WHERE kind = 'confirmation')`).
		Scan(&writes, &optIns, &ledger, &changes, &confirmations)
	if err != nil {
		t.Fatal(err)
	}
	return
}

func (fs *fuzzSite) serve(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	fs.s.ServeHTTP(rec, req)
	return rec
}

var fuzzRoutes = []string{"/confirm/", "/p/", "/u/", "/p/confirm/", "/p/export/", "/r/"}

// FuzzTokenRoutes sends arbitrary tokens to every route that takes one:
// never a server error, and an unknown token writes nothing.
func FuzzTokenRoutes(f *testing.F) {
	fs := newFuzzSite(f)
	for _, seed := range []string{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x", "%00", "../../etc", "é", ""} {
		for route := range fuzzRoutes {
			f.Add(true, uint8(route), seed)
			f.Add(false, uint8(route), seed)
		}
	}
	f.Fuzz(func(t *testing.T, post bool, route uint8, token string) {
		before, _, _, _, _ := fs.state(t)
		method, body := "GET", ""
		if post {
			method, body = "POST", "List-Unsubscribe=One-Click"
		}
		req := httptest.NewRequest(method, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.URL = &url.URL{Path: fuzzRoutes[int(route)%len(fuzzRoutes)] + token}
		rec := fs.serve(req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d", method, req.URL.Path, rec.Code)
		}
		if after, _, _, _, _ := fs.state(t); after != before {
			t.Fatalf("%s %s wrote something", method, req.URL.Path)
		}
	})
}

// FuzzOneClick posts arbitrary bodies to the one-click unsubscribe address,
// with a valid token or an arbitrary one: never a server error, and an
// opt-out is written whole (status, history, ledger event) or not at all.
func FuzzOneClick(f *testing.F) {
	fs := newFuzzSite(f)
	for _, seed := range []string{"List-Unsubscribe=One-Click", "List-Unsubscribe=one-click", "", "%zz", "List-Unsubscribe=One-Click&List-Unsubscribe=x", strings.Repeat("a=b&", 2000)} {
		f.Add(true, "", seed)
		f.Add(false, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", seed)
	}
	f.Fuzz(func(t *testing.T, valid bool, token, body string) {
		if valid {
			token = fs.links[auth.PurposeUnsubscribe]
		}
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.URL = &url.URL{Path: "/u/" + token}
		if rec := fs.serve(req); rec.Code >= 500 {
			t.Fatalf("POST %q: %d", body, rec.Code)
		}
		_, optIns, ledger, _, _ := fs.state(t)
		var status string
		fs.db.Read.QueryRow(`SELECT opt_in_status FROM contacts WHERE id = $1`, fs.contact).Scan(&status)
		// The contact began single_opt_in_user with one change in the
		// ledger; an opt-out adds exactly one change and one event.
		if optIns != ledger || (status == contactstate.OptOutContact) != (optIns == 2) || optIns > 2 {
			t.Fatalf("half-written opt-out: status %s, %d changes, %d events", status, optIns, ledger)
		}
	})
}

// FuzzPreferencesPost posts arbitrary forms to the preferences page in a
// valid session: never a server error, nothing applied without the
// confirmation link, and every saved change complete (its pending row, its
// link and its email).
func FuzzPreferencesPost(f *testing.F) {
	fs := newFuzzSite(f)
	for _, seed := range []string{"action=save&optout=1", "action=stop", "action=erase", "consent.01930000-0000-7000-8000-000000000002=withdrawn&v.01930000-0000-7000-8000-000000000002=1",
		"consent.01930000-0000-7000-8000-000000000002=granted&v.01930000-0000-7000-8000-000000000002=99", "list=x", "consent.=&v.=", "%", "optout=1&list=" + strings.Repeat("z", 300), "",
		"action=correct&profile.first_name=Kim&profile.country=se", "action=correct&profile.email=x%40y.z", "action=correct&profile.phone=%0a",
		"action=correct&profile.=&profile.last_name=" + strings.Repeat("é", 300)} {
		f.Add(seed)
	}
	session := fs.links[auth.PurposePreferencesSession]
	f.Fuzz(func(t *testing.T, form string) {
		_, optIns, _, _, _ := fs.state(t)
		req := httptest.NewRequest("POST", "/p", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
		if rec := fs.serve(req); rec.Code >= 500 {
			t.Fatalf("POST %q: %d", form, rec.Code)
		}
		_, optInsAfter, _, changes, confirmations := fs.state(t)
		// Each email carries its change's link, whose token is issued when
		// it is sent (none is here), never before.
		var links, tokens int
		if err := fs.db.Read.QueryRow(`SELECT (SELECT count(*) FROM outbox o JOIN preference_changes c ON o.subject_id = c.id
			WHERE o.kind = 'confirmation' AND o.links LIKE '%' || $1 || '%' AND o.text_body LIKE '%/p/confirm/link-%'),
			(SELECT count(*) FROM tokens WHERE purpose = $1)`, auth.PurposePreferencesChange).Scan(&links, &tokens); err != nil {
			t.Fatal(err)
		}
		if optInsAfter != optIns || changes != confirmations || changes != links || tokens != 0 {
			t.Fatalf("POST %q: %d opt-in changes (was %d), %d pending changes, %d emails, %d with a link, %d tokens", form, optInsAfter, optIns, changes,
				confirmations, links, tokens)
		}
	})
}

// FuzzWebformPost sends arbitrary bodies to a webform: never a server
// error, and never half a submission. A post that is not taken writes
// nothing; one that is taken leaves the ledger matching the consent state,
// and every contact it set to single_opt_in_webform with an invitation and
// its email. A post about a known address (a contact who opted out) writes
// nothing to the contact, whatever it carries: only a held post with its
// confirmation email, whose link is made as it is sent.
func FuzzWebformPost(f *testing.F) {
	db := storetest.OpenSQLite(f)
	s, w := webformServer(f, db)
	s.webform.ip = newLimiter(1<<30, 1<<30, time.Minute) // the fuzzer is one client sending fast
	s.webform.address = newAddressLimiter(1<<30, time.Hour)
	s.webform.quantum = 0 // throughput, not the time of one answer
	ctx := context.Background()
	known, err := s.Webforms.Contacts.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("known@example.com"), FirstName: ptr("Kim")},
		Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := s.Webforms.Consent.SetOptIn(ctx, known.ID, consent.OptInInput{Status: contactstate.OptOutContact, Channel: consent.ChannelContact,
		Actor: consent.Actor{Kind: consent.ActorContact}, Evidence: consent.Evidence{Method: consent.MethodUnsubscribeLink}}); err != nil {
		f.Fatal(err)
	}
	// knownState is everything a post could change about the known contact.
	knownState := func(t testing.TB) string {
		var st string
		if err := db.Read.QueryRow(`SELECT c.first_name || '|' || c.last_name || '|' || c.opt_in_status || '|' || c.updated_at || '|' ||
			(SELECT count(*) FROM consent_records WHERE contact_id = c.id) || '|' || (SELECT count(*) FROM opt_in_changes WHERE contact_id = c.id) || '|' ||
			(SELECT count(*) FROM list_subscriptions WHERE contact_id = c.id) || '|' || (SELECT count(*) FROM optin_invitations WHERE contact_id = c.id) || '|' ||
			(SELECT count(*) FROM sensitive_values WHERE contact_id = c.id)
			FROM contacts c WHERE c.id = $1`, known.ID).Scan(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	knownBefore := knownState(f)
	for _, seed := range []string{
		"email=known%40example.com&first_name=Mallory&marketing.checked=yes&marketing.version=1&consents%5B0%5D.checked=yes&lists%5B0%5D.checked=yes",
		"email=KNOWN%40example.com&last_name=X",
		"email=known%40example.com",
		"email=a%40example.com&marketing.checked=yes&marketing.version=1&consents%5B0%5D.checked=yes&lists%5B0%5D.checked=yes&first_name=A",
		"email=A%40EXAMPLE.com&last_name=B&consents%5B0%5D.version=1",
		"email=b%40example.com&website=x",
		"email=c%40example.com&email=d%40example.com",
		"email=not-an-address&marketing.checked=yes",
		"email=e%40example.com&marketing.checked=on",
		"email=f%40example.com&consents%5B0%5D.checked=yes&consents%5B0%5D.version=99",
		"email=g%40example.com&consents%5B0%5D.checked=yes&consents%5B0%5D.version=-1",
		"email=h%40example.com&first_name=%00",
		"email=%ff%fe%40example.com",
		"%zz=%",
		"",
		"email=i%40example.com&phone=abc&country=Sweden",
		strings.Repeat("a", 70000),
	} {
		f.Add(seed, "application/x-www-form-urlencoded")
	}
	f.Add("--x\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nj@example.com\r\n--x--\r\n", "multipart/form-data; boundary=x")
	f.Add(`{"email": "k@example.com"}`, "application/json")
	f.Fuzz(func(t *testing.T, body, contentType string) {
		before := webformtest.Rows(t, db)
		req := httptest.NewRequest("POST", "/f/"+w.ID, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q: %d %s", body, rec.Code, rec.Body.String())
		}
		after := webformtest.Rows(t, db)
		if rec.Code != 200 && rec.Code != http.StatusSeeOther && after != before {
			t.Fatalf("%q: answered %d and wrote %d rows", body, rec.Code, after-before)
		}
		if st := knownState(t); st != knownBefore {
			t.Fatalf("%q: the known contact changed: %s, was %s", body, st, knownBefore)
		}
		// At most one held post pending per contact, each with its email.
		var twice, held, emails, tokens int
		if err := db.Read.QueryRow(`SELECT (SELECT count(*) FROM (SELECT contact_id FROM webform_confirmations WHERE status = 'pending'
				GROUP BY contact_id HAVING count(*) > 1) AS more),
			(SELECT count(*) FROM webform_confirmations WHERE status = 'pending'),
			(SELECT count(*) FROM outbox o JOIN webform_confirmations h ON o.subject_id = h.id WHERE h.status = 'pending' AND o.status = 'queued'
				AND o.kind = 'confirmation' AND o.links LIKE '%' || $1 || '%' AND o.text_body LIKE '%/f/confirm/link-%'),
			(SELECT count(*) FROM tokens WHERE purpose = $1)`, auth.PurposeWebformConfirmation).Scan(&twice, &held, &emails, &tokens); err != nil {
			t.Fatal(err)
		}
		if twice != 0 || held != emails || tokens != 0 {
			t.Fatalf("%q: %d contacts with two held posts pending, %d pending, %d with their email, %d tokens", body, twice, held, emails, tokens)
		}
		if after == before {
			return
		}
		rep, err := s.Webforms.Consent.VerifyLedger(ctx)
		if err != nil || !rep.OK {
			t.Fatalf("%q: ledger: %+v %v", body, rep, err)
		}
		var orphans int
		if err := db.Read.QueryRow(`SELECT count(*) FROM contacts c WHERE c.opt_in_status = 'single_opt_in_webform' AND NOT EXISTS (
			SELECT 1 FROM optin_invitations i JOIN outbox o ON o.subject_id = i.id WHERE i.contact_id = c.id)`).Scan(&orphans); err != nil || orphans != 0 {
			t.Fatalf("%q: %d contacts opted in without an invitation email (%v)", body, orphans, err)
		}
	})
}
