package ledger

import (
	"crypto/subtle"
	"encoding/hex"
	"strconv"
)

// Erasing a contact blanks the personal evidence of its consent records and
// opt-in changes (IP address, user agent, confirmation token), so their
// evidence commitments can no longer be recomputed. What the rows keep of
// their evidence (the language the consent text was shown in) would then go
// unchecked. The contact_erased event therefore commits to that remainder:
// the XOR of one keyed hash per row (CommitRemainder). XOR makes the
// commitment independent of the order the rows are read in, so that
// verification can add each row as it meets it, in ledger order, keeping 32
// bytes per erased contact.

// ErasedRow is a consent record or opt-in change whose personal evidence an
// erasure blanked, as it remains: its kind (consent or opt_in), its id,
// and the language its consent text was shown in.
type ErasedRow struct {
	Kind         string
	RecordID     string
	TextLanguage string
}

// CommitRemainder returns the lower-case hex XOR, over rows, of the
// HMAC-SHA256 under key of: the domain tag "consentry-remainder-v1" and a
// zero byte, then, each as an unsigned LEB128 varint length followed by the
// UTF-8 bytes, kind, record_id, token_id (always empty: an erased row keeps
// none) and text_language. No rows commit to 32 zero bytes.
func CommitRemainder(key []byte, rows []ErasedRow) string {
	var acc [32]byte
	for i := range rows {
		addRemainder(&acc, key, &rows[i])
	}
	return hex.EncodeToString(acc[:])
}

func addRemainder(acc *[32]byte, key []byte, r *ErasedRow) {
	mac, field := tagged(key, "consentry-remainder-v1")
	defer macs.Put(mac)
	field(r.Kind)
	field(r.RecordID)
	field("")
	field(r.TextLanguage)
	var sum [32]byte
	subtle.XORBytes(acc[:], acc[:], mac.h.Sum(sum[:0]))
}

// remainderOf is what history row r keeps after an erasure.
func remainderOf(r *Event) ErasedRow {
	return ErasedRow{Kind: r.Kind, RecordID: r.RecordID, TextLanguage: r.Details.TextLanguage}
}

// remainderCheck accumulates, per erased contact, the remainder of the rows
// verification finds erased, to compare with the contact_erased event.
type remainderCheck map[string]*[32]byte

func (rc remainderCheck) add(ref string, key []byte, r *Event) {
	acc := rc[ref]
	if acc == nil {
		acc = new([32]byte)
		rc[ref] = acc
	}
	row := remainderOf(r)
	addRemainder(acc, key, &row)
}

// problem compares what was accumulated with each erased contact's event
// and returns the first difference, or nil.
func (rc remainderCheck) problem(state map[string]*replayed, key []byte) *Problem {
	var first *Problem
	for ref, r := range state {
		if r.erasedSeq == 0 || r.deleted || r.remainder == "" {
			continue
		}
		var acc [32]byte
		if a := rc[ref]; a != nil {
			acc = *a
		}
		got := hex.EncodeToString(acc[:])
		if key == nil || got != r.remainder {
			p := &Problem{Code: ProblemEvidence, Seq: r.erasedSeq, ContactRef: ref,
				Message: "what the erased contact's history rows keep of their evidence (text language, no token) no longer gives the commitment of event " +
					strconv.FormatInt(r.erasedSeq, 10)}
			if first == nil || p.Seq < first.Seq {
				first = p
			}
		}
	}
	return first
}
