package httpx

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/consentry/consentry/internal/errs"
)

// OverLimit reports whether err says that a request body is over its
// limit, and the limit in bytes: err holds the *http.MaxBytesError of the
// http.MaxBytesReader the body was read through. Every front end reads
// bounded bodies so, and asks this (or TooLarge) whether a body it could
// not read was too large: such a request is answered 413 (Status).
func OverLimit(err error) (limit int64, over bool) {
	var tooBig *http.MaxBytesError
	if !errors.As(err, &tooBig) {
		return 0, false
	}
	return tooBig.Limit, true
}

// TooLarge returns the error that answers a request whose body is over
// its limit (OverLimit): an invalid-input error, code body_too_large,
// whose message names the limit, which Status answers 413. It returns nil
// when err is not about a body over its limit.
func TooLarge(err error) *errs.Error {
	limit, over := OverLimit(err)
	if !over {
		return nil
	}
	return &errs.Error{Kind: errs.KindInvalid, Code: "body_too_large", Cause: err,
		Message: "request body is larger than " + errs.Size(limit) + ", the most this request may send"}
}

// SetRetryAfter sets the Retry-After of an answer refused for a rate limit
// (429 Too Many Requests) to wait, the time the limiter says a request
// takes to be allowed again (clientip.Limiter.Take): in whole seconds, as
// the header is written, rounded up so that a client that waits that long
// is let through, and at least 1, as 0 would ask it to try again at once.
func SetRetryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.FormatInt(RetryAfterSeconds(wait), 10))
}

// RetryAfterSeconds is wait in whole seconds, rounded up, at least 1: the
// value of SetRetryAfter's header, for a message that says how long to
// wait.
func RetryAfterSeconds(wait time.Duration) int64 {
	return max(int64((wait+time.Second-1)/time.Second), 1)
}
