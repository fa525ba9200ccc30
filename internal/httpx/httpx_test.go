package httpx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

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
		// A database that cannot be reached, or whose disk is full, as the
		// driver says it: a 503 to try again, not a failure of ours.
		{fmt.Errorf("read contact: %w", &pgconn.PgError{Code: "53100"}), 503},
		{fmt.Errorf("read contact: %w", &pgconn.PgError{Code: "57P01"}), 503},
		{errs.Unavailable("down", nil), 503},
		{fmt.Errorf("read contact: %w", syscall.ECONNREFUSED), 503},
		// A request out of time, or gone, is not a database that is down.
		{fmt.Errorf("read contact: %w", context.DeadlineExceeded), 500},
		{fmt.Errorf("read contact: %w", context.Canceled), 500},
		// A body over its limit, however it is wrapped.
		{fmt.Errorf("read form: %w", &http.MaxBytesError{Limit: 1 << 20}), 413},
		{TooLarge(fmt.Errorf("read form: %w", &http.MaxBytesError{Limit: 64 << 10})), 413},
	}
	for _, c := range cases {
		if got := Status(c.err); got != c.want {
			t.Errorf("%v: %d, want %d", c.err, got, c.want)
		}
	}
}

// TestTooLarge: the error for a body over its limit names the limit, and
// there is none for any other error.
func TestTooLarge(t *testing.T) {
	e := TooLarge(fmt.Errorf("decode: %w", &http.MaxBytesError{Limit: 16 << 10}))
	if e == nil || e.Code != "body_too_large" || e.Message != "request body is larger than 16 KiB, the most this request may send" {
		t.Fatalf("%+v", e)
	}
	if e := TooLarge(errors.New("unexpected EOF")); e != nil {
		t.Fatalf("another error: %+v", e)
	}
}

// TestRetryAfterSeconds: whole seconds, rounded up, at least 1.
func TestRetryAfterSeconds(t *testing.T) {
	for wait, want := range map[time.Duration]string{0: "1", time.Nanosecond: "1", time.Second: "1", 1001 * time.Millisecond: "2",
		8571428572: "9", time.Hour: "3600", -time.Second: "1"} {
		rec := httptest.NewRecorder()
		SetRetryAfter(rec, wait)
		if got := rec.Header().Get("Retry-After"); got != want {
			t.Errorf("%s: Retry-After %q, want %q", wait, got, want)
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

// TestRequestIDs: a safe incoming id is kept, anything else replaced by a
// fresh one; the handler's context and the response carry it.
func TestRequestIDs(t *testing.T) {
	var inCtx string
	h := RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inCtx = RequestIDFrom(r.Context()) }))
	for sent, keep := range map[string]bool{"abc-123_X.y": true, "": false, "a b": false, strings.Repeat("x", 65): false, "é": false, "<script>": false} {
		req := httptest.NewRequest("GET", "/", nil)
		if sent != "" {
			req.Header.Set(RequestIDHeader, sent)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get(RequestIDHeader)
		if got != inCtx || !SafeRequestID(got) || (got == sent) != keep {
			t.Errorf("sent %q: header %q, context %q", sent, got, inCtx)
		}
	}
}

// TestLogHandler: records logged with a request's context carry its id;
// a warning or error that only says the client went away is logged at
// info level.
func TestLogHandler(t *testing.T) {
	var logged bytes.Buffer
	log := slog.New(LogHandler(slog.NewTextHandler(&logged, nil))).With("part", "x")
	ctx := WithRequestID(t.Context(), "req-1")
	log.InfoContext(ctx, "deep down")
	log.Error("no context", "err", errors.New("disk on fire"))
	log.ErrorContext(ctx, "gone", "err", fmt.Errorf("read: %w", context.Canceled))
	log.Warn("broken pipe", "err", &net.OpError{Op: "write", Err: syscall.EPIPE})
	gone, cancel := context.WithCancel(ctx)
	cancel()
	log.ErrorContext(gone, "canceled context", "err", errors.New("something"))
	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	want := []string{`level=INFO msg="deep down" part=x request_id=req-1`, `level=ERROR msg="no context" part=x err="disk on fire"`,
		`level=INFO msg=gone part=x err="read: context canceled" client_gone=true request_id=req-1`,
		`level=INFO msg="broken pipe" part=x err="write: broken pipe" client_gone=true`,
		`level=INFO msg="canceled context" part=x err=something client_gone=true request_id=req-1`}
	if len(lines) != len(want) {
		t.Fatalf("logged:\n%s", logged.String())
	}
	for i, w := range want {
		if _, rest, _ := strings.Cut(lines[i], " "); rest != w {
			t.Errorf("line %d: %s\nwant: %s", i, rest, w)
		}
	}
}

// TestRequestLogModes: errors logs only failed requests, none nothing.
func TestRequestLogModes(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusBadRequest) })
	for mode, want := range map[RequestLog]int{LogAll: 2, LogErrors: 1, LogNone: 0} {
		var logged bytes.Buffer
		h := LogRequests(slog.New(slog.NewTextHandler(&logged, nil)), "page", mode, mux)
		for _, p := range []string{"/ok", "/fail"} {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
		}
		if got := strings.Count(logged.String(), "msg=page"); got != want {
			t.Errorf("%s: %d lines, want %d:\n%s", mode, got, want, logged.String())
		}
	}
}
