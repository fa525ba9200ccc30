package httpx

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/errs"
)

func TestStatus(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{errs.Invalid("email", "bad"), 400},
		{errs.Required("email"), 400},
		{errs.NotFound("contact", ""), 404},
		{errs.NotFound("purpose", "purpose"), 422},
		{errs.Conflict("email_taken", "email", "taken"), 409},
		{errs.Refused("transition", "status", "no"), 422},
		{errs.Locked("locked", "locked"), 423},
		{&errs.Error{Kind: errs.KindUnauthorized}, 401},
		{&errs.Error{Kind: errs.KindForbidden}, 403},
		{errors.New("disk on fire"), 500},
		{&errs.Error{}, 500},
	}
	for _, c := range cases {
		if got := Status(c.err); got != c.want {
			t.Errorf("%v: %d, want %d", c.err, got, c.want)
		}
	}
}

// TestHeadersAndLog: the headers are on every answer, redirects and errors
// included, and the log names the route, never the path.
func TestHeadersAndLog(t *testing.T) {
	var logged bytes.Buffer
	mux := http.NewServeMux()
	mux.Handle("GET /go/{secret}", http.RedirectHandler("/there", http.StatusSeeOther))
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusTeapot) })
	h := Headers(Policy{CSP: "default-src 'none'", Referrer: "no-referrer"}, LogRequests(slog.New(slog.NewTextHandler(&logged, nil)), "page", LogAll, mux))
	for path, status := range map[string]int{"/go/s3cr3t": 303, "/fail": 418, "/nothing": 404} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != status {
			t.Fatalf("%s: %d", path, rec.Code)
		}
		for k, v := range map[string]string{"Content-Security-Policy": "default-src 'none'", "Referrer-Policy": "no-referrer",
			"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("%s: %s is %q", path, k, got)
			}
		}
	}
	if strings.Contains(logged.String(), "s3cr3t") || !strings.Contains(logged.String(), `route="GET /go/{secret}" status=303`) ||
		!strings.Contains(logged.String(), "status=418") {
		t.Fatalf("log: %s", logged.String())
	}
}

// TestQuietRoutesLogAtDebug: a quiet route's answers are logged at debug
// level only, unless it fails; other routes stay at info.
func TestQuietRoutesLogAtDebug(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /pixel/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "bad" {
			http.Error(w, "no", http.StatusNotFound)
		}
	})
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {})
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var logged bytes.Buffer
		h := LogRequests(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: level})), "page", LogAll, mux, "GET /pixel/{id}")
		for _, path := range []string{"/pixel/1", "/pixel/bad", "/page"} {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
		}
		out := logged.String()
		quietOK := strings.Contains(out, `level=DEBUG msg=page method=GET route="GET /pixel/{id}" status=200`)
		if quietOK != (level == slog.LevelDebug) || !strings.Contains(out, `level=INFO msg=page method=GET route="GET /pixel/{id}" status=404`) ||
			!strings.Contains(out, `level=INFO msg=page method=GET route="GET /page" status=200`) {
			t.Errorf("at level %s:\n%s", level, out)
		}
	}
}
