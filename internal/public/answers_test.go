package public

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/preferences"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// post sends body to path as a form of contentType, from the client
// address ip, with the session cookie when session is not "".
func (fs *fuzzSite) post(path, contentType, body, ip, session string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.RemoteAddr = ip + ":40000"
	if session != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
	}
	return fs.serve(req)
}

// get fetches path from the client address ip.
func (fs *fuzzSite) get(path, ip string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	req.RemoteAddr = ip + ":40000"
	return fs.serve(req)
}

const form = "application/x-www-form-urlencoded"

// TestPostsOverTheirLimitAre413: every public form read with a limit
// answers a body over it with 413 and the page that says so, naming the
// limit, and uses nothing of it: a one-click unsubscribe with a valid
// link and an oversized body opts no one out.
func TestPostsOverTheirLimitAre413(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		fs := newSite(t, db)
		pad := func(n int) string { return strings.Repeat("a", n) }
		multipart := "--x\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--x\r\n" +
			"Content-Disposition: form-data; name=\"pad\"\r\n\r\n" + pad(16<<10) + "\r\n--x--\r\n"
		writes, optIns, _, _, _ := fs.state(t)
		for _, c := range []struct {
			name, path, contentType, body, session, limit string
		}{
			{"the preferences page", "/p", form, "optout=1&pad=" + pad(64<<10), fs.links[auth.PurposePreferencesSession], "64 KiB"},
			{"asking for a new link", "/u", form, "email=fuzz%40example.com&pad=" + pad(4<<10), "", "4 KiB"},
			{"a one-click unsubscribe", "/u/" + fs.links[auth.PurposeUnsubscribe], form, "List-Unsubscribe=One-Click&pad=" + pad(16<<10), "", "16 KiB"},
			{"a one-click unsubscribe in multipart", "/u/" + fs.links[auth.PurposeUnsubscribe], "multipart/form-data; boundary=x", multipart, "", "16 KiB"},
			{"a download of one's data", "/p/export/" + fs.links[auth.PurposeExport], form, "format=json&pad=" + pad(4<<10), "", "4 KiB"},
		} {
			rec := fs.post(c.path, c.contentType, c.body, "198.51.100.1", c.session)
			if body := rec.Body.String(); rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "Too much data") ||
				!strings.Contains(body, "more than "+c.limit) {
				t.Errorf("%s: %d %.400s", c.name, rec.Code, body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("%s: Content-Type %q", c.name, ct)
			}
		}
		if w, o, _, _, _ := fs.state(t); w != writes || o != optIns {
			t.Fatalf("posts over their limit wrote something: %d writes (was %d), %d opt-in changes (was %d)", w, writes, o, optIns)
		}
	})
}

// TestNewLinkAnswersAlike: asking for a new preferences link answers a
// contact's address and an unknown one with the same bytes, the same
// redirect, and the same work before answering: one job each, nothing
// read or written about the contact. The job then emails the contact
// alone, and forgets the address typed in.
func TestNewLinkAnswersAlike(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		fs := newSite(t, db)
		ctx := context.Background()
		rows := func() map[string]int {
			out := map[string]int{}
			for _, table := range []string{"jobs", "outbox", "tokens", "contacts", "opt_in_changes", "ledger_events"} {
				var n int
				if err := db.Read.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
					t.Fatal(err)
				}
				out[table] = n
			}
			return out
		}
		ask := func(email string) (*httptest.ResponseRecorder, map[string]int) {
			before := rows()
			rec := fs.post("/u?lang=sv", form, url.Values{"email": {email}}.Encode(), "198.51.100.2", "")
			after := rows()
			for k := range after {
				after[k] -= before[k]
			}
			return rec, after
		}
		known, knownWrote := ask("Fuzz@Example.com")
		unknown, unknownWrote := ask("nobody@example.com")
		if known.Code != http.StatusSeeOther || known.Header().Get("Location") != "/u/sent?lang=sv" {
			t.Fatalf("a contact's address: %d %q", known.Code, known.Header().Get("Location"))
		}
		if unknown.Code != known.Code || !maps.EqualFunc(unknown.Header(), known.Header(), func(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }) ||
			unknown.Body.String() != known.Body.String() {
			t.Fatalf("the answers differ:\n%d %v %s\n%d %v %s", known.Code, known.Header(), known.Body, unknown.Code, unknown.Header(), unknown.Body)
		}
		want := map[string]int{"jobs": 1, "outbox": 0, "tokens": 0, "contacts": 0, "opt_in_changes": 0, "ledger_events": 0}
		if !maps.Equal(knownWrote, want) || !maps.Equal(unknownWrote, want) {
			t.Fatalf("before answering, a contact's address wrote %v and an unknown one %v; want %v each", knownWrote, unknownWrote, want)
		}

		runner := jobs.NewRunner(db, slog.New(slog.DiscardHandler))
		runner.HandlePersonal(preferences.SendLinkJob, fs.s.Prefs.RunSendLink)
		if n, err := runner.RunDue(ctx); err != nil || n != 2 {
			t.Fatalf("ran %d jobs: %v", n, err)
		}
		var to, kind, language string
		if err := db.Read.QueryRow(`SELECT contact_id, kind, language FROM outbox`).Scan(&to, &kind, &language); err != nil {
			t.Fatalf("the email of the new link: %v", err)
		}
		if to != fs.contact || kind != "confirmation" || language != "sv" {
			t.Fatalf("the new link went to %s as %s in %q", to, kind, language)
		}
		var kept int
		if err := db.Read.QueryRow(`SELECT count(*) FROM jobs WHERE payload LIKE '%example.com%'`).Scan(&kept); err != nil || kept != 0 {
			t.Fatalf("%d finished jobs keep the address typed in (%v)", kept, err)
		}
	})
}

// TestPostsRedirect: every form post of the public flow redirects (303)
// to a page that says what happened: closing the preferences page leads
// to the page that says it is closed (and the session is over), and a
// confirmation post with a link that cannot be used (an emailed request's
// as every other) leads to the one page for such links.
func TestPostsRedirect(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		fs := newSite(t, db)
		session := fs.links[auth.PurposePreferencesSession]
		rec := fs.post("/p/end?lang=nl", form, "", "198.51.100.3", session)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/p/ended?lang=nl" {
			t.Fatalf("POST /p/end: %d %q", rec.Code, rec.Header().Get("Location"))
		}
		if c := rec.Result().Cookies(); len(c) != 1 || c[0].Name != sessionCookie || c[0].MaxAge >= 0 {
			t.Fatalf("POST /p/end leaves the cookie: %v", c)
		}
		if rec := fs.get("/p/ended?lang=nl", "198.51.100.3"); rec.Code != 200 || !strings.Contains(rec.Body.String(), "Gesloten") {
			t.Fatalf("GET /p/ended: %d %s", rec.Code, rec.Body)
		}
		req := httptest.NewRequest("GET", "/p", nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
		if rec := fs.serve(req); strings.Contains(rec.Body.String(), `id="optout"`) {
			t.Fatal("the session still opens the page once closed")
		}
		for _, path := range []string{"/r/", "/confirm/", "/p/confirm/"} {
			rec := fs.post(path+strings.Repeat("A", 43)+"?lang=sv", form, "", "198.51.100.3", "")
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/p/link-invalid?lang=sv" {
				t.Errorf("POST %s with a link that cannot be used: %d %q", path, rec.Code, rec.Header().Get("Location"))
			}
		}
	})
}

// TestRateLimitsSayWhenToRetry: a request refused by a rate limit says in
// Retry-After how many seconds until the limit lets it through, as the
// limiter counts it (rounded up), for the pages' limit, the new-link limit
// and the per-contact limit of download links.
func TestRateLimitsSayWhenToRetry(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		fs := newSite(t, db)
		at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
		now := func() time.Time { return at }
		fs.s.limiter = newLimiter(6, 1, time.Minute) // one page every 10 s
		fs.s.limiter.Now = now
		fs.s.newLink.ip = newLimiter(7, 1, time.Hour) // one every 8.57 s
		fs.s.newLink.ip.Now = now
		fs.s.exportLinks.nowFunc = now
		retryAfter := func(rec *httptest.ResponseRecorder, want string) {
			t.Helper()
			if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != want {
				t.Fatalf("%d, Retry-After %q, want 429 and %q: %s", rec.Code, rec.Header().Get("Retry-After"), want, rec.Body)
			}
		}
		if rec := fs.get("/u/sent", "198.51.100.4"); rec.Code != 200 {
			t.Fatalf("first page: %d", rec.Code)
		}
		retryAfter(fs.get("/u/sent", "198.51.100.4"), "10")
		at = at.Add(4 * time.Second)
		retryAfter(fs.get("/u/sent", "198.51.100.4"), "6")

		fs.s.limiter = newLimiter(1000, 1000, time.Minute) // the pages' limit is not the one tested below
		ask := func() *httptest.ResponseRecorder {
			return fs.post("/u", form, "email=nobody%40example.com", "198.51.100.5", "")
		}
		if rec := ask(); rec.Code != http.StatusSeeOther {
			t.Fatalf("first new link: %d", rec.Code)
		}
		retryAfter(ask(), "9")

		session := fs.links[auth.PurposePreferencesSession]
		for i := range exportLinksPerContact {
			if rec := fs.post("/p/export", form, "", "198.51.100.6", session); rec.Code != http.StatusSeeOther {
				t.Fatalf("download link %d: %d %s", i+1, rec.Code, rec.Body)
			}
		}
		retryAfter(fs.post("/p/export", form, "", "198.51.100.6", session), "3600")
		at = at.Add(15 * time.Minute)
		retryAfter(fs.post("/p/export", form, "", "198.51.100.6", session), "2700")
	})
}
