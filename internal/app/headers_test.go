package app_test

import (
	"net/http"
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
