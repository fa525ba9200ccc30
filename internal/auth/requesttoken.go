package auth

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/store"
)

// PurposeRequestConfirmation is the link that confirms a data subject
// request emailed to the privacy address (R19): the sender's address can
// be forged, so the request counts only once someone who reads that
// mailbox follows the link. Its tokens are bound to the request, not to a
// contact, because the address may be no contact's (request_tokens).
const PurposeRequestConfirmation = "request_confirmation"

// RequestToken is a request confirmation token's record.
type RequestToken struct {
	ID        string
	RequestID string
	ExpiresAt time.Time
}

// IssueRequestToken makes a token of 256 random bits confirming the
// request, inside tx, and returns the secret for the link. Only its
// SHA-256 is stored.
func IssueRequestToken(tx *store.Tx, requestID string, expires, now time.Time) (string, error) {
	secret, err := newLinkSecret()
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(`INSERT INTO request_tokens (id, request_id, hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)`,
		uuid.Must(uuid.NewV7()).String(), requestID, hashSecret(secret), store.Micros(expires), store.Micros(now)); err != nil {
		return "", fmt.Errorf("auth: issue request token: %w", err)
	}
	return secret, nil
}

// FindRequestToken returns the unused, unexpired request confirmation
// token whose secret is given, reading through q, or ErrNoToken.
func FindRequestToken(q interface {
	QueryRow(string, ...any) *sql.Row
}, secret string, now time.Time) (*RequestToken, error) {
	if !validSecret(secret) {
		return nil, ErrNoToken
	}
	var t RequestToken
	err := scanLinkToken(q.QueryRow(`SELECT id, request_id, expires_at FROM request_tokens WHERE hash = $1 AND used_at IS NULL AND expires_at > $2`,
		hashSecret(secret), store.Micros(now)), &t.ExpiresAt, &t.ID, &t.RequestID)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// UseRequestTokens uses up, inside tx, every open token of the request:
// it is confirmed once, by whichever of its links is followed first.
// It returns ErrNoToken when none was open.
func UseRequestTokens(tx *store.Tx, requestID string, now time.Time) error {
	return useLinkTokens(tx, `UPDATE request_tokens SET used_at = $2 WHERE request_id = $1 AND used_at IS NULL`, requestID, now)
}

// PurgeRequestTokensTx deletes the request tokens that expired or were
// used before before.
func PurgeRequestTokensTx(tx *store.Tx, before time.Time) error {
	if _, err := tx.Exec(`DELETE FROM request_tokens WHERE expires_at < $1 OR used_at < $1`, store.Micros(before)); err != nil {
		return fmt.Errorf("auth: purge request tokens: %w", err)
	}
	return nil
}
