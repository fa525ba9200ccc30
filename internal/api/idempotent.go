package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/idempotency"
	"github.com/consentry/consentry/internal/store"
)

// maxIdempotencyKey is the longest Idempotency-Key accepted.
const maxIdempotencyKey = 255

// finishFunc records a request's answer inside the transaction of the work
// it did (see idempotent); it does nothing for a request sent without a key.
type finishFunc func(tx *store.Tx, status int, body any) error

// idempotent runs work, a handler of a route marked Idempotent, at most
// once per Idempotency-Key: a request with a key claims it, work does what
// the request asks and calls finish inside the transaction that does it,
// so that the answer is stored exactly when the work is committed; a retry
// with the same key and the same request (method, path, body) gets that
// answer again, the work not done twice. A key is the calling token's:
// another token's key of the same text is another key. maxBody bounds the
// body read to fingerprint it.
func (s *Server) idempotent(r *http.Request, caller consent.Actor, maxBody int64, work func(finish finishFunc) (int, any, error)) (int, any, error) {
	key, err := idempotencyKey(r.Header.Values("Idempotency-Key"))
	if err != nil || key == "" {
		if err != nil {
			return 0, nil, err
		}
		return work(func(*store.Tx, int, any) error { return nil })
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if e := httpx.TooLarge(err); e != nil {
		return 0, nil, e
	}
	if err != nil {
		return 0, nil, &errs.Error{Kind: errs.KindInvalid, Code: "malformed_json", Message: "request body could not be read: " + err.Error()}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	req := idempotency.Request{Scope: caller.ID, Key: key, Fingerprint: idempotency.Fingerprint(r.Method, r.URL.Path, body)}
	keys := &idempotency.Keys{DB: s.DB, Now: time.Now}
	if ans, err := keys.Begin(r.Context(), req); err != nil || ans != nil {
		if err != nil {
			return 0, nil, err
		}
		return ans.Status, ans.Body, nil
	}
	finished := false
	status, out, err := work(func(tx *store.Tx, status int, body any) error {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		finished = true
		return idempotency.FinishTx(tx, req, idempotency.Answer{Status: status, Body: data})
	})
	ctx := context.WithoutCancel(r.Context()) // the key's fate is recorded even if the client left
	if err != nil {
		if rerr := keys.Release(ctx, req); rerr != nil {
			s.Log.ErrorContext(r.Context(), "releasing an idempotency key", "err", rerr)
		}
		return 0, nil, err
	}
	if !finished {
		data, err := json.Marshal(out)
		if err == nil {
			err = keys.Finish(ctx, req, idempotency.Answer{Status: status, Body: data})
		}
		if err != nil {
			return 0, nil, err
		}
	}
	return status, out, nil
}

// idempotencyKey returns the key an Idempotency-Key header gives, "" for
// none. The draft makes the value a structured-field string ("..."); a
// bare token is taken as it is.
func idempotencyKey(values []string) (string, error) {
	if len(values) == 0 {
		return "", nil
	}
	if len(values) > 1 {
		return "", errs.Invalid("Idempotency-Key", "give one Idempotency-Key header, not %d", len(values))
	}
	key := strings.TrimSpace(values[0])
	if len(key) >= 2 && key[0] == '"' && key[len(key)-1] == '"' {
		key = key[1 : len(key)-1]
	}
	if key == "" || len(key) > maxIdempotencyKey {
		return "", errs.Invalid("Idempotency-Key", "must be 1 to %d characters", maxIdempotencyKey)
	}
	for _, c := range key {
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return "", errs.Invalid("Idempotency-Key", "must be printable ASCII without spaces, quotes or backslashes, such as a UUID")
		}
	}
	return key, nil
}
