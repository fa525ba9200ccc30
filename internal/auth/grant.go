package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// GrantLife is how long a one-time grant can be claimed: the time a
// browser takes to follow a redirect, with room for a slow network.
const GrantLife = 2 * time.Minute

// ErrNoGrant means a one-time grant is unknown, claimed already, expired,
// or was made for another user or another thing; callers are not told
// which.
var ErrNoGrant = errors.New("auth: no valid one-time grant")

// Grants carry something from a form's post to the page its redirect
// shows, once (post/redirect/get for what may be seen only once: the
// reason of a reveal, the secret of a new API token). A grant is bound to
// the user who made it and to a subject naming the thing it is about,
// lives GrantLife and is deleted as it is claimed, so reloading the page
// shows nothing again.
//
// The grant's secret goes only into the redirect's address. The database
// keeps the secret's SHA-256 and what the grant carries sealed with a key
// derived from the secret, so a copy of the database shows neither; and
// being in the database, a grant made on one instance can be claimed on
// another.
type Grants struct {
	DB  *store.DB
	Now func() time.Time
}

// NewGrants returns Grants on db using the wall clock.
func NewGrants(db *store.DB) *Grants { return &Grants{DB: db, Now: time.Now} }

// grantKey derives the key that seals a grant's payload from its secret:
// a different hash input from the stored lookup hash, so one cannot be
// had from the other.
func grantKey(secret string) []byte {
	k := sha256.Sum256([]byte("consentry one-time grant key\x00" + secret))
	return k[:]
}

// grantAEAD returns the cipher that seals the payload of the grant of
// secret.
func grantAEAD(secret string) (cipher.AEAD, error) {
	block, err := aes.NewCipher(grantKey(secret))
	if err != nil {
		return nil, fmt.Errorf("auth: grant key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("auth: grant key: %w", err)
	}
	return aead, nil
}

// grantAD binds a sealed payload to the user and subject it was made for.
func grantAD(userID, subject string) []byte { return []byte(userID + "\x00" + subject) }

// Issue makes a grant for userID about subject carrying payload, and
// returns its secret for the redirect's address. Expired grants of
// anyone go as a new one is made.
func (g *Grants) Issue(ctx context.Context, userID, subject, payload string) (string, error) {
	secret, now := newSecret(), store.Now(g.Now)
	aead, err := grantAEAD(secret)
	if err != nil {
		return "", err
	}
	// Each key seals one message, so the zero nonce is never reused.
	sealed := base64.RawStdEncoding.EncodeToString(aead.Seal(nil, make([]byte, aead.NonceSize()), []byte(payload), grantAD(userID, subject)))
	err = g.DB.Write(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(`DELETE FROM one_time_grants WHERE expires_at <= $1`, store.Micros(now)); err != nil {
			return fmt.Errorf("auth: clear expired grants: %w", err)
		}
		_, err := tx.Exec(`INSERT INTO one_time_grants (hash, user_id, subject, sealed, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			hashSecret(secret), userID, subject, sealed, store.Micros(now), store.Micros(now.Add(GrantLife)))
		if err != nil {
			return fmt.Errorf("auth: make grant: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// ClaimTx claims the grant of secret for userID and subject inside tx,
// deleting it, and returns what it carries; ErrNoGrant when there is no
// such grant to claim. A caller that shows something only once it is
// logged claims in the transaction that logs it, so the grant is used up
// exactly when the log is written.
func (g *Grants) ClaimTx(tx *store.Tx, secret, userID, subject string) (string, error) {
	now := store.Now(g.Now)
	if !validSecret(secret) {
		return "", ErrNoGrant
	}
	hash := hashSecret(secret)
	var owner, about, sealed string
	var expires int64
	err := tx.QueryRow(`SELECT user_id, subject, sealed, expires_at FROM one_time_grants WHERE hash = $1`, hash).Scan(&owner, &about, &sealed, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNoGrant
	}
	if err != nil {
		return "", fmt.Errorf("auth: read grant: %w", err)
	}
	// Another user's grant, or one for another thing, stays for its owner
	// to claim; an expired one goes as the next grant is made.
	if owner != userID || about != subject || expires <= store.Micros(now) {
		return "", ErrNoGrant
	}
	if _, err := tx.Exec(`DELETE FROM one_time_grants WHERE hash = $1`, hash); err != nil {
		return "", fmt.Errorf("auth: claim grant: %w", err)
	}
	raw, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil {
		return "", fmt.Errorf("auth: read grant: %w", err)
	}
	aead, err := grantAEAD(secret)
	if err != nil {
		return "", err
	}
	payload, err := aead.Open(nil, make([]byte, aead.NonceSize()), raw, grantAD(userID, subject))
	if err != nil {
		return "", fmt.Errorf("auth: open grant: %w", err)
	}
	return string(payload), nil
}

// Claim is ClaimTx in a transaction of its own, for a grant whose payload
// is shown with nothing else written.
func (g *Grants) Claim(ctx context.Context, secret, userID, subject string) (string, error) {
	var payload string
	err := g.DB.Write(ctx, func(tx *store.Tx) error {
		var err error
		payload, err = g.ClaimTx(tx, secret, userID, subject)
		return err
	})
	return payload, err
}
