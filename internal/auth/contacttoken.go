package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/store"
)

// Purposes of the tokens in links sent to contacts. A token works only for
// the purpose it was made for.
const (
	PurposeDoubleOptIn = "double_opt_in"
	// PurposePreferences opens the preferences page; it is exchanged for a
	// session and can be used again until it expires.
	PurposePreferences = "preferences"
	// PurposePreferencesSession is the session cookie of the preferences
	// page, short-lived.
	PurposePreferencesSession = "preferences_session"
	// PurposePreferencesChange confirms one pending change, once.
	PurposePreferencesChange = "preferences_change"
	// PurposeUnsubscribe is the unsubscribe link and RFC 8058 one-click
	// address of a marketing email.
	PurposeUnsubscribe = "unsubscribe"
	// PurposeWebformConfirmation confirms, once, a webform post about a
	// known address: what the form carried is applied only then.
	PurposeWebformConfirmation = "webform_confirmation"
	// PurposeExport downloads the contact's own data (an access request
	// made on the preferences page); it works, for each format, until it
	// expires.
	PurposeExport = "export"
	// PurposeReceipt downloads the consent receipt of one consent record
	// (the subject), from the email that summarises it; it works until
	// it expires.
	PurposeReceipt = "receipt"
)

// ContactToken is a link token's record: who it is for, what for, until when.
type ContactToken struct {
	ID        string
	Purpose   string
	ContactID string
	SubjectID string // what it is about, e.g. the invitation it confirms
	ExpiresAt time.Time
}

// IssueContactToken makes a token of 256 random bits for a link to a
// contact, inside tx, and returns the secret for the link. Only its SHA-256
// is stored.
func IssueContactToken(tx *store.Tx, purpose, contactID, subjectID string, expires, now time.Time) (string, *ContactToken, error) {
	secret, err := newLinkSecret()
	if err != nil {
		return "", nil, err
	}
	t := &ContactToken{ID: uuid.Must(uuid.NewV7()).String(), Purpose: purpose, ContactID: contactID, SubjectID: subjectID, ExpiresAt: expires}
	// Queued on PostgreSQL for the transaction's next round trip
	// (store.Tx.ExecLater): the token is made here, not read back.
	err = tx.ExecLater(store.Prefix("auth: issue token"), `INSERT INTO tokens (id, purpose, contact_id, hash, subject_id, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, t.ID, purpose, contactID, hashSecret(secret), subjectID, store.Micros(expires), store.Micros(now))
	if err != nil {
		return "", nil, err
	}
	return secret, t, nil
}

// newLinkSecret returns the secret of a link token: 256 random bits,
// URL-safe.
func newLinkSecret() (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("auth: random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// ErrNoToken means a link's token is unknown, used, expired or made for
// something else. Callers show the same neutral page for all of these.
var ErrNoToken = errors.New("auth: no valid token")

// validSecret rejects anything that cannot be a token before it reaches the
// database.
func validSecret(secret string) bool {
	if len(secret) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(secret)
	return err == nil
}

// FindContactToken returns the unused, unexpired token of purpose whose
// secret is given, reading through q, or ErrNoToken.
func FindContactToken(q interface {
	QueryRow(string, ...any) *sql.Row
}, purpose, secret string, now time.Time) (*ContactToken, error) {
	if !validSecret(secret) {
		return nil, ErrNoToken
	}
	var t ContactToken
	err := scanLinkToken(q.QueryRow(`SELECT id, purpose, contact_id, subject_id, expires_at FROM tokens
		WHERE hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3`, hashSecret(secret), purpose, store.Micros(now)),
		&t.ExpiresAt, &t.ID, &t.Purpose, &t.ContactID, &t.SubjectID)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// scanLinkToken reads a link token's row, whose last column is its
// expiry, into dest and expires: no row is ErrNoToken.
func scanLinkToken(row *sql.Row, expires *time.Time, dest ...any) error {
	var us int64
	err := row.Scan(append(dest, &us)...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNoToken
	}
	if err != nil {
		return fmt.Errorf("auth: read token: %w", err)
	}
	*expires = store.FromMicros(us)
	return nil
}

// UseContactToken marks a token used inside tx, so it works once.
func UseContactToken(tx *store.Tx, id string, now time.Time) error {
	return useLinkTokens(tx, `UPDATE tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL`, id, now)
}

// useLinkTokens runs the statement that marks tokens used (by key, at
// now); none marked is ErrNoToken.
func useLinkTokens(tx *store.Tx, query, key string, now time.Time) error {
	res, err := tx.Exec(query, key, store.Micros(now))
	if err != nil {
		return fmt.Errorf("auth: use token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNoToken
	}
	return nil
}

// EndContactTokensTx uses up every open token of purpose for the subject
// (an invitation or a change that was replaced or ended), so that its links
// stop working at once. The statement is queued (store.Tx.ExecLater).
func EndContactTokensTx(tx *store.Tx, subjectID, purpose string, now time.Time) error {
	return EndContactTokensManyTx(tx, []string{subjectID}, purpose, now)
}

// EndContactTokensManyTx is EndContactTokensTx for the tokens issued for
// any of subjectIDs, in one statement.
func EndContactTokensManyTx(tx *store.Tx, subjectIDs []string, purpose string, now time.Time) error {
	if len(subjectIDs) == 0 {
		return nil
	}
	ph, args := store.In(3, subjectIDs)
	return tx.ExecLater(store.Prefix("auth: end links"), `UPDATE tokens SET used_at = $1 WHERE subject_id IN (`+ph+`) AND purpose = $2 AND used_at IS NULL`,
		append([]any{store.Micros(now), purpose}, args...)...)
}

// PurgeContactTokensTx deletes the tokens that expired or were used before
// before. A token's hash alone names nobody, but a spent token has no
// reason to stay.
func PurgeContactTokensTx(tx *store.Tx, before time.Time) error {
	if _, err := tx.Exec(`DELETE FROM tokens WHERE expires_at < $1 OR used_at < $1`, store.Micros(before)); err != nil {
		return fmt.Errorf("auth: purge tokens: %w", err)
	}
	return nil
}

// DeleteContactTokensTx deletes every token of the contacts in ids inside
// tx, when their personal data is erased: no link sent to them works any
// more. The statement is queued (store.Tx.ExecLater).
func DeleteContactTokensTx(tx *store.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ph, args := store.In(1, ids)
	return tx.ExecLater(store.Prefix("auth: delete contact tokens"), `DELETE FROM tokens WHERE contact_id IN (`+ph+`)`, args...)
}

// IssuedToken is what a consent record's proof says of the link token that
// confirmed it: what it was for, what it was about and when it was made
// (when the email carrying it was handed to the mail server) and used.
type IssuedToken struct {
	ID        string
	Purpose   string
	ContactID string
	SubjectID string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// IssuedContactToken returns the link token id of contactID, used or not,
// reading through q. It returns ErrNoToken when there is none: the id is
// unknown, the token is another contact's, or it was purged
// (PurgeContactTokensTx) after it expired or was used.
func IssuedContactToken(ctx context.Context, q store.Querier, contactID, id string) (*IssuedToken, error) {
	t := IssuedToken{ID: id}
	var created, expires int64
	var used sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT purpose, contact_id, subject_id, created_at, expires_at, used_at FROM tokens
		WHERE id = $1 AND contact_id = $2`, id, contactID).Scan(&t.Purpose, &t.ContactID, &t.SubjectID, &created, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoToken
	}
	if err != nil {
		return nil, fmt.Errorf("auth: read token: %w", err)
	}
	t.CreatedAt, t.ExpiresAt = store.FromMicros(created), store.FromMicros(expires)
	if used.Valid {
		u := store.FromMicros(used.Int64)
		t.UsedAt = &u
	}
	return &t, nil
}
