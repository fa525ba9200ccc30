// Package auth issues and checks API tokens. A token is 256 random bits shown
// once at creation; only its SHA-256 is stored, so a copy of the database
// gives no usable token. (A slow password hash is not needed for secrets with
// 256 bits of entropy, and would cost every API request.)
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// TokenPrefix starts every API token, so that a leaked token is easy to
// recognise in code, logs and secret scanners.
const TokenPrefix = "cst_"

// Scopes a token can carry beyond the ordinary API.
const (
	// ScopeReveal allows revealing the clear value of sensitive fields,
	// each reveal logged.
	ScopeReveal = "reveal"
	// ScopeInbound is for a mail provider's inbound route: such a token
	// may post inbound email (POST /api/v1/inbound-email) and do nothing
	// else, so that the provider holds no key to the contacts.
	ScopeInbound = "inbound"
	// ScopeCampaigns allows keeping and sending campaigns: email to an
	// audience of contacts is more than a token that syncs contacts
	// should be able to start.
	ScopeCampaigns = "campaigns"
	// ScopeAutomation allows keeping workflow rules and webhook
	// endpoints: they send email and data on their own, whenever a
	// contact changes, which is more than syncing contacts needs.
	ScopeAutomation = "automation"
	// ScopeAdmin allows what changes how the service treats every
	// contact: the settings, the purposes (their legal basis and consent
	// text) and legal holds. A token that syncs contacts needs none of it.
	ScopeAdmin = "admin"
	// ScopeErasure allows erasing or deleting a contact, which cannot be
	// undone: a CRM forwarding its erasure requests gets it, a token that
	// syncs contacts does not.
	ScopeErasure = "erasure"
)

// Scopes lists every scope.
var Scopes = []string{ScopeReveal, ScopeInbound, ScopeCampaigns, ScopeAutomation, ScopeAdmin, ScopeErasure}

// Token is an API token's record; the secret itself is never stored.
type Token struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// LastUsedAt is when the token last authenticated a request, to the
	// minute; nil when it never did.
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// usedGranularity is how precisely a token's last use is kept: a token
// used for every request writes its time at most once in that span, so
// that busy integrations do not queue on the writer.
const usedGranularity = time.Minute

// Tokens creates, checks and revokes API tokens.
type Tokens struct {
	DB  *store.DB
	Now func() time.Time
}

// NewTokens returns a Tokens on db using the wall clock.
func NewTokens(db *store.DB) *Tokens { return &Tokens{DB: db, Now: time.Now} }

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Create makes a token named name, valid until expires (nil: until revoked),
// and returns the secret, which is shown this once. The audit log names by
// as its maker, with its name, scopes and expiry, never the secret.
func (t *Tokens) Create(ctx context.Context, by audit.Actor, name string, expires *time.Time, scopes ...string) (string, *Token, error) {
	if err := errs.TrimLine("name", &name, 100); err != nil {
		return "", nil, err
	}
	for _, s := range scopes {
		if !slices.Contains(Scopes, s) {
			return "", nil, errs.Invalid("scope", "unknown scope %q; known: %s", s, strings.Join(Scopes, ", "))
		}
	}
	now := store.Now(t.Now)
	if expires != nil && !expires.After(now) {
		return "", nil, errs.Invalid("expires", "must be in the future")
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, fmt.Errorf("auth: random token: %w", err)
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	tok := &Token{ID: uuid.Must(uuid.NewV7()).String(), Name: name, Scopes: append([]string{}, scopes...), CreatedAt: now, ExpiresAt: expires}
	var exp any
	if expires != nil {
		exp = store.Micros(*expires)
	}
	err := t.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`INSERT INTO api_tokens (id, name, token_hash, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			tok.ID, tok.Name, hashSecret(secret), strings.Join(tok.Scopes, " "), store.Micros(now), exp)
		if err != nil {
			return fmt.Errorf("auth: create token: %w", err)
		}
		return tok.auditTx(tx, by, audit.ActionAPITokenCreated, nil, now)
	})
	if err != nil {
		return "", nil, err
	}
	return secret, tok, nil
}

// ErrBadToken is returned for a missing, unknown, expired or revoked token;
// callers are deliberately not told which.
var ErrBadToken = &errs.Error{Kind: errs.KindUnauthorized, Code: "unauthorized", Message: "a valid API token is required: Authorization: Bearer <token>"}

// Authenticate returns the token whose secret is given, or ErrBadToken.
func (t *Tokens) Authenticate(ctx context.Context, secret string) (*Token, error) {
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) != len(TokenPrefix)+43 {
		return nil, ErrBadToken
	}
	tok, err := scanToken(t.DB.Read.QueryRowContext(ctx, tokenSelect+" WHERE token_hash = $1", hashSecret(secret)))
	if errs.Is(err, errs.KindNotFound) {
		return nil, ErrBadToken
	}
	if err != nil {
		return nil, err
	}
	now := t.Now()
	if tok.RevokedAt != nil || (tok.ExpiresAt != nil && !tok.ExpiresAt.After(now)) {
		return nil, ErrBadToken
	}
	if tok.LastUsedAt == nil || now.Sub(*tok.LastUsedAt) >= usedGranularity {
		t.markUsed(ctx, tok, now)
	}
	return tok, nil
}

// markUsed records that tok was used at now. The time is a convenience
// for the operator, not a record: when writing it fails, the request goes
// on and a later one writes it.
func (t *Tokens) markUsed(ctx context.Context, tok *Token, now time.Time) {
	at := store.Micros(now)
	err := t.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)`,
			tok.ID, at, store.Micros(now.Add(-usedGranularity)))
		return err
	})
	if err == nil {
		tok.LastUsedAt = &now
	}
}

// List returns every token, newest first, revoked ones included.
func (t *Tokens) List(ctx context.Context) ([]*Token, error) {
	out, err := store.QueryAll(ctx, t.DB.Read, scanToken, tokenSelect+" ORDER BY created_at DESC")
	if err != nil {
		return nil, fmt.Errorf("auth: list tokens: %w", err)
	}
	return out, nil
}

// Revoke ends a token at once, by by, who the audit log names. It returns
// a not-found error for an unknown id; revoking twice keeps the first
// time, and the first entry.
func (t *Tokens) Revoke(ctx context.Context, by audit.Actor, id string) error {
	return t.DB.Write(ctx, func(tx *store.Tx) error {
		tok, err := scanToken(tx.QueryRow(tokenSelect+" WHERE id = $1", id))
		if errs.Is(err, errs.KindNotFound) {
			return errs.NotFound("token", "id")
		}
		if err != nil || tok.RevokedAt != nil {
			return err
		}
		before := tok.audited()
		now := store.Now(t.Now)
		tok.RevokedAt = &now
		if _, err := tx.Exec(`UPDATE api_tokens SET revoked_at = $2 WHERE id = $1`, id, store.Micros(now)); err != nil {
			return fmt.Errorf("auth: revoke token: %w", err)
		}
		return tok.auditTx(tx, by, audit.ActionAPITokenRevoked, before, now)
	})
}

// auditedToken is what the audit log keeps of an API token: never its
// secret, which is not stored, nor the secret's hash.
type auditedToken struct {
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

func (t *Token) audited() auditedToken {
	return auditedToken{Name: t.Name, Scopes: t.Scopes, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt}
}

// auditTx writes the audit log's entries of a change of t by by, from
// before (nil for a creation) to t as it now is.
func (t *Token) auditTx(tx *store.Tx, by audit.Actor, action string, before any, now time.Time) error {
	return audit.RecordTx(tx, by, audit.Object{Kind: audit.KindAPIToken, ID: t.ID, Name: t.Name}, action, audit.Changes(before, t.audited()), now)
}

const tokenSelect = `SELECT id, name, scopes, created_at, expires_at, revoked_at, last_used_at FROM api_tokens`

// Has reports whether the token carries the scope.
func (t *Token) Has(scope string) bool { return slices.Contains(t.Scopes, scope) }

func scanToken(row store.Scanner) (*Token, error) {
	var tok Token
	var created int64
	var scopes string
	var expires, revoked, used sql.NullInt64
	err := row.Scan(&tok.ID, &tok.Name, &scopes, &created, &expires, &revoked, &used)
	tok.Scopes = strings.Fields(scopes)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("token", "")
	}
	if err != nil {
		return nil, fmt.Errorf("auth: read token: %w", err)
	}
	tok.CreatedAt = store.FromMicros(created)
	if expires.Valid {
		e := store.FromMicros(expires.Int64)
		tok.ExpiresAt = &e
	}
	if revoked.Valid {
		r := store.FromMicros(revoked.Int64)
		tok.RevokedAt = &r
	}
	if used.Valid {
		u := store.FromMicros(used.Int64)
		tok.LastUsedAt = &u
	}
	return &tok, nil
}
