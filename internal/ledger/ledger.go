// Package ledger keeps the tamper-evident consent ledger (SPEC B1).
//
// Every consent or opt-in change appends one event in the same transaction as
// the change. Events are numbered 1, 2, 3, ... and chained: each event's hash
// covers the previous event's hash and a canonical encoding of its own
// fields, and the newest position and hash are kept in ledger_head. Editing,
// deleting, reordering or inserting an event therefore breaks the chain at
// that position, and dropping events from the end no longer matches the head.
//
// The ledger holds no personal data: a contact appears only as a random
// reference (contacts.ref), and evidence such as IP addresses stays in the
// consent records, the ledger keeping only a keyed hash of it (evidence.go).
// Erasing a contact therefore never breaks verification.
package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// Event kinds.
const (
	// KindConsent: a consent record was written; Value is its state.
	KindConsent = "consent"
	// KindOptIn: the email opt-in status changed; Value is the new status.
	KindOptIn = "opt_in"
	// KindContactDeleted: the contact and its history were deleted; its
	// state replays to nothing.
	KindContactDeleted = "contact_deleted"
	// KindEvidenceErased: the personal evidence (IP address and user agent)
	// of the contact's consent records and opt-in changes written before
	// this event was erased. Their commitments can no longer be
	// recomputed, so verification accepts those rows with both blank,
	// still comparing every field the event holds in clear. The contact's
	// state does not change.
	KindEvidenceErased = "evidence_erased"
	// KindRequest: a data subject request was received or moved on;
	// RecordID is the request, Value its new status and Method its kind
	// (access, erasure, ...). The contact's state does not change.
	KindRequest = "request"
	// KindContactErased: the contact's personal data was erased (R10) and
	// a non-identifying remainder kept. Like evidence_erased, the
	// contact's earlier consent records and opt-in changes may then have
	// their IP address, user agent and confirmation token blanked; unlike
	// it, the event commits (Evidence) to what those rows keep of their
	// evidence (CommitRemainder), so that the rest can still be checked.
	// The contact's state does not change.
	KindContactErased = "contact_erased"
	// KindLegalHold: a legal hold was set on the contact or lifted;
	// RecordID is the hold, Value "set" or "lifted", LegalBasis the hold's
	// legal basis. The hold's reason is operator text and stays out. The
	// contact's state does not change.
	KindLegalHold = "legal_hold"
)

// AppendedTopic is woken (store.DB.Wake) after a transaction that
// appended events commits, for the tree that follows the ledger.
const AppendedTopic = "ledger.appended"

// GenesisHash is the previous hash of event 1.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Event is one ledger entry. Only the fields that describe the change are
// kept; who the contact is lives outside the ledger.
//
// Its times are what its hash covers, integers of microseconds since the
// Unix epoch, in Go and in JSON alike: a verifier outside this program
// hashes the decimal digits it reads, and nothing is lost or rounded on
// the way (docs/ledger.md).
type Event struct {
	Seq int64 `json:"seq"`
	// RecordedAt is when the change was made, in microseconds since the
	// Unix epoch (store.Micros).
	RecordedAt  int64  `json:"recorded_at" doc:"when the change was made, in microseconds since the Unix epoch (UTC): the integer the event's hash covers, written in decimal"`
	Kind        string `json:"kind"`
	ContactRef  string `json:"contact_ref"`
	PurposeID   string `json:"purpose_id,omitempty"`
	Value       string `json:"value,omitempty"`
	LegalBasis  string `json:"legal_basis,omitempty"`
	SourceID    string `json:"source_id,omitempty" doc:"the source's id; its name is operator text and stays out of the ledger"`
	TextVersion int    `json:"text_version,omitempty"`
	ExpiresAt   int64  `json:"expires_at,omitempty" doc:"when a granted consent expires, in microseconds since the Unix epoch; 0 for never"`
	ActorKind   string `json:"actor_kind,omitempty"`
	ActorID     string `json:"actor_id,omitempty"`
	Method      string `json:"method,omitempty"`
	RecordID    string `json:"record_id,omitempty"`
	Evidence    string `json:"evidence,omitempty" doc:"the commitment to the evidence of the consent record or opt-in change (CommitEvidence); empty in events written before evidence was committed to"`
	PrevHash    string `json:"prev_hash"`
	Hash        string `json:"hash"`

	// Details, given to Append for a consent or opt-in event, are the
	// evidence that Evidence commits to; they are not stored in the ledger.
	Details *Details `json:"-"`
	// Erased, given to Append for a contact_erased event, are the rows
	// whose evidence the erasure blanked, as they remain; the event
	// commits to them (CommitRemainder).
	Erased []ErasedRow `json:"-"`
}

// UnmarshalJSON reads an event as encoding/json writes it, and also as
// receipts signed before recorded_at was an integer carry it: RFC 3339
// text, read back to the microsecond it stood for, so that such a receipt
// still checks (receipts.CheckOffline).
func (e *Event) UnmarshalJSON(b []byte) error {
	type fields Event // the same fields, without this method
	v := struct {
		*fields
		RecordedAt json.RawMessage `json:"recorded_at"`
	}{fields: (*fields)(e)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	raw := bytes.TrimSpace(v.RecordedAt)
	if len(raw) == 0 {
		return nil // absent: left as it was, as encoding/json does
	}
	if raw[0] != '"' {
		return json.Unmarshal(raw, &e.RecordedAt)
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, text)
	if err != nil {
		return fmt.Errorf("ledger: recorded_at %q is neither microseconds nor RFC 3339: %w", text, err)
	}
	e.RecordedAt = store.Micros(t)
	return nil
}

// ComputeHash returns the hex SHA-256 that chains e to prevHash. The encoding
// is documented in docs/ledger.md so that anyone can check the chain without
// this program: a domain tag, the previous hash's 32 bytes, then each field in
// a fixed order as an unsigned varint length followed by its bytes, integers
// and times written as decimal (times in microseconds since the Unix epoch).
//
// An event with an evidence commitment is hashed under the tag
// consentry-ledger-v2, with the commitment as a last field; one without,
// under consentry-ledger-v1 as events were before commitments existed, so
// that those still verify. Blanking the commitment of a v2 event therefore
// changes its hash.
func ComputeHash(prevHash string, e *Event) (string, error) {
	var prev [sha256.Size]byte
	if len(prevHash) != hex.EncodedLen(sha256.Size) {
		return "", fmt.Errorf("ledger: previous hash %q is not 32 bytes of hex", prevHash)
	}
	if _, err := hex.Decode(prev[:], []byte(prevHash)); err != nil {
		return "", fmt.Errorf("ledger: previous hash %q is not 32 bytes of hex", prevHash)
	}
	sum := sha256.Sum256(appendHashInput(nil, &prev, e))
	return hex.EncodeToString(sum[:]), nil
}

// appendHashInput appends to buf what ComputeHash hashes for e after an
// event whose hash is prev, and returns the extended buffer: verification
// hashes a million events through one buffer this way.
func appendHashInput(buf []byte, prev *[sha256.Size]byte, e *Event) []byte {
	if e.Evidence == "" {
		buf = append(buf, "consentry-ledger-v1\x00"...)
	} else {
		buf = append(buf, "consentry-ledger-v2\x00"...)
	}
	buf = append(buf, prev[:]...)
	buf = appendIntField(buf, e.Seq)
	buf = appendIntField(buf, e.RecordedAt)
	buf = appendField(buf, e.Kind)
	buf = appendField(buf, e.ContactRef)
	buf = appendField(buf, e.PurposeID)
	buf = appendField(buf, e.Value)
	buf = appendField(buf, e.LegalBasis)
	buf = appendField(buf, e.SourceID)
	buf = appendIntField(buf, int64(e.TextVersion))
	buf = appendIntField(buf, e.ExpiresAt)
	buf = appendField(buf, e.ActorKind)
	buf = appendField(buf, e.ActorID)
	buf = appendField(buf, e.Method)
	buf = appendField(buf, e.RecordID)
	if e.Evidence != "" {
		buf = appendField(buf, e.Evidence)
	}
	return buf
}

// appendField appends one field as fieldWriter writes it: its length as an
// unsigned varint, then its bytes.
func appendField(buf []byte, s string) []byte {
	return append(binary.AppendUvarint(buf, uint64(len(s))), s...)
}

// appendIntField appends an integer field, written as decimal.
func appendIntField(buf []byte, n int64) []byte {
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], n, 10)
	return append(binary.AppendUvarint(buf, uint64(len(d))), d...)
}

// chain is the head as seen inside one write transaction, with the events
// appended there and not yet inserted.
type chain struct {
	seq     int64
	hash    string
	pending []*Event
}

type chainKey struct{}

type chainMark struct {
	seq     int64
	hash    string
	pending int
}

// Mark and Rewind let a rolled-back savepoint take back the events appended
// after it (store.Rewinder).
func (c *chain) Mark() any { return chainMark{c.seq, c.hash, len(c.pending)} }

// Rewind restores the chain to a Mark.
func (c *chain) Rewind(m any) {
	cm := m.(chainMark)
	c.seq, c.hash, c.pending = cm.seq, cm.hash, c.pending[:cm.pending]
}

// Append adds e to the ledger inside tx and returns its position. Seq,
// PrevHash and Hash are filled in.
//
// The head is read (and on PostgreSQL locked) once per transaction, and the
// events are inserted together just before commit. Writers grouped into one
// transaction by store.DB.Write therefore extend the chain one after another
// in memory and pay for one round of inserts and one fsync between them.
//
// A caller that must store the position before it appends (in the row the
// event belongs to) gets it from NextSeq and sets e.Seq; Append then checks
// that nothing was appended in between.
//
// An event with Details gets its evidence commitment (CommitEvidence) under
// the installation's evidence key, which the first such append creates.
func Append(tx *store.Tx, e *Event) (int64, error) {
	c, err := head(tx)
	if err != nil {
		return 0, err
	}
	if e.Seq != 0 && e.Seq != c.seq+1 {
		return 0, fmt.Errorf("ledger: event expected position %d, but the next position is %d", e.Seq, c.seq+1)
	}
	e.Evidence = ""
	if e.Details != nil || e.Kind == KindContactErased {
		key, err := evidenceKey(tx)
		if err != nil {
			return 0, err
		}
		if e.Kind == KindContactErased {
			e.Evidence = CommitRemainder(key, e.Erased)
		} else {
			e.Evidence = CommitEvidence(key, e)
		}
	}
	e.Seq = c.seq + 1
	e.PrevHash = c.hash
	h, err := ComputeHash(c.hash, e)
	if err != nil {
		return 0, err
	}
	e.Hash = h
	c.seq, c.hash = e.Seq, h
	c.pending = append(c.pending, e)
	return e.Seq, nil
}

// NextSeq returns the position the next event appended in tx will get.
func NextSeq(tx *store.Tx) (int64, error) {
	c, err := head(tx)
	if err != nil {
		return 0, err
	}
	return c.seq + 1, nil
}

// Head returns the position of the ledger's last event, 0 when it has
// none: what a verification that stopped at an earlier position has not
// seen yet.
func Head(ctx context.Context, q store.Querier) (int64, error) {
	var seq int64
	if err := q.QueryRowContext(ctx, "SELECT seq FROM ledger_head WHERE id = 1").Scan(&seq); err != nil {
		return 0, fmt.Errorf("ledger: read head: %w", err)
	}
	return seq, nil
}

// head returns the chain as seen by tx, reading the head on first use.
func head(tx *store.Tx) (*chain, error) {
	if c, ok := tx.Local(chainKey{}).(*chain); ok {
		return c, nil
	}
	c := &chain{}
	// Row: on PostgreSQL, the writes queued before go in its round trip.
	err := tx.Row("SELECT seq, hash FROM ledger_head WHERE id = 1").Scan(&c.seq, &c.hash)
	if err != nil {
		return nil, fmt.Errorf("ledger: read head: %w", err)
	}
	tx.SetLocal(chainKey{}, c)
	tx.BeforeCommit(c.flush)
	tx.WakeAfterCommit(AppendedTopic)
	return c, nil
}

const eventColumns = "seq, recorded_at, kind, contact_ref, purpose_id, value, legal_basis, source_id, text_version, expires_at, actor_kind, actor_id, method, record_id, evidence, prev_hash, hash"

// flush inserts the pending events, in chunks that stay under both
// databases' limits on bound parameters, and moves the head.
func (c *chain) flush(tx *store.Tx) error {
	// PostgreSQL gets the events in statements of up to 50 rows, to save
	// round trips; SQLite, in-process, one row at a time, which its
	// writer keeps compiled (store's statement cache) and binds fastest.
	const cols = 17
	chunk := 50
	if tx.Dialect() == store.SQLite {
		chunk = 1
	}
	for start := 0; start < len(c.pending); start += chunk {
		part := c.pending[start:min(start+chunk, len(c.pending))]
		var sb strings.Builder
		sb.WriteString("INSERT INTO ledger_events (" + eventColumns + ") VALUES ")
		args := make([]any, 0, len(part)*cols)
		for i, e := range part {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteByte('(')
			for j := 0; j < cols; j++ {
				if j > 0 {
					sb.WriteByte(',')
				}
				sb.WriteByte('$')
				sb.WriteString(strconv.Itoa(len(args) + j + 1))
			}
			sb.WriteByte(')')
			args = append(args, e.Seq, e.RecordedAt, e.Kind, e.ContactRef, e.PurposeID, e.Value,
				e.LegalBasis, e.SourceID, e.TextVersion, e.ExpiresAt, e.ActorKind, e.ActorID, e.Method, e.RecordID, e.Evidence, e.PrevHash, e.Hash)
		}
		if err := tx.ExecLater(store.Prefix("ledger: insert events"), sb.String(), args...); err != nil {
			return err
		}
	}
	// Queued, on PostgreSQL, to go with the inserts in one round trip just
	// before COMMIT.
	return tx.ExecLater(store.Prefix("ledger: move head"), "UPDATE ledger_head SET seq = $1, hash = $2 WHERE id = 1", c.seq, c.hash)
}
