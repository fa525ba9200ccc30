package ledger

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// The evidence of a consent record or opt-in change (IP address, user
// agent, ...) is personal data and stays out of the ledger, yet an edit to
// it must show. Each consent and opt-in event therefore holds a commitment
// to its row's evidence: an HMAC-SHA256 under the installation's evidence
// key, which the event's hash covers. Without the key the commitment tells
// nothing about the evidence, not even whether two records share an IP
// address (the record id is part of what is hashed); with it, verification
// recomputes the commitment from the row and finds any change.

// Details is the part of a row's evidence that the ledger holds only as a
// commitment: personal data, or what links to it. The method, the consent
// text version and the actor are in the event in clear and are committed
// to as well.
type Details struct {
	IP           string
	UserAgent    string
	TokenID      string // the confirmation link's token, for changes confirmed by email
	TextLanguage string // the language of the consent text shown
	// The provenance of a row an import wrote: the import's id and, for
	// a consent record, when the consent was collected (microseconds, 0
	// when not known) and the notice shown. An opt-in change has the
	// import's id only.
	ImportID    string
	CollectedAt int64
	Notice      string
}

// provenance reports whether d carries an import's provenance.
func (d *Details) provenance() bool { return d.ImportID != "" || d.CollectedAt != 0 || d.Notice != "" }

// erased reports whether the personal evidence (IP address, user agent and
// the confirmation token that links to the contact) is blank, as erasing a
// contact's evidence leaves it. A row with a token left is not erased, and
// its commitment is checked.
func (d *Details) erased() bool { return d.IP == "" && d.UserAgent == "" && d.TokenID == "" }

// evidenceKeyID names the evidence key's row in ledger_keys.
const evidenceKeyID = "evidence"

// CommitEvidence returns the lower-case hex HMAC-SHA256, under key, of the
// evidence e describes: the domain tag "consentry-evidence-v1" and a zero
// byte, then, each as an unsigned LEB128 varint length followed by the
// UTF-8 bytes, kind, record_id, method, ip, user_agent, token_id,
// text_version (decimal), text_language, actor_kind and actor_id; then,
// only for a record with an import's provenance, import_id, collected_at
// (decimal microseconds, 0 when not known) and notice. An event without
// Details commits to blank details.
func CommitEvidence(key []byte, e *Event) string {
	var d Details
	if e.Details != nil {
		d = *e.Details
	}
	mac, field := tagged(key, "consentry-evidence-v1")
	defer macs.Put(mac)
	field(e.Kind)
	field(e.RecordID)
	field(e.Method)
	field(d.IP)
	field(d.UserAgent)
	field(d.TokenID)
	field(strconv.Itoa(e.TextVersion))
	field(d.TextLanguage)
	field(e.ActorKind)
	field(e.ActorID)
	if d.provenance() {
		field(d.ImportID)
		field(strconv.FormatInt(d.CollectedAt, 10))
		field(d.Notice)
	}
	return hex.EncodeToString(mac.h.Sum(nil))
}

// keyedMAC is an HMAC-SHA256 under key, kept for reuse: setting up the key
// costs as much as hashing a record's evidence, and every consent write
// commits to one.
type keyedMAC struct {
	key string
	h   hash.Hash
}

var macs sync.Pool // of *keyedMAC

// takeMAC returns a reset HMAC under key; the caller puts it back in macs.
func takeMAC(key []byte) *keyedMAC {
	if m, _ := macs.Get().(*keyedMAC); m != nil && m.key == string(key) {
		m.h.Reset()
		return m
	}
	return &keyedMAC{key: string(key), h: hmac.New(sha256.New, key)}
}

// tagged returns a reset HMAC under key that has taken the domain tag and
// a zero byte, and the function that writes one field to it (fieldWriter);
// the caller puts the HMAC back in macs.
func tagged(key []byte, tag string) (*keyedMAC, func(string)) {
	mac := takeMAC(key)
	mac.h.Write([]byte(tag))
	mac.h.Write([]byte{0})
	return mac, fieldWriter(mac.h)
}

// fieldWriter returns a function that writes one field to h: its length as
// an unsigned varint, then its bytes.
func fieldWriter(h hash.Hash) func(string) {
	var lenBuf [binary.MaxVarintLen64]byte
	return func(s string) {
		n := binary.PutUvarint(lenBuf[:], uint64(len(s)))
		h.Write(lenBuf[:n])
		h.Write([]byte(s))
	}
}

type evidenceKeyMemo struct{}

// evidenceKey returns the installation's evidence key for a write in tx. It
// is read once per process (kept by the store) and created, 32 random
// bytes, by the first write that needs it. Instances starting together
// agree: the insert does nothing when another has written the key, and the
// read that follows returns the one stored.
func evidenceKey(tx *store.Tx) ([]byte, error) {
	if k, ok := tx.Kept(evidenceKeyMemo{}).([]byte); ok {
		return k, nil
	}
	if k, ok := tx.Local(evidenceKeyMemo{}).([]byte); ok {
		return k, nil // read in this transaction, kept once it commits
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("ledger: make evidence key: %w", err)
	}
	if err := tx.ExecLater(store.Prefix("ledger: store evidence key"), `INSERT INTO ledger_keys (id, key, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO NOTHING`, evidenceKeyID, hex.EncodeToString(fresh), store.Micros(time.Now())); err != nil {
		return nil, err
	}
	var stored string
	if err := tx.Row(`SELECT key FROM ledger_keys WHERE id = $1`, evidenceKeyID).Scan(&stored); err != nil {
		return nil, fmt.Errorf("ledger: read evidence key: %w", err)
	}
	k, err := decodeKey(stored)
	if err != nil {
		return nil, err
	}
	// Kept only if the transaction commits: a key whose insert was rolled
	// back must never sign anything.
	tx.SetLocal(evidenceKeyMemo{}, k)
	tx.KeepAfterCommit(evidenceKeyMemo{}, k)
	return k, nil
}

// readEvidenceKey returns the stored evidence key, or nil when there is
// none (no event with evidence was ever written) or it is not a key.
func readEvidenceKey(ctx context.Context, q store.Querier) ([]byte, error) {
	var stored string
	err := q.QueryRowContext(ctx, `SELECT key FROM ledger_keys WHERE id = $1`, evidenceKeyID).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: read evidence key: %w", err)
	}
	k, err := decodeKey(stored)
	if err != nil {
		return nil, nil // verification reports every commitment unchecked
	}
	return k, nil
}

func decodeKey(stored string) ([]byte, error) {
	k, err := hex.DecodeString(stored)
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("ledger: the stored evidence key is not 32 bytes of hex")
	}
	return k, nil
}
