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
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webform"
	"github.com/consentry/consentry/internal/webform/webformtest"
)

// webformServer is the public server with a webform service on db, and the
// form of webformtest.Form.
func webformServer(t testing.TB, db *store.DB) (*Server, *webform.Webform) {
	forms := webformtest.New(db)
	w := webformtest.Form(t, forms)
	s, err := New(&Server{DB: db, OptIn: forms.OptIn, Webforms: forms, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s, w
}

// send posts form to path from the client address ip, as a browser on
// another site would, and returns the status and body.
func send(s *Server, path, ip string, form url.Values) (int, string, http.Header) {
	req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://acme.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("User-Agent", "Mozilla/5.0 (test)")
	req.RemoteAddr = ip + ":40000"
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if loc := rec.Header().Get("Location"); rec.Code == http.StatusSeeOther && strings.HasPrefix(loc, "/f/sent?") {
		// The thanks is a page of its own (post/redirect/get): what the
		// browser shows is what the redirect leads to.
		rec = httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", loc, nil))
	}
	return rec.Code, rec.Body.String(), rec.Header()
}

func TestWebformPage(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s, w := webformServer(t, db)
		// A purpose's default never pre-checks a box on a form (R12).
		yes := true
		for _, p := range []string{w.Consents[0].Purpose, w.Marketing.Purpose} {
			if _, err := s.Webforms.Consent.UpdatePurpose(context.Background(), audit.Actor{Kind: "user"}, p, consent.PurposeInput{DefaultSelected: &yes}); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct{ path, lang, want string }{
			{"/f/" + w.ID, "", `<label for="wf`},
			{"/f/signup?lang=sv", "", "E-postadress"},
			{"/f/" + w.ID + "?lang=nl", "sv", "Voornaam"},
		} {
			req := httptest.NewRequest("GET", c.path, nil)
			req.Header.Set("Accept-Language", c.lang)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			body := rec.Body.String()
			if rec.Code != 200 || !strings.Contains(body, c.want) {
				t.Fatalf("GET %s: %d %s", c.path, rec.Code, body)
			}
			for _, never := range []string{"<script", " checked"} {
				if strings.Contains(body, never) {
					t.Fatalf("GET %s has %q", c.path, never)
				}
			}
			if rec.Header().Get("Content-Security-Policy") == "" {
				t.Fatal("no CSP")
			}
		}
		if _, err := s.Webforms.Update(context.Background(), audit.Actor{Kind: "user"}, w.ID, []byte(`{"redirect_url": "https://acme.example/thanks?from=form"}`)); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", "/f/"+w.ID, nil))
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://acme.example;") {
			t.Fatalf("CSP of a form that redirects: %s", csp)
		}
		if code, _, h := send(s, "/f/"+w.ID, "198.51.100.1", url.Values{"email": {"r@example.com"}}); code != 303 || h.Get("Location") != "https://acme.example/thanks?from=form" {
			t.Fatalf("redirect: %d %v", code, h)
		}
		req := httptest.NewRequest("GET", "/f/nothing-here", nil)
		req.Header.Set("Accept-Language", "sv")
		rec = httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 404 || !strings.Contains(rec.Body.String(), "Formuläret hittades inte") {
			t.Fatalf("unknown form: %d %s", rec.Code, rec.Body.String())
		}
	})
}

// TestWebformPostAnswersAlike: a new address, a known one, a honeypot hit
// and an address over its limit get the same page, from another site,
// and none of them sooner than the quantum that evens out their time
// (the work behind each differs).
func TestWebformPostAnswersAlike(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s, w := webformServer(t, db)
		path := "/f/" + w.ID
		full := func(email string) url.Values {
			return url.Values{"email": {email}, "first_name": {"Ann"}, "marketing.checked": {"yes"}, "marketing.version": {"1"},
				"consents[0].checked": {"yes"}, "lists[0].checked": {"yes"}}
		}
		evened := func(what string, post func()) {
			start := time.Now()
			post()
			if took := time.Since(start); took < webformQuantum {
				t.Errorf("%s: answered after %v, before the quantum of %v", what, took, webformQuantum)
			}
		}
		var code int
		var want string
		evened("new address", func() { code, want, _ = send(s, path, "198.51.100.1", full("new@example.com")) })
		if code != 200 || !strings.Contains(want, "Thank you") {
			t.Fatalf("new address: %d %s", code, want)
		}
		// The post itself redirects to the thanks, so a reload posts
		// nothing again.
		req := httptest.NewRequest("POST", path, strings.NewReader(full("other@example.com").Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = "198.51.100.3:40000"
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/f/sent?lang=en" {
			t.Fatalf("the post answered %d, Location %q", rec.Code, rec.Header().Get("Location"))
		}
		rows := webformtest.Rows(t, db)
		for i := 0; i < addressPosts-1; i++ { // the limit counts the first post too
			var body string
			evened("known address", func() { code, body, _ = send(s, path, "198.51.100.2", full("NEW@example.com")) })
			if code != 200 || body != want {
				t.Fatalf("known address: %d %s", code, body)
			}
		}
		if webformtest.Rows(t, db) == rows {
			t.Fatal("known address wrote nothing")
		}
		rows = webformtest.Rows(t, db)
		hp := full("bot@example.com")
		hp.Set("website", "https://spam.example")
		for name, form := range map[string]url.Values{"over the address limit": full("new@example.com"), "honeypot": hp} {
			var body string
			evened(name, func() { code, body, _ = send(s, path, "198.51.100.3", form) })
			if code != 200 || body != want {
				t.Fatalf("%s: %d %s", name, code, body)
			}
		}
		if webformtest.Rows(t, db) != rows {
			t.Fatal("a limited address or a honeypot hit wrote something")
		}
	})
}

func TestWebformPostErrors(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s, w := webformServer(t, db)
		path := "/f/" + w.ID
		rows := webformtest.Rows(t, db)
		code, body, _ := send(s, path+"?lang=sv", "198.51.100.1", url.Values{"email": {"nope"}, "first_name": {"Ann"}, "marketing.checked": {"yes"}})
		if code != 400 {
			t.Fatalf("bad email: %d", code)
		}
		for _, want := range []string{`aria-describedby="wf` + w.ID[len(w.ID)-8:] + `-email-error"`, `role="alert">Ange en giltig e-postadress`,
			`value="Ann"`, `action="/f/` + w.ID + `?lang=sv"`} {
			if !strings.Contains(body, want) {
				t.Fatalf("error page lacks %s:\n%s", want, body)
			}
		}
		if code, body, _ := send(s, path, "198.51.100.1", url.Values{"website": {""}}); code != 400 || !strings.Contains(body, "Please fill in this field.") {
			t.Fatalf("no email: %d %s", code, body)
		}
		big := url.Values{"email": {"a@example.com"}, "first_name": {strings.Repeat("x", maxWebformBody)}}
		if code, body, _ := send(s, path, "198.51.100.1", big); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "more than 64 KiB") {
			t.Fatalf("too large: %d %s", code, body)
		}
		if webformtest.Rows(t, db) != rows {
			t.Fatal("bad posts wrote something")
		}
		if code, _, _ := send(s, "/f/nothing-here", "198.51.100.1", url.Values{"email": {"a@example.com"}}); code != 404 {
			t.Fatalf("unknown form: %d", code)
		}
	})
}

// TestWebformRateLimitPerIP: past the limit, a client address gets a 429
// page for webform posts, saying in Retry-After when the next post is let
// through, while the other pages still answer it.
func TestWebformRateLimitPerIP(t *testing.T) {
	db := storetest.OpenSQLite(t)
	s, w := webformServer(t, db)
	s.webform.ip = newLimiter(4, 2, time.Minute) // a post every 15 s
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	s.webform.ip.Now = func() time.Time { return at }
	form := func(i int) url.Values { return url.Values{"email": {string(rune('a'+i)) + "@example.com"}} }
	for i := range 2 {
		if code, _, _ := send(s, "/f/"+w.ID, "198.51.100.9", form(i)); code != 200 {
			t.Fatalf("post %d: %d", i, code)
		}
	}
	rows := webformtest.Rows(t, db)
	code, body, h := send(s, "/f/"+w.ID, "198.51.100.9", form(3))
	if code != http.StatusTooManyRequests || !strings.Contains(body, "Too many submissions") || h.Get("Retry-After") != "15" {
		t.Fatalf("over the limit: %d, Retry-After %q: %s", code, h.Get("Retry-After"), body)
	}
	if webformtest.Rows(t, db) != rows {
		t.Fatal("a limited post wrote something")
	}
	if code, _, _ := send(s, "/f/"+w.ID, "198.51.100.10", form(4)); code != 200 {
		t.Fatalf("another address: %d", code)
	}
	req := httptest.NewRequest("GET", "/f/"+w.ID, nil)
	req.RemoteAddr = "198.51.100.9:1"
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("the form page for the limited address: %d", rec.Code)
	}
}

// TestWebformRefusesMultiLineNames: a first name from a public form is
// written into the double opt-in email sent to whatever address the form
// gave; one with a line break (a paragraph with a link of the sender's
// choosing) or an invisible bidi override is refused next to its field,
// and nothing is written or emailed.
func TestWebformRefusesMultiLineNames(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s, w := webformServer(t, db)
		path := "/f/" + w.ID
		rows := webformtest.Rows(t, db)
		oneLine, invisible := "Please write this on one line, without line breaks.", "This answer contains invisible or control characters."
		for name, c := range map[string]struct{ first, says string }{
			"paragraph":     {"Ann\r\n\r\nYour account will be closed. Keep it at https://evil.example/login\r\n\r\nRegards", oneLine},
			"line feed":     {"Ann\nBerg", oneLine},
			"bidi override": {"Ann\u202egnp.exe", invisible},
			"zero width":    {"A\u200bnn", invisible},
			"tab":           {"Ann\tBerg", invisible},
		} {
			form := url.Values{"email": {"victim@example.com"}, "first_name": {c.first}, "marketing.checked": {"yes"}, "marketing.version": {"1"}}
			code, body, _ := send(s, path, "198.51.100.1", form)
			if code != 400 || !strings.Contains(body, `id="wf`+w.ID[len(w.ID)-8:]+`-first_name-error" role="alert">`+c.says) {
				t.Fatalf("%s: %d\n%s", name, code, body)
			}
			if strings.Contains(body, "Thank you") {
				t.Fatalf("%s: the post was taken", name)
			}
		}
		if webformtest.Rows(t, db) != rows {
			t.Fatal("a refused post wrote something")
		}
		var queued int
		if err := db.Read.QueryRowContext(context.Background(), `SELECT count(*) FROM outbox`).Scan(&queued); err != nil || queued != 0 {
			t.Fatalf("emails queued: %d %v", queued, err)
		}
		// A name on one line, with letters beyond A to Z, is taken.
		if code, body, _ := send(s, path, "198.51.100.1", url.Values{"email": {"asa@example.com"}, "first_name": {"Åsa-Lena O'Brien"}}); code != 200 {
			t.Fatalf("a plain name: %d %s", code, body)
		}
	})
}

// TestWebformShowsEveryErrorAtOnce: a post with several bad answers is
// shown again with every error at once, each next to its field and tied
// to it (aria-describedby, aria-invalid), with what was typed and ticked
// kept; each consent box says one sentence, its consent text, and nothing
// is written.
func TestWebformShowsEveryErrorAtOnce(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		s, w := webformServer(t, db)
		if _, err := s.Webforms.Update(context.Background(), audit.Actor{Kind: "user"}, w.ID, []byte(`{"fields":[{"name":"email"},{"name":"first_name","required":true},
			{"name":"last_name"},{"name":"phone"}]}`)); err != nil {
			t.Fatal(err)
		}
		rows := webformtest.Rows(t, db)
		code, body, _ := send(s, "/f/"+w.ID, "198.51.100.1", url.Values{"email": {"nope"}, "first_name": {""}, "last_name": {"Berg"},
			"phone": {"call me"}, "consents[0].checked": {"yes"}, "consents[0].version": {"1"}})
		if code != 400 {
			t.Fatalf("bad post: %d %s", code, body)
		}
		id := "wf" + w.ID[len(w.ID)-8:] + "-"
		for field, says := range map[string]string{"email": "Please enter a valid email address", "first_name": "Please fill in this field.",
			"phone": "Please enter a phone number"} {
			for _, want := range []string{`aria-invalid="true" aria-describedby="` + id + field + `-error"`,
				`<span class="consentry-error" id="` + id + field + `-error" role="alert">` + says} {
				if !strings.Contains(body, want) {
					t.Fatalf("%s: the page lacks %s:\n%s", field, want, body)
				}
			}
		}
		for _, want := range []string{`value="nope"`, `value="Berg"`, `value="call me"`, `name="consents[0].checked" value="yes" checked`,
			`<label for="` + id + `consents0">We may share your name and address with our partners.</label>`} {
			if !strings.Contains(body, want) {
				t.Fatalf("the page lacks %s:\n%s", want, body)
			}
		}
		if strings.Contains(body, ">Share with partners<") || strings.Contains(body, "Yes, send me news and offers by email") {
			t.Fatalf("a consent box says more than its consent text:\n%s", body)
		}
		if webformtest.Rows(t, db) != rows {
			t.Fatal("a bad post wrote something")
		}
	})
}
