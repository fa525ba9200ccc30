package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/crypto/argon2"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// Roles of users of the admin web UI.
const (
	RoleAdmin          = "admin"
	RolePrivacyOfficer = "privacy_officer"
	RoleAgent          = "agent"
	RoleBilling        = "billing"
)

// Roles lists every role.
var Roles = []string{RoleAdmin, RolePrivacyOfficer, RoleAgent, RoleBilling}

// Permission is something a role may do.
type Permission string

// Permissions. docs/admin.md has the same table.
const (
	// PermViewContacts: see contacts, their consents and history, masked.
	PermViewContacts Permission = "view_contacts"
	// PermEditContacts: create and edit contacts, record consents, change
	// opt-in statuses, send double opt-in email.
	PermEditContacts Permission = "edit_contacts"
	// PermReveal: reveal the clear value of a sensitive field, logged.
	PermReveal Permission = "reveal"
	// PermSettings: purposes, sources, fields, the preferences page, email
	// settings, and the webforms that ask for consent to the purposes.
	PermSettings Permission = "settings"
	// PermAudit: the access log, the ledger, the outbox and mailbox.
	PermAudit Permission = "audit"
	// PermUsers: users and API tokens.
	PermUsers Permission = "users"
	// PermDelete: delete a contact with their consent records, erase a
	// contact's personal data, set and lift legal holds.
	PermDelete Permission = "delete_contacts"
	// PermRequests: see and handle data subject requests.
	PermRequests Permission = "requests"
	// PermCampaigns: write, preview, test and send campaigns, and keep
	// their templates and the lists they go to.
	PermCampaigns Permission = "campaigns"
)

// permissions is the permission table: what each role may do. Only billing
// and admin may reveal sensitive values (SPEC: who uses it).
var permissions = map[string][]Permission{
	RoleAdmin:          {PermViewContacts, PermEditContacts, PermDelete, PermReveal, PermSettings, PermAudit, PermUsers, PermRequests, PermCampaigns},
	RolePrivacyOfficer: {PermViewContacts, PermEditContacts, PermDelete, PermSettings, PermAudit, PermRequests, PermCampaigns},
	RoleAgent:          {PermViewContacts, PermEditContacts},
	RoleBilling:        {PermViewContacts, PermReveal},
}

// Can reports whether role has permission p.
func Can(role string, p Permission) bool { return slices.Contains(permissions[role], p) }

// User is a user of the admin web UI.
type User struct {
	ID         string     `json:"id"`
	Email      string     `json:"email"`
	Name       string     `json:"name"`
	Role       string     `json:"role" enum:"@role"`
	CreatedAt  time.Time  `json:"created_at"`
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
}

// Can reports whether the user's role has permission p.
func (u *User) Can(p Permission) bool { return u != nil && u.DisabledAt == nil && Can(u.Role, p) }

// NewUser is what creating a user takes.
type NewUser struct {
	Email    string
	Name     string
	Role     string
	Password string
}

// Users manages users, their passwords and sessions.
type Users struct {
	DB  *store.DB
	Now func() time.Time
}

func (s *Users) now() time.Time { return store.Now(s.Now) }

// Password hashing: argon2id with the parameters OWASP recommends as a
// minimum (19 MiB, 2 passes, 1 lane), in the PHC string format so that the
// parameters can be raised later without invalidating stored hashes.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	minPassword  = 12
)

// HashPassword returns the argon2id hash of password in PHC format.
func HashPassword(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// CheckPassword reports whether password matches the PHC-format hash. A
// malformed hash matches nothing.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked against when no user has the address given, so that
// a failed login takes as long whether or not the address is known.
var dummyHash = HashPassword("no user has this password")

func (in *NewUser) validate() error {
	in.Email = strings.TrimSpace(in.Email)
	at := strings.LastIndexByte(in.Email, '@')
	if in.Email == "" {
		return errs.Required("email")
	}
	if at < 1 || at == len(in.Email)-1 || strings.ContainsAny(in.Email, " \t\r\n<>") || len(in.Email) > 254 {
		return errs.Invalid("email", "is not a valid email address")
	}
	if err := errs.OptionalLine("name", &in.Name, 100); err != nil {
		return err
	}
	if !slices.Contains(Roles, in.Role) {
		return errs.Invalid("role", "must be one of %s", strings.Join(Roles, ", "))
	}
	return checkPassword(in.Password)
}

func checkPassword(p string) error {
	if utf8.RuneCountInString(p) < minPassword {
		return errs.Invalid("password", "must be at least %d characters", minPassword)
	}
	if len(p) > 1024 {
		return errs.Invalid("password", "must be at most 1024 bytes")
	}
	return nil
}

// Create makes a user, made by by, who the audit log names. An address
// already in use, in any case, is a conflict on "email".
func (s *Users) Create(ctx context.Context, by audit.Actor, in NewUser) (*User, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	u, hash := newUserRow(in, s.now())
	err := s.DB.Write(ctx, func(tx *store.Tx) error { return insertUser(tx, by, u, hash) })
	if err != nil {
		return nil, err
	}
	return u, nil
}

func newUserRow(in NewUser, now time.Time) (*User, string) {
	return &User{ID: uuid.Must(uuid.NewV7()).String(), Email: in.Email, Name: in.Name, Role: in.Role, CreatedAt: now}, HashPassword(in.Password)
}

// auditedUser is what the audit log keeps of a user: never their
// password or its hash.
type auditedUser struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Role     string `json:"role"`
	Disabled bool   `json:"disabled"`
}

func (u *User) audited() auditedUser {
	return auditedUser{Email: u.Email, Name: u.Name, Role: u.Role, Disabled: u.DisabledAt != nil}
}

// auditTx writes the audit log's entries of changes of u by by.
func (u *User) auditTx(tx *store.Tx, by audit.Actor, action string, changes []audit.Change, now time.Time) error {
	return audit.RecordTx(tx, by, audit.Object{Kind: audit.KindUser, ID: u.ID, Name: u.Email}, action, changes, now)
}

func insertUser(tx *store.Tx, by audit.Actor, u *User, hash string) error {
	_, err := tx.Exec(`INSERT INTO users (id, email, email_key, name, role, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
		u.ID, u.Email, strings.ToLower(u.Email), u.Name, u.Role, hash, store.Micros(u.CreatedAt))
	if store.IsUniqueViolation(err) {
		return errs.Conflict("email_taken", "email", "a user with this email address already exists")
	}
	if err != nil {
		return fmt.Errorf("auth: create user: %w", err)
	}
	return u.auditTx(tx, by, audit.ActionUserCreated, audit.Changes(nil, u.audited()), u.CreatedAt)
}

const userSelect = `SELECT id, email, name, role, created_at, disabled_at FROM users`

// scanUser reads a row of userSelect's columns and then into extra. It
// returns a not-found error when the row is missing.
func scanUser(row store.Scanner, extra ...any) (*User, error) {
	var u User
	var created int64
	var disabled sql.NullInt64
	err := row.Scan(append([]any{&u.ID, &u.Email, &u.Name, &u.Role, &created, &disabled}, extra...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("user", "")
	}
	if err != nil {
		return nil, fmt.Errorf("auth: read user: %w", err)
	}
	u.CreatedAt = store.FromMicros(created)
	if disabled.Valid {
		t := store.FromMicros(disabled.Int64)
		u.DisabledAt = &t
	}
	return &u, nil
}

// AddressesOfRolesTx returns the addresses of the users, not disabled,
// who have one of roles, in the order of their addresses and each once,
// as tx sees them; none is an empty slice. A workflow's notify_users
// action emails them.
func AddressesOfRolesTx(tx *store.Tx, roles []string) ([]string, error) {
	if len(roles) == 0 {
		return []string{}, nil
	}
	cond, args := store.Among(tx.Dialect(), 1, roles)
	out, err := store.QueryAll(context.Background(), tx, func(row store.Scanner) (string, error) {
		var a string
		return a, row.Scan(&a)
	}, `SELECT DISTINCT email FROM users WHERE disabled_at IS NULL AND role `+cond+` ORDER BY email`, args...)
	if err != nil {
		return nil, fmt.Errorf("auth: read the users of roles: %w", err)
	}
	return out, nil
}

// List returns every user by email; none is an empty slice.
func (s *Users) List(ctx context.Context) ([]*User, error) {
	return store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (*User, error) { return scanUser(row) }, userSelect+" ORDER BY email_key")
}

// ErrBadLogin is the one answer to a failed login, whatever the reason: an
// unknown address, a wrong password or a disabled user.
var ErrBadLogin = errors.New("auth: wrong email address or password")

// Authenticate returns the active user with this address and password, or
// ErrBadLogin.
func (s *Users) Authenticate(ctx context.Context, email, password string) (*User, error) {
	var hash string
	u, err := scanUser(s.DB.Read.QueryRowContext(ctx, `SELECT id, email, name, role, created_at, disabled_at, password_hash
		FROM users WHERE email_key = $1`, strings.ToLower(strings.TrimSpace(email))), &hash)
	if errs.Is(err, errs.KindNotFound) {
		CheckPassword(dummyHash, password)
		return nil, ErrBadLogin
	}
	if err != nil {
		return nil, err
	}
	if !CheckPassword(hash, password) || u.DisabledAt != nil {
		return nil, ErrBadLogin
	}
	return u, nil
}

// Permissions lists every permission, in the order of the docs' table.
var Permissions = []Permission{PermViewContacts, PermEditContacts, PermDelete, PermReveal, PermSettings, PermAudit, PermUsers, PermRequests, PermCampaigns}

// Disable stops a user from signing in and ends their sessions, in one
// transaction, by by, who the audit log names. It returns a not-found
// error for an unknown user; a user disabled already stays as they are.
func (s *Users) Disable(ctx context.Context, by audit.Actor, id string) error {
	return s.change(ctx, by, id, audit.ActionUserDisabled, func(u *User, now time.Time) {
		if u.DisabledAt == nil {
			u.DisabledAt = &now
		}
	}, func(tx *store.Tx) error {
		_, err := tx.Exec(`DELETE FROM user_sessions WHERE user_id = $1`, id)
		return err
	})
}

// Enable lets a disabled user sign in again, by by, who the audit log
// names. It returns a not-found error for an unknown user.
func (s *Users) Enable(ctx context.Context, by audit.Actor, id string) error {
	return s.change(ctx, by, id, audit.ActionUserEnabled, func(u *User, _ time.Time) { u.DisabledAt = nil }, nil)
}

// SetRole changes a user's role, by by, who the audit log names; it
// applies from their next page. It returns a not-found error for an
// unknown user.
func (s *Users) SetRole(ctx context.Context, by audit.Actor, id, role string) error {
	if !slices.Contains(Roles, role) {
		return errs.Invalid("role", "must be one of %s", strings.Join(Roles, ", "))
	}
	return s.change(ctx, by, id, audit.ActionUserRoleChanged, func(u *User, _ time.Time) { u.Role = role }, nil)
}

// change applies edit to the user id and writes what it changed, with its
// audit entries of action, and then runs also (when not nil), all in one
// transaction. An edit that changes nothing writes nothing but also. It
// returns a not-found error for an unknown user.
func (s *Users) change(ctx context.Context, by audit.Actor, id, action string, edit func(u *User, now time.Time), also func(tx *store.Tx) error) error {
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		u, err := scanUser(tx.QueryRow(userSelect+" WHERE id = $1", id))
		if err != nil {
			return err
		}
		now := s.now()
		before := u.audited()
		edit(u, now)
		if changes := audit.Changes(before, u.audited()); len(changes) > 0 {
			var disabled any
			if u.DisabledAt != nil {
				disabled = store.Micros(*u.DisabledAt)
			}
			if _, err := tx.Exec(`UPDATE users SET role = $2, disabled_at = $3, updated_at = $4 WHERE id = $1`,
				u.ID, u.Role, disabled, store.Micros(now)); err != nil {
				return fmt.Errorf("auth: change user: %w", err)
			}
			if err := u.auditTx(tx, by, action, changes, now); err != nil {
				return err
			}
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
}

// ChangePassword sets a new password for the user after checking the
// current one, and ends every other session of theirs, so that whoever
// knew the old password (an admin who chose it, say) is signed out. A
// wrong current password is an error on "current_password"; nothing is
// written then. The audit log names the change, by the user, and never
// the password or its hash.
func (s *Users) ChangePassword(ctx context.Context, id, current, next, keepSession string) error {
	var hash string
	u, err := scanUser(s.DB.Read.QueryRowContext(ctx, `SELECT id, email, name, role, created_at, disabled_at, password_hash
		FROM users WHERE id = $1`, id), &hash)
	if err != nil {
		return err
	}
	if !CheckPassword(hash, current) {
		return errs.Invalid("current_password", "is not your current password")
	}
	if err := checkPassword(next); err != nil {
		return err
	}
	newHash := HashPassword(next)
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		now := s.now()
		if _, err := tx.Exec(`UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1`, id, newHash, store.Micros(now)); err != nil {
			return fmt.Errorf("auth: change password: %w", err)
		}
		if _, err := tx.Exec(`DELETE FROM user_sessions WHERE user_id = $1 AND hash <> $2`, id, hashSecret(keepSession)); err != nil {
			return err
		}
		return u.auditTx(tx, audit.Actor{Kind: "user", ID: id}, audit.ActionUserPasswordChanged, []audit.Change{{Name: "password"}}, now)
	})
}
