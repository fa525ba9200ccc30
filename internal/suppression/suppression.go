// Package suppression keeps what an erasure or a deletion leaves behind,
// with no personal data: suppression entries, which stop an erased address
// from coming back silently, and the erasure log, which says who or which
// rule erased which contact and when.
//
// A suppression entry is a keyed hash (HMAC-SHA256) of the normalised
// address, under the installation's erasure key (table erasure_keys, made
// by the first erasure). Without the key the hash tells nothing; with it,
// an address can be tested against the entries, which is what creation
// does. The address itself is stored nowhere.
package suppression

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/store"
)

// Reasons a suppression entry was written, and the erasure log's actions.
const (
	Erased  = "erased"  // the contact's personal data was erased
	Deleted = "deleted" // the whole record was deleted
	// PartlyErased: a legal hold kept part of the record; the rest was
	// erased (erasure log only: the address is still held).
	PartlyErased = "partly_erased"
)

// Normalize is the form of an address that is hashed: trimmed and in lower
// case, as contacts' addresses are compared.
func Normalize(address string) string { return strings.ToLower(strings.TrimSpace(address)) }

const keyID = "suppression"

type keyMemo struct{}

// absentMemo keeps, for a moment, that there is no erasure key (Armed).
type absentMemo struct{}

// key returns the erasure key for a write in tx, making it (32 random
// bytes) on first use. Like the ledger's evidence key, it is kept in memory
// once its transaction commits, and instances starting together agree on
// the one stored.
func key(tx *store.Tx, create bool) ([]byte, error) {
	if k, ok := tx.Kept(keyMemo{}).([]byte); ok {
		return k, nil
	}
	if k, ok := tx.Local(keyMemo{}).([]byte); ok {
		return k, nil
	}
	if create {
		fresh := make([]byte, 32)
		if _, err := rand.Read(fresh); err != nil {
			return nil, fmt.Errorf("suppression: make key: %w", err)
		}
		if _, err := tx.Exec(`INSERT INTO erasure_keys (id, key, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`,
			keyID, hex.EncodeToString(fresh), store.Micros(time.Now())); err != nil {
			return nil, fmt.Errorf("suppression: store key: %w", err)
		}
	}
	k, err := readKey(tx.Row(keySelect, keyID))
	if err != nil || k == nil {
		return nil, err // none: nothing was ever erased, nothing is suppressed
	}
	tx.SetLocal(keyMemo{}, k)
	tx.KeepAfterCommit(keyMemo{}, k)
	return k, nil
}

// Hash returns the lower-case hex HMAC-SHA256, under key, of the domain
// tag "consentry-suppression-v1", a zero byte and the normalised address.
func Hash(key []byte, address string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("consentry-suppression-v1\x00"))
	m.Write([]byte(Normalize(address)))
	return hex.EncodeToString(m.Sum(nil))
}

// AddTx writes the suppression entry of address inside tx, for reason
// (Erased or Deleted). An entry already there keeps its first time.
func AddTx(tx *store.Tx, address, reason string, now time.Time) error {
	if Normalize(address) == "" {
		return nil
	}
	k, err := key(tx, true)
	if err != nil {
		return err
	}
	return tx.ExecLater(store.Prefix("suppression: add entry"), `INSERT INTO suppressions (address_hash, reason, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (address_hash) DO NOTHING`, Hash(k, address), reason, store.Micros(now))
}

// Armed reports whether any address may be suppressed, that is whether
// the erasure key exists, reading outside any write. Once it does, the key
// is kept in memory and this stays true without reading; its absence is
// remembered for a second, so that a burst of creations reads once. A
// creation that finds it false skips CheckTx: until the first erasure of
// an installation there is nothing to check, and a read saved in every
// creation's write. (An address erased for the very first time on another
// instance while it is being created again could slip through: the one
// second after the key appears.)
func Armed(ctx context.Context, db *store.DB) (bool, error) {
	if _, ok := db.Kept(keyMemo{}).([]byte); ok {
		return true, nil
	}
	if until, ok := db.Kept(absentMemo{}).(time.Time); ok && time.Now().Before(until) {
		return false, nil
	}
	k, err := readKey(db.Read.QueryRowContext(ctx, keySelect, keyID))
	if err != nil {
		return false, err
	}
	if k == nil {
		db.Keep(absentMemo{}, time.Now().Add(time.Second))
		return false, nil
	}
	db.Keep(keyMemo{}, k)
	return true, nil
}

const keySelect = `SELECT key FROM erasure_keys WHERE id = $1`

// readKey scans the erasure key from row; nil when there is none.
func readKey(row store.Scanner) ([]byte, error) {
	var stored string
	err := row.Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("suppression: read key: %w", err)
	}
	k, err := hex.DecodeString(stored)
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("suppression: the stored erasure key is not 32 bytes of hex")
	}
	return k, nil
}

// CheckTx returns when address was suppressed (erased or deleted), or nil
// when it never was.
func CheckTx(tx *store.Tx, address string) (*time.Time, error) {
	k, err := key(tx, false)
	if err != nil || k == nil {
		return nil, err
	}
	var at int64
	err = tx.Row(`SELECT created_at FROM suppressions WHERE address_hash = $1`, Hash(k, address)).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("suppression: check: %w", err)
	}
	t := store.FromMicros(at)
	return &t, nil
}

// CheckManyTx is CheckTx for many addresses in one statement: the time
// each address that has a suppression entry was erased, by the address as
// given. Addresses without an entry are left out; so are all when there
// are no entries at all (no key yet).
func CheckManyTx(tx *store.Tx, addresses []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	k, err := key(tx, false)
	if err != nil || k == nil || len(addresses) == 0 {
		return out, err
	}
	byHash := make(map[string]string, len(addresses))
	hashes := make([]string, 0, len(addresses))
	for _, a := range addresses {
		h := Hash(k, a)
		byHash[h] = a
		hashes = append(hashes, h)
	}
	cond, args := store.Among(tx.Dialect(), 1, hashes)
	rows, err := tx.Query(`SELECT address_hash, created_at FROM suppressions WHERE address_hash `+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("suppression: check: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h string
		var at int64
		if err := rows.Scan(&h, &at); err != nil {
			return nil, fmt.Errorf("suppression: check: %w", err)
		}
		out[byHash[h]] = store.FromMicros(at)
	}
	return out, rows.Err()
}

// Entry is one line of the erasure log: which contact (by id only), when,
// what was done, and the rule, request or user that did it.
type Entry struct {
	ID        string        `json:"id"`
	ContactID string        `json:"contact_id"`
	At        time.Time     `json:"at"`
	Action    string        `json:"action" enum:"erased,partly_erased,deleted"`
	Rule      string        `json:"rule,omitempty" doc:"the rule that erased or deleted the contact: retention, legal_hold_ended for an erasure that waited on a hold, or import_undone for a contact removed by the undo of the import that created it"`
	RequestID string        `json:"request_id,omitempty" doc:"the request the erasure fulfilled"`
	ImportID  string        `json:"import_id,omitempty" doc:"the import whose undo removed the contact (rule import_undone)"`
	Note      string        `json:"note,omitempty" doc:"the operator's note on why; it names no one"`
	Actor     consent.Actor `json:"actor"`
}

// LogTx appends e to the erasure log inside tx; ID is filled in.
func LogTx(tx *store.Tx, e *Entry) error {
	e.ID = uuid.Must(uuid.NewV7()).String()
	return tx.ExecLater(store.Prefix("suppression: log erasure"), `INSERT INTO erasure_log (id, contact_id, at, action, rule, request_id, note,
		actor_kind, actor_id, import_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, e.ID, e.ContactID, store.Micros(e.At), e.Action, e.Rule,
		e.RequestID, e.Note, e.Actor.Kind, e.Actor.ID, e.ImportID)
}

// Log returns the contact's erasure log, oldest first; none is an empty
// slice.
func Log(ctx context.Context, q store.Querier, contactID string) ([]Entry, error) {
	out, err := store.QueryAll(ctx, q, func(row store.Scanner) (Entry, error) {
		var e Entry
		var at int64
		err := row.Scan(&e.ID, &e.ContactID, &at, &e.Action, &e.Rule, &e.RequestID, &e.Note, &e.Actor.Kind, &e.Actor.ID, &e.ImportID)
		e.At = store.FromMicros(at)
		return e, err
	}, `SELECT id, contact_id, at, action, rule, request_id, note, actor_kind, actor_id, import_id FROM erasure_log WHERE contact_id = $1
		ORDER BY at, id`, contactID)
	if err != nil {
		return nil, fmt.Errorf("suppression: read log: %w", err)
	}
	return out, nil
}
