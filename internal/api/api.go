// Package api serves the REST API under /api/v1 and its OpenAPI document.
//
// Routes are declared once, in a table (routes.go); the router and the
// OpenAPI document are both built from it, so they cannot disagree. Handlers
// decode the request, call one domain function and return what to encode;
// errors from the domain are mapped to status codes in one place.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/clientip"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/erasure"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/export"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/inbound"
	"github.com/consentry/consentry/internal/ledgertree"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/preferences"
	"github.com/consentry/consentry/internal/receipts"
	"github.com/consentry/consentry/internal/repermission"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/webform"
	"github.com/consentry/consentry/internal/webhook"
	"github.com/consentry/consentry/internal/workflow"
)

// Server holds what the handlers call.
type Server struct {
	DB       *store.DB
	Consent  *consent.Service
	Contacts *contact.Service
	Tokens   *auth.Tokens
	OptIn    *optin.Service
	Lists    *lists.Service
	Prefs    *preferences.Service
	Webforms *webform.Service
	Requests *requests.Service
	Erasure  *erasure.Service
	Export   *export.Service
	Inbound  *inbound.Service // requests by email (inbound.go)
	IPs      clientip.Resolver
	Log      *slog.Logger
	Version  string
	// RequestLog says which requests are logged (CONSENTRY_LOG_REQUESTS).
	RequestLog httpx.RequestLog
	// Ready, when set, is asked by GET /readyz what keeps the service
	// from being ready (see Readiness).
	Ready func(context.Context) Readiness
	// Limits are the rate limits per token and, for missing or bad
	// tokens, per client address (ratelimit.go); zero fields take
	// DefaultLimits' values. Now is their clock, time.Now when nil.
	Limits   Limits
	Now      func() time.Time
	limiters rateLimiters

	// Campaigns keeps campaigns; CampaignSender previews and tests them
	// (campaigns.go).
	Campaigns      *campaign.Service
	CampaignSender *campaign.Sender

	// Workflows keeps workflow rules and their run log (workflows.go);
	// Webhooks keeps webhook endpoints and their delivery log
	// (webhooks.go).
	Workflows *workflow.Service
	Webhooks  *webhook.Service

	// Imports brings contacts in from files (imports.go); Repermission
	// asks contacts for their marketing consent again (repermission.go).
	Imports      *imports.Service
	Repermission *repermission.Service

	// Receipts issues consent receipts (receipts.go).
	Receipts *receipts.Service
	// Tree is the ledger's Merkle tree, checked with the chain.
	Tree *ledgertree.Service

	routes []Route
	mux    *http.ServeMux
	root   http.Handler // mux with the headers and the request log
}

// handlerFunc handles one route. It returns the success status and the body
// to encode as JSON (nil for none), or an error.
type handlerFunc func(r *http.Request, caller consent.Actor) (int, any, error)

// Route is one operation of the API: what the router serves and what the
// OpenAPI document describes.
type Route struct {
	Method   string
	Path     string
	Summary  string
	Tag      string
	Public   bool    // served without a token
	Scope    string  // the scope the token needs beyond the ordinary API, or ""
	Request  any     // a value of the request body's type, or nil
	RawBody  string  // the media type of a body read as it is, not JSON (message/rfc822), or ""
	Response any     // a value of the success body's type, or nil
	Status   int     // success status
	Query    []Param // query parameters
	// Files are the media types of a success body sent as a file (a
	// handler's fileBody) besides JSON.
	Files []string
	// Unavailable, when not nil, is the body of a 503 Service Unavailable
	// the route answers when the service is not ready.
	Unavailable any
	// Accepted, when not nil, is the body of a 202 Accepted the route
	// answers instead of Status when the work goes on as a job.
	Accepted any
	// Idempotent routes accept an Idempotency-Key header (idempotent.go).
	Idempotent bool
	// OptionalBody marks Request as one a client may leave out (an empty
	// body); the handler reads it with decodeOptional.
	OptionalBody bool
	// LongBody routes take a body that may take long to arrive (a file
	// upload): the server's read deadline is moved out for them.
	LongBody bool
	handle   handlerFunc
}

// Param is a query parameter.
type Param struct {
	Name string
	Doc  string
	Type string // "string" or "integer"
}

// Pattern is the ServeMux pattern the route is registered under.
func (rt Route) Pattern() string { return rt.Method + " " + rt.Path }

// New builds the server and its router.
func New(s *Server) *Server {
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	s.Limits = s.Limits.orDefault()
	s.limiters = newRateLimiters(s.Limits, s.Now)
	s.routes = slices.Concat(s.routeTable(), s.listRoutes(), s.webformRoutes(), s.preferenceRoutes(), s.requestRoutes(), s.erasureRoutes(), s.exportRoutes(), s.inboundRoutes(), s.campaignRoutes(), s.eventRoutes(), s.workflowRoutes(), s.webhookRoutes(), s.importRoutes(), s.repermissionRoutes(), s.receiptRoutes())
	s.mux = http.NewServeMux()
	for _, rt := range s.routes {
		s.mux.Handle(rt.Pattern(), s.wrap(rt))
	}
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if allow := s.allowed(r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{ErrorDetail{Code: "method_not_allowed",
				Message: fmt.Sprintf("%s is not allowed here; use %s", r.Method, strings.Join(allow, " or "))}})
			return
		}
		writeError(w, &errs.Error{Kind: errs.KindNotFound, Code: "route_not_found",
			Message: fmt.Sprintf("no route %s %s; see /api/openapi.json", r.Method, r.URL.Path)})
	})
	s.root = httpx.Headers(apiPolicy, httpx.LogRequests(s.Log, "request", s.RequestLog, s.mux))
	return s
}

// apiPolicy: an API response is data, never a page; nothing in it may
// load or be framed, and no referrer leaves.
var apiPolicy = httpx.Policy{CSP: "default-src 'none'; frame-ancestors 'none'", Referrer: "no-referrer"}

// allowed returns the methods that have a route for r's path, for a 405.
func (s *Server) allowed(r *http.Request) []string {
	var out []string
	for _, m := range []string{"GET", "POST", "PATCH", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/api/" && pattern != "" {
			out = append(out, m)
		}
	}
	return out
}

// Routes returns the route table.
func (s *Server) Routes() []Route { return s.routes }

// ServeHTTP serves the API, every response with the headers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.root.ServeHTTP(w, r) }

// Mux exposes the router, so tests can check which pattern serves a request.
func (s *Server) Mux() *http.ServeMux { return s.mux }

func (s *Server) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var caller consent.Actor
		status, body, err := 0, any(nil), error(nil)
		if !rt.Public {
			var refused bool
			if caller, refused, err = s.authenticateLimited(w, r); refused {
				return
			}
		}
		if err == nil && !rt.Public {
			err = inboundOnly(r, rt)
		}
		if err == nil && rt.Scope != "" {
			err = requireScope(r, rt.Scope)
		}
		if err == nil {
			err = checkParams(r, rt)
		}
		if err == nil && rt.LongBody {
			// Past the server's ReadTimeout and WriteTimeout, which keep
			// ordinary requests short.
			httpx.LongBody(w, longBodyTime)
		}
		if err == nil {
			status, body, err = rt.handle(r, caller)
		}
		if err != nil {
			status = writeError(w, err)
			if status == http.StatusServiceUnavailable {
				s.Log.WarnContext(r.Context(), "request refused: the database is unavailable", "method", r.Method, "route", rt.Path, "err", err)
			} else if status >= 500 {
				s.Log.ErrorContext(r.Context(), "request failed", "method", r.Method, "route", rt.Path, "err", err)
			}
		} else if f, ok := body.(fileBody); ok {
			if err := f.writeFile(w, status); err != nil {
				s.Log.WarnContext(r.Context(), "file response not completed", "route", rt.Path, "err", err)
				// Cut the connection: a client must not take the part of a
				// file it got for the whole of it.
				panic(http.ErrAbortHandler)
			}
		} else {
			writeJSON(w, status, body)
		}
	})
}

// longBodyTime is how long a LongBody route may take to read its body.
const longBodyTime = 30 * time.Minute

// fileBody is a success body written as a file rather than encoded as
// JSON: it sets its own headers. Everything that can fail before the
// first byte fails in the handler, which still answers with an error.
type fileBody interface {
	writeFile(w http.ResponseWriter, status int) error
}

// checkParams refuses path and query values that are not plain text before
// any handler sees them: a path that names nothing valid is not found, a
// query parameter that is not text is invalid.
func checkParams(r *http.Request, rt Route) error {
	for _, name := range pathParams(rt.Path) {
		if v := r.PathValue(name); len(v) > 200 || errs.PlainText(name, v) != nil {
			return &errs.Error{Kind: errs.KindNotFound, Code: "not_found", Message: "nothing is found at this address"}
		}
	}
	for _, q := range rt.Query {
		if err := errs.PlainText(q.Name, r.URL.Query().Get(q.Name)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) authenticate(r *http.Request) (consent.Actor, error) {
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") { // the scheme is case-insensitive (RFC 9110)
		return consent.Actor{}, auth.ErrBadToken
	}
	tok, err := s.Tokens.Authenticate(r.Context(), strings.TrimSpace(secret))
	if err != nil {
		return consent.Actor{}, err
	}
	*r = *r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok))
	return consent.Actor{Kind: consent.ActorAPIToken, ID: tok.ID}, nil
}

type tokenKey struct{}

// hasScope reports whether the request's token has the scope.
func hasScope(r *http.Request, scope string) bool {
	tok, _ := r.Context().Value(tokenKey{}).(*auth.Token)
	return tok != nil && tok.Has(scope)
}

// requireScope refuses a request whose token lacks the scope.
func requireScope(r *http.Request, scope string) error {
	if hasScope(r, scope) {
		return nil
	}
	return &errs.Error{Kind: errs.KindForbidden, Code: "forbidden", Message: "this token may not do this; it needs the " + scope + " scope"}
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong: a stable code, a message for people and
// the field it concerns, if any.
type ErrorDetail struct {
	Code    string `json:"code" doc:"stable, for programs: invalid, required, unknown_field, not_found, email_taken, invalid_condition, ..."`
	Message string `json:"message" doc:"for people: the reason, e.g. is not a valid email address"`
	Field   string `json:"field,omitempty" doc:"the input the error is about, as a path in the request (consents[0].purpose) or a query parameter; absent when it is about no one input"`
	// Position is set for an error in a condition: where in it, counted in
	// characters from 1.
	Position int `json:"position,omitempty" doc:"where in the condition the error is, counted in characters from 1"`
	// Row and Byte are set for an uploaded file that cannot be read: where
	// in it the problem is.
	Row  int   `json:"row,omitempty" doc:"for an uploaded file that is refused: the row the problem is in, counted from 1 as a spreadsheet shows them (the header is row 1 when nothing is above it)"`
	Byte int64 `json:"byte,omitempty" doc:"for an uploaded file that is refused: where in it the problem is, counted in bytes from 1, when that is known"`
}

func writeError(w http.ResponseWriter, err error) int {
	e := errs.As(store.Unavailable(err))
	if e == nil {
		if errors.Is(err, context.Canceled) {
			e = &errs.Error{Kind: errs.KindInvalid, Code: "canceled", Message: "the request was canceled"}
		} else {
			writeJSON(w, http.StatusInternalServerError, ErrorBody{ErrorDetail{Code: "internal", Message: "internal error; see the server log"}})
			return http.StatusInternalServerError
		}
	}
	status := httpx.Status(e)
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="consentry"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", httpx.RetryAfter)
	}
	writeJSON(w, status, ErrorBody{ErrorDetail{Code: e.Code, Message: e.Message, Field: e.Field, Position: e.Position, Row: e.Row, Byte: e.Byte}})
	return status
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	if body == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(body)
}

const maxBody = 1 << 20

// decode reads a JSON body into v, refusing unknown fields, a key given
// twice in one object, a body of null, the absence of a required field
// (requiredIn: in a POST, those required on create too), trailing data and
// bodies over 1 MiB, with an error that names the field where it can.
// Every handler reads its body through it.
func decode(r *http.Request, v any) error { return decodeUpTo(r, v, maxBody) }

// decodeOptional is decode for a route whose body may be left out
// (Route.OptionalBody): an empty body leaves v as it is.
func decodeOptional(r *http.Request, v any) error {
	if err := decode(r, v); err != errEmptyBody {
		return err
	}
	return nil
}

// invalidUTF8At returns the offset of the first byte of data that is not
// part of a valid UTF-8 sequence; len(data) when all are.
func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(data)
}

// errEmptyBody answers a request that has no body where one is required.
var errEmptyBody = &errs.Error{Kind: errs.KindInvalid, Code: "malformed_json", Message: "request body is empty; a JSON object is required"}

// decodeUpTo is decode for a body of up to limit bytes, for a route whose
// requests may name many things (contacts by id, say).
func decodeUpTo(r *http.Request, v any, limit int64) error {
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err == nil && !utf8.Valid(data) {
		// JSON is UTF-8 (RFC 8259); the decoder would quietly put U+FFFD
		// in place of the bad bytes, and a name or a consent's notice be
		// stored other than it was sent.
		return &errs.Error{Kind: errs.KindInvalid, Code: "malformed_json",
			Message: fmt.Sprintf("request body is not valid UTF-8 at byte %d", invalidUTF8At(data))}
	}
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		dec.UseNumber() // custom number fields are checked as written, not as rounded
		err = dec.Decode(v)
		if err == nil {
			if dec.More() {
				return &errs.Error{Kind: errs.KindInvalid, Code: "malformed_json", Message: "request body has data after the JSON value"}
			}
			return checkShape(data, v, r.Method == http.MethodPost)
		}
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case httpx.TooLarge(err) != nil:
		return httpx.TooLarge(err)
	case errors.Is(err, io.EOF):
		return errEmptyBody
	case errors.As(err, &syn):
		return &errs.Error{Kind: errs.KindInvalid, Code: "malformed_json", Message: fmt.Sprintf("request body is not valid JSON at byte %d: %v", syn.Offset, syn)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &errs.Error{Kind: errs.KindInvalid, Code: "malformed_json", Message: "request body ends in the middle of a JSON value"}
	case errors.As(err, &typ):
		field := jsonPath(typ.Field)
		if field == "" {
			return &errs.Error{Kind: errs.KindInvalid, Code: "malformed_json", Message: "request body must be a JSON object"}
		}
		return &errs.Error{Kind: errs.KindInvalid, Code: "invalid", Field: field, Message: "must be " + jsonKind(typ.Type.Kind().String())}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if path := unknownKey(reflect.TypeOf(v), data, "", name); path != "" {
			name = path // the decoder names the key alone, not where it is
		}
		return &errs.Error{Kind: errs.KindInvalid, Code: "unknown_field", Field: name, Message: "is not a field of this request"}
	}
	if field := badTime(reflect.TypeOf(v), data, ""); field != "" {
		// A time's own decoder names no field.
		return &errs.Error{Kind: errs.KindInvalid, Code: "invalid", Field: field, Message: "must be a time in RFC 3339, e.g. 2026-11-01T09:00:00Z"}
	}
	return &errs.Error{Kind: errs.KindInvalid, Code: "malformed_json", Message: "request body could not be read: " + err.Error()}
}

// jsonPath drops the names of embedded Go structs ("Input.email") from the
// decoder's field path, leaving the JSON names the client sent ("email").
// Every JSON name of the API is lower case, every Go struct name upper case.
func jsonPath(p string) string {
	parts := strings.Split(p, ".")
	out := parts[:0]
	for _, part := range parts {
		if part != "" && !unicode.IsUpper(rune(part[0])) {
			out = append(out, part)
		}
	}
	return strings.Join(out, ".")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "ptr":
		return "a value of the right type"
	}
	return "a number"
}
