// Package signing keeps the installation's Ed25519 signing keys: the key
// that signs consent receipts (as JWS, EdDSA) and ledger checkpoints (as
// signed notes, golang.org/x/mod/sumdb/note). One key serves both, so a
// contact or an auditor needs one public key, given as a note verifier
// key ("name+hash+base64"), to check everything Consentry signs.
//
// The first key is made on first use. Rotate makes a new current key; the
// old ones keep their public half, served for verification (Public), and
// lose their private half. With a keyset configured, private halves are
// stored wrapped by it (vault.Vault.Wrap), as contacts' data keys are;
// without one they are stored as they are, like the ledger's evidence key.
package signing

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/mod/sumdb/note"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/vault"
)

// Service hands out the current signing key and every public key.
type Service struct {
	DB *store.DB
	// Vault wraps private keys; nil stores them unwrapped.
	Vault *vault.Vault
	// Name is the note key name a new key gets: the installation's host
	// and "/ledger", say. It must hold no '+' nor white space.
	Name string
	Now  func() time.Time

	mu      sync.Mutex
	current *Key
	checked time.Time
}

// Key is a signing key with its private half.
type Key struct {
	PublicKey
	private ed25519.PrivateKey
}

// PublicKey is a signing key's public half.
type PublicKey struct {
	// ID is the note key hash, 8 hex digits: the JWS kid and the hash a
	// signed note names.
	ID        string
	Name      string
	Public    ed25519.PublicKey
	CreatedAt time.Time
	// RetiredAt is when a newer key replaced it; nil for the current key.
	RetiredAt *time.Time
}

// VerifierKey is the note verifier key, "name+hash+base64": what a
// verifier needs to check a checkpoint or a receipt.
func (k PublicKey) VerifierKey() string {
	v, _ := note.NewEd25519VerifierKey(k.Name, k.Public)
	return v
}

// ParseVerifierKey reads a note verifier key ("name+hash+base64", as
// VerifierKey writes it and /ledger/key serves it) back into a public
// key, for a check made with nothing but the key: an offline receipt
// check. It fails on anything but an Ed25519 verifier key.
func ParseVerifierKey(vkey string) (PublicKey, error) {
	vkey = strings.TrimSpace(vkey)
	if _, err := note.NewVerifier(vkey); err != nil {
		return PublicKey{}, fmt.Errorf("signing: verifier key %q: %w", vkey, err)
	}
	parts := strings.SplitN(vkey, "+", 3)
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 1 {
		return PublicKey{}, fmt.Errorf("signing: verifier key %q is not an Ed25519 key", vkey)
	}
	return PublicKey{ID: parts[1], Name: parts[0], Public: ed25519.PublicKey(raw[1:])}, nil
}

// Verifier is the key as a note verifier.
func (k PublicKey) Verifier() (note.Verifier, error) { return note.NewVerifier(k.VerifierKey()) }

// Sign signs msg with Ed25519.
func (k *Key) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.private, msg), nil }

// Private is the key's private half, for a JWS library's signer.
func (k *Key) Private() ed25519.PrivateKey { return k.private }

// NoteSigner is the key as a note signer.
func (k *Key) NoteSigner() note.Signer { return noteSigner{k} }

type noteSigner struct{ k *Key }

func (s noteSigner) Name() string                    { return s.k.Name }
func (s noteSigner) KeyHash() uint32                 { h, _ := strconv.ParseUint(s.k.ID, 16, 32); return uint32(h) }
func (s noteSigner) Sign(msg []byte) ([]byte, error) { return s.k.Sign(msg) }

// NameFor is the note key name for an installation at baseURL: its host
// and port, then "/ledger".
func NameFor(baseURL string) string {
	host := baseURL
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" {
		host = u.Host
	}
	name := strings.Map(func(r rune) rune {
		if r == '+' || unicode.IsSpace(r) || r > unicode.MaxASCII {
			return '-'
		}
		return r
	}, host)
	if name == "" {
		name = "consentry"
	}
	return name + "/ledger"
}

// recheck is how long a process keeps using the current key before it
// looks again for one rotated by another instance.
const recheck = time.Minute

func (s *Service) now() time.Time {
	return store.Now(func() time.Time {
		if s.Now != nil {
			return s.Now()
		}
		return time.Now()
	})
}

// Current returns the current signing key, making the first one when
// there is none.
//
// The lock that guards the kept key is never held while the database is
// read or written: a transaction that signs (CurrentIn) holds the writer
// and then takes the lock, so holding the lock while waiting for the
// writer, as making the first key or a rotation must, would leave each
// waiting for the other.
func (s *Service) Current(ctx context.Context) (*Key, error) {
	if k := s.kept(); k != nil {
		return k, nil
	}
	k, err := s.load(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		k, err = s.create(ctx, false)
	}
	if err != nil {
		return nil, err
	}
	s.keep(k)
	return k, nil
}

// kept returns the key this process read within the last minute, or nil
// when it must look again.
func (s *Service) kept() *Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current != nil && time.Since(s.checked) < recheck {
		return s.current
	}
	return nil
}

// keep makes k the key this process uses for the next minute, unless it
// keeps a newer one already: a read that began before a rotation must not
// bring back the key the rotation retired.
func (s *Service) keep(k *Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil || !k.CreatedAt.Before(s.current.CreatedAt) {
		s.current, s.checked = k, time.Now()
	}
}

// CurrentIn is Current inside tx, for what is signed in the transaction
// of what it signs (a receipt emailed with its consent record): the key is
// read, or the first one made, through tx, as another transaction would
// wait for tx's own. A first key made here is kept by the process only
// once another Current reads it after the commit.
func (s *Service) CurrentIn(tx *store.Tx) (*Key, error) {
	if k := s.kept(); k != nil {
		return k, nil
	}
	k, err := s.loadVia(context.Background(), tx)
	if errors.Is(err, sql.ErrNoRows) {
		if err := s.storeNew(tx, false); err != nil {
			return nil, err
		}
		k, err = s.loadVia(context.Background(), tx)
	}
	return k, err
}

// Rotate makes a new current key and retires the others: their private
// halves are deleted, their public halves kept.
func (s *Service) Rotate(ctx context.Context) (*Key, error) {
	k, err := s.create(ctx, true)
	if err != nil {
		return nil, err
	}
	s.keep(k)
	return k, nil
}

// Public returns every key's public half, the current one first; none
// before the first key is made.
func (s *Service) Public(ctx context.Context) ([]PublicKey, error) {
	return store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (PublicKey, error) {
		k, _, _, err := scanKey(row)
		return k, err
	}, `SELECT id, name, public_key, private_key, wrapped_by, created_at, retired_at FROM signing_keys
		ORDER BY retired_at IS NOT NULL, created_at DESC`)
}

// Rewrap wraps every private key under the keyset's primary key, for a
// keyset rotation; it returns how many it wrapped anew.
func (s *Service) Rewrap(ctx context.Context) (int, error) {
	if s.Vault == nil {
		return 0, nil
	}
	n := 0
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		n = 0
		primary := int64(s.Vault.PrimaryKeyID())
		rows, err := store.QueryAll(ctx, tx, func(row store.Scanner) ([3]string, error) {
			var id, private string
			var by int64
			err := row.Scan(&id, &private, &by)
			return [3]string{id, private, strconv.FormatInt(by, 10)}, err
		}, `SELECT id, private_key, wrapped_by FROM signing_keys WHERE private_key <> '' AND wrapped_by <> $1`, primary)
		if err != nil {
			return fmt.Errorf("signing: read keys: %w", err)
		}
		for _, r := range rows {
			by, _ := strconv.ParseInt(r[2], 10, 64)
			seed, err := s.open(r[0], r[1], by)
			if err != nil {
				return err
			}
			stored, wrappedBy, err := s.seal(r[0], seed)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(`UPDATE signing_keys SET private_key = $2, wrapped_by = $3 WHERE id = $1`, r[0], stored, wrappedBy); err != nil {
				return fmt.Errorf("signing: store key: %w", err)
			}
			n++
		}
		return nil
	})
	return n, err
}

// Unwrapped counts the private keys not wrapped under the keyset key
// primary: a keyset key cannot be retired while any is under it.
func (s *Service) Unwrapped(ctx context.Context, primary uint32) (int, error) {
	var n int
	err := s.DB.Read.QueryRowContext(ctx, `SELECT count(*) FROM signing_keys WHERE private_key <> '' AND wrapped_by <> $1`,
		int64(primary)).Scan(&n)
	return n, err
}

func (s *Service) load(ctx context.Context) (*Key, error) { return s.loadVia(ctx, s.DB.Read) }

// loadVia reads the current key through q; sql.ErrNoRows when there is
// none.
func (s *Service) loadVia(ctx context.Context, q store.Querier) (*Key, error) {
	row := q.QueryRowContext(ctx, `SELECT id, name, public_key, private_key, wrapped_by, created_at, retired_at
		FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1`)
	pub, private, by, err := scanKey(row)
	if err != nil {
		return nil, err
	}
	seed, err := s.open(pub.ID, private, by)
	if err != nil {
		return nil, err
	}
	return &Key{PublicKey: pub, private: ed25519.NewKeyFromSeed(seed)}, nil
}

// create makes a key and stores it; retire says the others retire. Made
// without retire, it is stored only if there is still no current key, and
// the one stored is returned: instances starting together agree.
func (s *Service) create(ctx context.Context, retire bool) (*Key, error) {
	if err := s.DB.Write(ctx, func(tx *store.Tx) error { return s.storeNew(tx, retire) }); err != nil {
		return nil, err
	}
	return s.load(ctx)
}

// storeNew makes a key and stores it inside tx, as create says.
func (s *Service) storeNew(tx *store.Tx, retire bool) error {
	name := s.Name
	if name == "" {
		name = "consentry/ledger"
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("signing: make key: %w", err)
	}
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return fmt.Errorf("signing: key name %q: %w", name, err)
	}
	id := strings.Split(vkey, "+")[1]
	stored, wrappedBy, err := s.seal(id, priv.Seed())
	if err != nil {
		return err
	}
	now := s.now()
	if retire {
		if _, err := tx.Exec(`UPDATE signing_keys SET retired_at = $1, private_key = '' WHERE retired_at IS NULL`, store.Micros(now)); err != nil {
			return fmt.Errorf("signing: retire keys: %w", err)
		}
	} else {
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM signing_keys WHERE retired_at IS NULL`).Scan(&n); err != nil {
			return fmt.Errorf("signing: read keys: %w", err)
		}
		if n > 0 {
			return nil // another instance made it
		}
	}
	_, err = tx.Exec(`INSERT INTO signing_keys (id, name, public_key, private_key, wrapped_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, name, base64.StdEncoding.EncodeToString(pub), stored, wrappedBy, store.Micros(now))
	if err != nil {
		return fmt.Errorf("signing: store key: %w", err)
	}
	return nil
}

// seal returns a private key's seed as stored, and the keyset key that
// wrapped it (0: none).
func (s *Service) seal(id string, seed []byte) (string, int64, error) {
	if s.Vault == nil {
		return base64.StdEncoding.EncodeToString(seed), 0, nil
	}
	wrapped, by, err := s.Vault.Wrap(label(id), seed)
	if err != nil {
		return "", 0, fmt.Errorf("signing: wrap key: %w", err)
	}
	return wrapped, int64(by), nil
}

func (s *Service) open(id, stored string, wrappedBy int64) ([]byte, error) {
	if stored == "" {
		return nil, fmt.Errorf("signing: key %s is retired", id)
	}
	if wrappedBy == 0 {
		seed, err := base64.StdEncoding.DecodeString(stored)
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("signing: key %s is not a key", id)
		}
		return seed, nil
	}
	if s.Vault == nil {
		return nil, fmt.Errorf("signing: key %s is wrapped by a keyset, and none is configured: set CONSENTRY_KEYSET_FILE and CONSENTRY_MASTER_KEY", id)
	}
	seed, err := s.Vault.Unwrap(label(id), stored)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("signing: open key %s: %v", id, err)
	}
	return seed, nil
}

// label binds a wrapped key to its id, apart from any contact's data key.
func label(id string) string { return "signing-key/" + id }

func scanKey(row store.Scanner) (PublicKey, string, int64, error) {
	var k PublicKey
	var pub, private string
	var by, created int64
	var retired sql.NullInt64
	if err := row.Scan(&k.ID, &k.Name, &pub, &private, &by, &created, &retired); err != nil {
		return k, "", 0, err
	}
	raw, err := base64.StdEncoding.DecodeString(pub)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return k, "", 0, fmt.Errorf("signing: key %s: the public key is not a key", k.ID)
	}
	k.Public = ed25519.PublicKey(raw)
	k.CreatedAt = store.FromMicros(created)
	if retired.Valid {
		t := store.FromMicros(retired.Int64)
		k.RetiredAt = &t
	}
	return k, private, by, nil
}
