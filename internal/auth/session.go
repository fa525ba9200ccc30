package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// SessionHours is how long a sign-in to the admin web UI lasts.
const SessionHours = 12

// SetupLinkHours is how long the link that creates the first admin works.
const SetupLinkHours = 24

// ErrNoSession means a session cookie is unknown, expired or belongs to a
// disabled user.
var ErrNoSession = errors.New("auth: no valid session")

// ErrNoSetupLink means the set-up link is unknown, expired or used, or
// users exist already.
var ErrNoSetupLink = errors.New("auth: the set-up link cannot be used")

// newSecret returns 256 random bits for a cookie or link.
func newSecret() string {
	raw := make([]byte, 32)
	rand.Read(raw)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// StartSession signs the user in and returns the session's secret for the
// cookie and when it expires. Only the secret's SHA-256 is stored.
func (s *Users) StartSession(ctx context.Context, userID string) (string, time.Time, error) {
	secret, now := newSecret(), s.now()
	expires := now.Add(SessionHours * time.Hour)
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		// Expired sessions of the user go as a new one starts.
		if _, err := tx.Exec(`DELETE FROM user_sessions WHERE user_id = $1 AND expires_at <= $2`, userID, store.Micros(now)); err != nil {
			return fmt.Errorf("auth: clear old sessions: %w", err)
		}
		_, err := tx.Exec(`INSERT INTO user_sessions (id, user_id, hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			uuid.Must(uuid.NewV7()).String(), userID, hashSecret(secret), store.Micros(now), store.Micros(expires))
		if err != nil {
			return fmt.Errorf("auth: start session: %w", err)
		}
		return nil
	})
	return secret, expires, err
}

// Session returns the signed-in user of a session secret, or ErrNoSession.
func (s *Users) Session(ctx context.Context, secret string) (*User, error) {
	if !validSecret(secret) {
		return nil, ErrNoSession
	}
	u, err := scanUser(s.DB.Read.QueryRowContext(ctx, `SELECT u.id, u.email, u.name, u.role, u.created_at, u.disabled_at
		FROM user_sessions us JOIN users u ON u.id = us.user_id WHERE us.hash = $1 AND us.expires_at > $2 AND u.disabled_at IS NULL`,
		hashSecret(secret), store.Micros(s.now())))
	if errs.Is(err, errs.KindNotFound) {
		return nil, ErrNoSession
	}
	return u, err
}

// EndSession signs a session out; an unknown secret is ignored.
func (s *Users) EndSession(ctx context.Context, secret string) error {
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`DELETE FROM user_sessions WHERE hash = $1`, hashSecret(secret))
		return err
	})
}

// SetupLink returns the secret of a new one-time link that creates the
// first admin, valid for SetupLinkHours, when no user exists yet; earlier
// links stop working. With users it returns "".
func (s *Users) SetupLink(ctx context.Context) (string, error) {
	secret := ""
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		secret = ""
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM users`).Scan(&n); err != nil || n > 0 {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM setup_links`); err != nil {
			return fmt.Errorf("auth: end earlier set-up links: %w", err)
		}
		now := s.now()
		secret = newSecret()
		_, err := tx.Exec(`INSERT INTO setup_links (hash, created_at, expires_at) VALUES ($1, $2, $3)`,
			hashSecret(secret), store.Micros(now), store.Micros(now.Add(SetupLinkHours*time.Hour)))
		return err
	})
	return secret, err
}

// SetupLinkValid reports whether a set-up link can still be used.
func (s *Users) SetupLinkValid(ctx context.Context, secret string) bool {
	if !validSecret(secret) {
		return false
	}
	var n int
	err := s.DB.Read.QueryRowContext(ctx, `SELECT count(*) FROM setup_links WHERE hash = $1 AND expires_at > $2
		AND NOT EXISTS (SELECT 1 FROM users)`, hashSecret(secret), store.Micros(s.now())).Scan(&n)
	return err == nil && n == 1
}

// CreateFirstAdmin uses a set-up link to create the first user, an admin,
// in one transaction that also ends the link. It returns ErrNoSetupLink for
// a link that cannot be used, and a validation error naming the field for
// bad input, with nothing written. The audit log names the new admin as
// who made them: nobody else could.
func (s *Users) CreateFirstAdmin(ctx context.Context, secret string, in NewUser) (*User, error) {
	in.Role = RoleAdmin
	if !validSecret(secret) {
		return nil, ErrNoSetupLink
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	u, hash := newUserRow(in, s.now())
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(`DELETE FROM setup_links WHERE hash = $1 AND expires_at > $2 AND NOT EXISTS (SELECT 1 FROM users)`,
			hashSecret(secret), store.Micros(s.now()))
		if err != nil {
			return fmt.Errorf("auth: use set-up link: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNoSetupLink
		}
		return insertUser(tx, audit.Actor{Kind: "user", ID: u.ID}, u, hash)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}
