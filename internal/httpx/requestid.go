package httpx

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"log/slog"
	"net/http"
	"syscall"
)

// RequestIDHeader carries a request's id: a client or proxy may send one,
// and every response gives the id the request was served under.
const RequestIDHeader = "X-Request-Id"

type requestIDKey struct{}

// RequestID gives every request an id, in its context and in the
// X-Request-Id response header, so that the log lines of one request can
// be found together and a client can quote the id it got. An incoming
// X-Request-Id is kept when it is a short safe token (a proxy's id ties
// its log to ours); anything else is replaced, so that no one can write
// arbitrary text into the log through it.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !SafeRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(WithRequestID(r.Context(), id)))
	})
}

// SafeRequestID reports whether id may be used as a request id as given:
// 1 to 64 letters, digits, '-', '_' or '.'.
func SafeRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// newRequestID is 80 random bits, as 16 characters.
func newRequestID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
}

// WithRequestID returns ctx carrying the request id id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the request id ctx carries, or "" outside a
// request.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// ClientGone reports whether err only says that the client went away
// before its answer was complete: it hung up (the request's context was
// canceled) or the connection broke under the response. Such a request
// needs nothing from the operator, so it is not logged as an error.
func ClientGone(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// LogHandler wraps h so that every record logged with a request's context
// (the *Context methods of slog.Logger) carries the request's id as
// request_id, and so that a warning or error that only says the client
// went away (ClientGone, in an attribute holding an error, or a record
// logged with a context already canceled) is logged at info level.
func LogHandler(h slog.Handler) slog.Handler { return &logHandler{next: h} }

type logHandler struct{ next slog.Handler }

func (h *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	// A warning or an error may be lowered to info: ask for either.
	if level > slog.LevelInfo {
		return h.next.Enabled(ctx, slog.LevelInfo) || h.next.Enabled(ctx, level)
	}
	return h.next.Enabled(ctx, level)
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level > slog.LevelInfo && (errors.Is(ctx.Err(), context.Canceled) || goneAttr(r)) {
		lowered := slog.NewRecord(r.Time, slog.LevelInfo, r.Message, r.PC)
		r.Attrs(func(a slog.Attr) bool { lowered.AddAttrs(a); return true })
		lowered.AddAttrs(slog.Bool("client_gone", true))
		r = lowered
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	if id := RequestIDFrom(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.next.Handle(ctx, r)
}

// goneAttr reports whether one of r's attributes is an error that says
// the client went away.
func goneAttr(r slog.Record) bool {
	gone := false
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && ClientGone(err) {
			gone = true
		}
		return !gone
	})
	return gone
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &logHandler{next: h.next.WithAttrs(as)}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{next: h.next.WithGroup(name)}
}
