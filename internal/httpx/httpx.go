// Package httpx holds what the three HTTP front ends (the API, the admin
// pages and the public pages) share, so that each is written once: the
// security headers every response carries, redirects and errors included;
// the request log; and the status code that answers each kind of domain
// error (package errs names kinds, and knows nothing of HTTP).
package httpx

import (
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// Policy is the headers a front end gives every response it sends.
type Policy struct {
	// CSP is the Content-Security-Policy: what the front end's pages may
	// load, and that no other site may frame them.
	CSP string
	// Referrer is the Referrer-Policy.
	Referrer string
}

// Headers wraps next so that every response carries p's policies,
// X-Content-Type-Options nosniff and Cache-Control no-store (front ends
// answer with personal data or a token's effect; a handler that serves
// something cacheable, such as a stylesheet, removes it). The headers are
// set before next runs, so that its redirects and errors carry them too.
func Headers(p Policy, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", p.CSP)
		h.Set("Referrer-Policy", p.Referrer)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// RequestLog says which requests a front end logs: the values of
// CONSENTRY_LOG_REQUESTS (package config checks them).
type RequestLog string

const (
	LogAll    RequestLog = "all"    // every request (the quiet patterns at debug level)
	LogErrors RequestLog = "errors" // requests answered with a status of 400 or above
	LogNone   RequestLog = "none"   // none; errors the handlers log are still logged
)

// LogRequests serves each request with mux and then logs it as msg: its
// method, the route pattern that served it, the status and the time it
// took, as mode says (the zero value logs all). The pattern, never the
// path: a path can hold a token or an address. Requests to the quiet
// patterns are logged at debug level only, unless they fail: routes hit
// thousands of times a second whose every answer is counted elsewhere (a
// campaign's open pixel) would otherwise fill the log and cost more than
// they serve. A request whose client went away before its answer was
// complete says so (client_gone), at info level like any other.
func LogRequests(log *slog.Logger, msg string, mode RequestLog, mux *http.ServeMux, quiet ...string) http.Handler {
	if mode == LogNone {
		return mux
	}
	return Observe(mux, func(r *http.Request, status int, took time.Duration) {
		if mode == LogErrors && status < 400 {
			return
		}
		level := slog.LevelInfo
		if status < 400 && slices.Contains(quiet, r.Pattern) {
			level = slog.LevelDebug
		}
		if !log.Enabled(r.Context(), level) {
			return
		}
		// The mux sets the pattern on the request it served; a request
		// no route matched has none.
		attrs := []any{"method", r.Method, "route", r.Pattern, "status", status, "ms", float64(took.Microseconds()) / 1000}
		if r.Context().Err() != nil {
			attrs = append(attrs, "client_gone", true)
		}
		log.Log(r.Context(), level, msg, attrs...)
	})
}

// Observe serves each request with next, then calls done with the
// request, the status it was answered with and the time that took. A
// ServeMux inside next sets the route pattern on the request it is given:
// done sees it as long as nothing between replaced the request.
func Observe(next http.Handler, done func(r *http.Request, status int, took time.Duration)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		done(r, rec.status, time.Since(start))
	})
}

// statusRecorder keeps the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// RetryAfter is the Retry-After, in seconds, of a 503 for an unavailable
// database: one that restarts is usually back within that time.
const RetryAfter = "5"

// Status is the status that answers err: for a domain error the one its
// kind calls for, 503 for a database that cannot be reached or whose disk
// is full (store.Unavailable), 500 for anything else. A not-found error
// about a field of the input (an unknown purpose in a body, say) is a 422:
// the address was right, the input refers to something that does not
// exist. A body over its limit is a 413 (TooLarge), whatever error holds
// it.
func Status(err error) int {
	if _, over := OverLimit(err); over {
		return http.StatusRequestEntityTooLarge
	}
	e := errs.As(store.Unavailable(err))
	if e == nil {
		return http.StatusInternalServerError
	}
	switch e.Kind {
	case errs.KindInvalid:
		return http.StatusBadRequest
	case errs.KindNotFound:
		if e.Field != "" {
			return http.StatusUnprocessableEntity
		}
		return http.StatusNotFound
	case errs.KindConflict:
		return http.StatusConflict
	case errs.KindRefused:
		return http.StatusUnprocessableEntity
	case errs.KindLocked:
		return http.StatusLocked
	case errs.KindUnauthorized:
		return http.StatusUnauthorized
	case errs.KindForbidden:
		return http.StatusForbidden
	case errs.KindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
