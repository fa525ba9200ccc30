// Package idempotency makes a request that starts work safe to retry: a
// client sends it with a key (the Idempotency-Key header of the IETF draft
// "The Idempotency-Key HTTP Header Field"), and a retry with the same key
// and the same request gets the first answer again, the work done once.
//
// A key belongs to a scope (the API token that sent it) and is kept for
// TTL. Begin claims it before the work; the work writes its answer with
// FinishTx in the transaction that does it, so the key is answered exactly
// when the work is committed; Release gives the key up when the work
// failed, so that a retry does it.
package idempotency

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// TTL is how long a key and its answer are kept.
const TTL = 24 * time.Hour

// Lease is how long a claim whose request never finished (the server
// stopped while doing the work) keeps the key: after it a retry may claim
// the key again. Work that a request starts is committed well within it.
const Lease = 2 * time.Minute

// Errors of Begin; the front ends map their kinds to 409 and 422.
var (
	ErrInProgress = errs.Conflict("idempotency_key_in_use", "Idempotency-Key",
		"a request with this Idempotency-Key is still being processed; retry once it has finished")
	ErrMismatch = errs.Refused("idempotency_key_reused", "Idempotency-Key",
		"this Idempotency-Key was used for a different request; use a new key for a new request")
)

// Request identifies a request: the scope and key the client sent it with,
// and the fingerprint of what it asked (its method, path and body, say).
type Request struct {
	Scope, Key, Fingerprint string
}

// Answer is the response stored for a key.
type Answer struct {
	Status int
	Body   json.RawMessage
}

// Fingerprint is the fingerprint of an HTTP request: its method, path and
// body; the same request sent again has the same.
func Fingerprint(method, path string, body []byte) string {
	sum := sha256.Sum256([]byte(method + " " + path + "\n" + string(body)))
	return hex.EncodeToString(sum[:])
}

// Keys keeps the keys.
type Keys struct {
	DB  *store.DB
	Now func() time.Time
}

// Begin claims req's key for the work it asks. It returns the stored answer
// when a request with the same key and fingerprint was answered (the
// caller answers that and does nothing), ErrMismatch when the key was used
// for another request, ErrInProgress while a request with the key is
// being processed, or nil and nil when the caller holds the claim and
// does the work. An expired key, or a claim left past Lease, is claimed
// afresh.
func (k *Keys) Begin(ctx context.Context, req Request) (*Answer, error) {
	var out *Answer
	err := k.DB.Write(ctx, func(tx *store.Tx) error {
		out = nil
		now := store.Now(k.Now)
		var fp string
		var status int
		var body string
		var created, expires int64
		err := tx.QueryRow(`SELECT fingerprint, status, body, created_at, expires_at FROM idempotency_keys WHERE scope = $1 AND key = $2`,
			req.Scope, req.Key).Scan(&fp, &status, &body, &created, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("idempotency: read key: %w", err)
		case expires <= store.Micros(now), status == 0 && created <= store.Micros(now.Add(-Lease)):
			if _, err := tx.Exec(`DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2`, req.Scope, req.Key); err != nil {
				return fmt.Errorf("idempotency: forget key: %w", err)
			}
		case fp != req.Fingerprint:
			return ErrMismatch
		case status == 0:
			return ErrInProgress
		default:
			out = &Answer{Status: status, Body: json.RawMessage(body)}
			return nil
		}
		return tx.ExecLater(store.Prefix("idempotency: claim key"), `INSERT INTO idempotency_keys (scope, key, fingerprint, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5)`, req.Scope, req.Key, req.Fingerprint, store.Micros(now), store.Micros(now.Add(TTL)))
	})
	return out, err
}

// FinishTx stores the answer to req inside tx, the transaction of the work
// the request did.
func FinishTx(tx *store.Tx, req Request, a Answer) error {
	return tx.ExecLater(store.Prefix("idempotency: store answer"), `UPDATE idempotency_keys SET status = $3, body = $4
		WHERE scope = $1 AND key = $2`, req.Scope, req.Key, a.Status, string(a.Body))
}

// Finish is FinishTx in a transaction of its own, for work that wrote
// nothing of its own.
func (k *Keys) Finish(ctx context.Context, req Request, a Answer) error {
	return k.DB.Write(ctx, func(tx *store.Tx) error { return FinishTx(tx, req, a) })
}

// Release gives up the claim on req's key after its work failed, so that
// a retry does the work; an answered key stays.
func (k *Keys) Release(ctx context.Context, req Request) error {
	return k.DB.Write(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(`DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status = 0`, req.Scope, req.Key); err != nil {
			return fmt.Errorf("idempotency: release key: %w", err)
		}
		return nil
	})
}

// PurgeTx deletes the keys that expired by now.
func PurgeTx(tx *store.Tx, now time.Time) error {
	if _, err := tx.Exec(`DELETE FROM idempotency_keys WHERE expires_at <= $1`, store.Micros(now)); err != nil {
		return fmt.Errorf("idempotency: purge: %w", err)
	}
	return nil
}
