package app_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestSecurityHeadersOnEveryAnswer: API answers (a success and an error),
// redirects of the admin UI and of the public pages, and the front door,
// all carry a Content-Security-Policy that forbids framing, a
// Referrer-Policy, nosniff and no-store.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"hedda@example.com"}`, 201, &c)
		var link struct{ URL string }
		e.api("POST", "/api/v1/contacts/"+c.ID+"/preferences-link", "", 201, &link)
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		cases := []struct {
			name, method, url string
			auth              bool
			status            int
			csp               string
		}{
			{"API 200", "GET", "/api/v1/contacts/" + c.ID, true, 200, "default-src 'none'; frame-ancestors 'none'"},
			{"API 401", "GET", "/api/v1/contacts/" + c.ID, false, 401, "default-src 'none'; frame-ancestors 'none'"},
			{"API 404", "GET", "/api/v1/nothing-here", true, 404, "default-src 'none'; frame-ancestors 'none'"},
			{"admin redirect", "GET", "/admin/contacts", false, 303, "frame-ancestors 'none'"},
			{"front door", "GET", "/", false, 303, "frame-ancestors 'none'"},
			{"public redirect", "GET", strings.TrimPrefix(link.URL, e.srv.URL), false, 303, "frame-ancestors 'none'"},
			{"public 404", "GET", "/f/no-such-form", false, 404, "frame-ancestors 'none'"},
		}
		for _, tc := range cases {
			req, _ := http.NewRequest(tc.method, e.srv.URL+tc.url, nil)
			if tc.auth {
				req.Header.Set("Authorization", "Bearer "+e.token)
			}
			res, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("%s: %d", tc.name, res.StatusCode)
			}
			h := res.Header
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, tc.csp) || !strings.HasPrefix(csp, "default-src 'none'") {
				t.Errorf("%s: Content-Security-Policy %q", tc.name, csp)
			}
			if h.Get("Referrer-Policy") == "" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: headers %v", tc.name, h)
			}
		}
	})
}

// stylesheetLink finds a page's stylesheet link.
var stylesheetLink = regexp.MustCompile(`<link rel="stylesheet" href="([^"]+)">`)

// TestPublicPagesLoadTheirStylesheet: every kind of public page (a hosted
// webform, a page that answers a link, one that answers a bad link, a 404)
// has a Content-Security-Policy that allows the service's stylesheet and
// no inline style, holds no inline style, and links the stylesheet, which
// is served as CSS that the browser keeps and revalidates (ETag,
// no-cache, 304), without counting against the pages' rate limit.
func TestPublicPagesLoadTheirStylesheet(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		var form struct{ ID string }
		e.api("POST", "/api/v1/webforms", `{"name":"signup","title":"Sign up","fields":[{"name":"email"}],
			"privacy_policy_url":"https://acme.example/privacy"}`, 201, &form)
		var css string
		for _, path := range []string{"/f/" + form.ID, "/u/sent", "/p/not-a-link", "/confirm/not-a-link", "/f/no-such-form"} {
			res, err := http.Get(e.srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			body := string(b)
			csp := res.Header.Get("Content-Security-Policy")
			if res.StatusCode >= 500 || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "style-src 'self'") {
				t.Errorf("%s: %d, Content-Security-Policy %q", path, res.StatusCode, csp)
			}
			if strings.Contains(body, "<style") || strings.Contains(body, " style=") {
				t.Errorf("%s has an inline style: %s", path, body)
			}
			m := stylesheetLink.FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("%s links no stylesheet: %s", path, body)
			}
			if css != "" && m[1] != css {
				t.Errorf("%s links %s, another page %s", path, m[1], css)
			}
			css = m[1]
		}
		res, err := http.Get(e.srv.URL + css)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		etag := res.Header.Get("ETag")
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/css; charset=utf-8" || etag == "" ||
			res.Header.Get("Cache-Control") != "no-cache" || !strings.Contains(string(b), ".consentry-webform") {
			t.Fatalf("%s: %d %v", css, res.StatusCode, res.Header)
		}
		// More than the pages' limit allows in a burst: each is answered.
		for i := range 60 {
			req, _ := http.NewRequest("GET", e.srv.URL+css, nil)
			req.Header.Set("If-None-Match", etag)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusNotModified {
				t.Fatalf("request %d for the unchanged stylesheet: %d", i+1, res.StatusCode)
			}
		}
		if res, err := http.Get(e.srv.URL + "/static/nothing.css"); err != nil || res.StatusCode != 404 {
			t.Fatalf("an unknown file: %v %v", res, err)
		}
	})
}
