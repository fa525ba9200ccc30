package ledger

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// Problem codes in a Report.
const (
	ProblemSequence     = "sequence_broken"         // a position is missing, repeated or out of order
	ProblemPrevHash     = "prev_hash_mismatch"      // the event does not point at the event before it
	ProblemHash         = "hash_mismatch"           // the event's fields no longer give its hash
	ProblemHead         = "head_mismatch"           // the last event is not the recorded head
	ProblemState        = "state_mismatch"          // current consent or opt-in state differs from the replay
	ProblemMissing      = "contact_missing"         // the ledger has state for a contact that is gone without a deletion event
	ProblemDeletedAlive = "deleted_contact_present" // a contact the ledger records as deleted is present
	ProblemRowMissing   = "history_row_missing"     // an event's consent record or opt-in change is gone
	ProblemRowMismatch  = "history_row_mismatch"    // a consent record or opt-in change differs from its event
	ProblemRowExtra     = "history_row_unbacked"    // a consent record or opt-in change has no event of its own
	ProblemEvidence     = "evidence_mismatch"       // the evidence of a consent record or opt-in change no longer gives its event's commitment
)

// Problem is the first thing verification found wrong. Seq is the ledger
// position it concerns: the first bad event for chain problems, the event a
// history row belongs to, or the last event of the contact whose state
// disagrees (0 if the ledger has none).
type Problem struct {
	Code       string `json:"code"`
	Seq        int64  `json:"seq"`
	ContactRef string `json:"contact_ref,omitempty"`
	Message    string `json:"message"`
}

// Report is the result of Verify.
type Report struct {
	OK              bool      `json:"ok"`
	Events          int64     `json:"events"`
	HeadSeq         int64     `json:"head_seq"`
	HeadHash        string    `json:"head_hash"`
	ContactsChecked int64     `json:"contacts_checked"`
	RowsChecked     int64     `json:"history_rows_checked"`
	Problem         *Problem  `json:"problem,omitempty"`
	CheckedAt       time.Time `json:"checked_at"`
}

// Current is a contact's current state for one purpose: its state and the
// consent record that set it.
type Current struct {
	State    string
	RecordID string
}

// ContactState is a contact's current opt-in status and consents by purpose
// id, as the domain tables hold them.
type ContactState struct {
	Ref      string
	OptIn    string
	Consents map[string]Current
}

// State is what the ledger is checked against. Both methods read through q,
// so they see the snapshot the ledger is read in.
type State interface {
	// EachContact calls fn for every contact's current state.
	EachContact(ctx context.Context, q store.Querier, fn func(ContactState) error) error
	// Rows returns the history rows (consent records and opt-in changes)
	// that claim ledger positions in [from, to), each as the event it says
	// it was written with, with its evidence in Details.
	Rows(ctx context.Context, q store.Querier, from, to int64) ([]Event, error)
}

type replayed struct {
	optIn    string
	consents map[string]Current
	lastSeq  int64
	deleted  bool
	erasedAt int64 // the last evidence_erased or contact_erased event, or 0
	// erasedSeq and remainder: the last contact_erased event and its
	// commitment to what the erased rows keep (CommitRemainder).
	erasedSeq int64
	remainder string
	seen      bool // compare met the contact
}

// Verify recomputes the chain from the first event, checks it ends at the
// recorded head, replays the events into each contact's state and compares
// that with the current state, and checks every history row against its
// event, both ways. It stops at the first problem. An error is returned only
// when the database could not be read; a broken ledger is a Report with OK
// false.
func Verify(ctx context.Context, db *store.DB, st State, now time.Time) (*Report, error) {
	rep := &Report{CheckedAt: now.UTC()}
	err := db.Snapshot(ctx, func(q store.Querier) error {
		state, err := scan(ctx, q, rep)
		if err != nil || rep.Problem != nil {
			return err
		}
		if err := compare(ctx, q, st, state.byRef, rep); err != nil || rep.Problem != nil {
			return err
		}
		key, err := readEvidenceKey(ctx, q)
		if err != nil {
			return err
		}
		return checkRows(ctx, q, st, state, key, rep)
	})
	if err != nil {
		return nil, err
	}
	rep.OK = rep.Problem == nil
	return rep, nil
}

func scanEvent(row store.Scanner) (Event, error) {
	var e Event
	err := row.Scan(&e.Seq, &e.RecordedAt, &e.Kind, &e.ContactRef, &e.PurposeID, &e.Value, &e.LegalBasis, &e.SourceID,
		&e.TextVersion, &e.ExpiresAt, &e.ActorKind, &e.ActorID, &e.Method, &e.RecordID, &e.Evidence, &e.PrevHash, &e.Hash)
	return e, err
}

// eventScanner reads rows of eventColumns into one Event, reused from row
// to row, so that reading a million events allocates only their strings.
type eventScanner struct {
	e    Event
	dest []any
}

// scan reads row into the scanner's Event and returns it; the next scan
// overwrites it.
func (s *eventScanner) scan(row store.Scanner) (*Event, error) {
	if s.dest == nil {
		e := &s.e
		s.dest = []any{&e.Seq, &e.RecordedAt, &e.Kind, &e.ContactRef, &e.PurposeID, &e.Value, &e.LegalBasis, &e.SourceID,
			&e.TextVersion, &e.ExpiresAt, &e.ActorKind, &e.ActorID, &e.Method, &e.RecordID, &e.Evidence, &e.PrevHash, &e.Hash}
	}
	if err := row.Scan(s.dest...); err != nil {
		return nil, err
	}
	return &s.e, nil
}

// eachEvent calls fn with each event of rows (of eventColumns), in order,
// until fn returns false, and closes rows. The events are read in a
// goroutine of their own, a batch ahead, so that reading them (the
// driver's work) and checking them take a core each. fn's event is valid
// until fn returns. The error is the reading's.
func eachEvent(rows *sql.Rows, fn func(e *Event) bool) error {
	const batch = 256
	full, free := make(chan []Event, 2), make(chan []Event, 4)
	for range cap(free) {
		free <- make([]Event, 0, batch)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	var readErr error
	go func() {
		defer close(done)
		defer close(full)
		var es eventScanner
		for more := true; more; {
			var b []Event
			select {
			case b = <-free:
			case <-stop:
				return
			}
			b = b[:0]
			for len(b) < batch {
				if more = rows.Next(); !more {
					break
				}
				e, err := es.scan(rows)
				if err != nil {
					readErr = fmt.Errorf("ledger: read event: %w", err)
					return
				}
				b = append(b, *e)
			}
			select {
			case full <- b:
			case <-stop:
				return
			}
		}
		if err := rows.Err(); err != nil {
			readErr = fmt.Errorf("ledger: read events: %w", err)
		}
	}()
	defer func() {
		close(stop)
		<-done
		rows.Close()
	}()
	for b := range full {
		for i := range b {
			if !fn(&b[i]) {
				return nil
			}
		}
		free <- b
	}
	<-done
	return readErr
}

func scan(ctx context.Context, q store.Querier, rep *Report) (*replay, error) {
	err := q.QueryRowContext(ctx, "SELECT seq, hash FROM ledger_head WHERE id = 1").Scan(&rep.HeadSeq, &rep.HeadHash)
	if errors.Is(err, sql.ErrNoRows) {
		rep.Problem = &Problem{Code: ProblemHead, Message: "the ledger head is missing"}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: read head: %w", err)
	}
	rows, err := q.QueryContext(ctx, "SELECT "+eventColumns+" FROM ledger_events ORDER BY seq")
	if err != nil {
		return nil, fmt.Errorf("ledger: read events: %w", err)
	}
	state := &replay{byRef: map[string]*replayed{}}
	link := newLinkCheck()
	err = eachEvent(rows, func(e *Event) bool {
		rep.Events++
		if rep.Problem = link.check(e); rep.Problem != nil {
			return false
		}
		state.apply(e)
		return true
	})
	if err != nil || rep.Problem != nil {
		return nil, err
	}
	prev, want := link.prev, link.want
	if want-1 != rep.HeadSeq || prev != rep.HeadHash {
		rep.Problem = &Problem{Code: ProblemHead, Seq: want,
			Message: fmt.Sprintf("the chain ends at event %d but the head records event %d", want-1, rep.HeadSeq)}
		return nil, nil
	}
	return state, nil
}

// linkCheck checks the chain one event at a time: prev is the hash of the
// last event checked (prevSum, its bytes), want the position the next
// event must have, committedSince the first event with an evidence
// commitment (0 until one). buf is reused for every event's hash input.
type linkCheck struct {
	prev           string
	prevSum        [sha256.Size]byte
	want           int64
	committedSince int64
	buf            []byte
}

// newLinkCheck returns the check of a chain from its first event.
func newLinkCheck() *linkCheck {
	c := &linkCheck{prev: GenesisHash, want: 1}
	hex.Decode(c.prevSum[:], []byte(GenesisHash))
	return c
}

// check checks event e as the next one: its position, its link, its hash,
// and that it commits to its evidence if an earlier event did. It returns
// the problem found, or nil, and on nil moves on past e.
func (c *linkCheck) check(e *Event) *Problem {
	switch {
	case e.Seq != c.want:
		return &Problem{Code: ProblemSequence, Seq: c.want,
			Message: fmt.Sprintf("expected event %d, found event %d", c.want, e.Seq)}
	case e.PrevHash != c.prev:
		return &Problem{Code: ProblemPrevHash, Seq: e.Seq,
			Message: fmt.Sprintf("event %d does not point at the hash of event %d", e.Seq, e.Seq-1)}
	}
	// ComputeHash without its allocations: prevSum is the hash e.PrevHash
	// spells (the hash of the event before, checked against its fields,
	// or the genesis hash), and the sum is compared as ComputeHash's hex.
	c.buf = appendHashInput(c.buf[:0], &c.prevSum, e)
	sum := sha256.Sum256(c.buf)
	var hexSum [2 * sha256.Size]byte
	hex.Encode(hexSum[:], sum[:])
	if string(hexSum[:]) != e.Hash {
		return &Problem{Code: ProblemHash, Seq: e.Seq,
			Message: fmt.Sprintf("event %d was altered: its fields no longer give its hash", e.Seq)}
	}
	// Once one consent or opt-in event commits to its evidence, every
	// later one does: an event without a commitment after that is an
	// old-format event forged into a newer ledger.
	if e.Kind == KindConsent || e.Kind == KindOptIn {
		switch {
		case e.Evidence != "" && c.committedSince == 0:
			c.committedSince = e.Seq
		case e.Evidence == "" && c.committedSince != 0:
			return &Problem{Code: ProblemEvidence, Seq: e.Seq, ContactRef: e.ContactRef,
				Message: fmt.Sprintf("event %d has no evidence commitment, though every consent and opt-in event since event %d has one", e.Seq, c.committedSince)}
		}
	}
	c.prev, c.prevSum, c.want = e.Hash, sum, e.Seq+1
	return nil
}

// replay is every contact's state as the events replay to, by contact
// reference. The states are allocated in slabs, and a contact's consents
// map only once it has one, so that a ledger of a million contacts costs
// a few allocations per thousand.
type replay struct {
	byRef map[string]*replayed
	slab  []replayed
	// rowEvents counts the consent and opt-in events, which have history
	// rows, in each rowChunk of positions: checkRows reads the events of
	// a chunk again only when it has some.
	rowEvents []int32
}

func (s *replay) apply(e *Event) {
	r := s.byRef[e.ContactRef]
	if r == nil {
		if len(s.slab) == 0 {
			s.slab = make([]replayed, 1024)
		}
		r, s.slab = &s.slab[0], s.slab[1:]
		r.optIn = "none"
		s.byRef[e.ContactRef] = r
	}
	r.lastSeq = e.Seq
	if e.Kind == KindConsent || e.Kind == KindOptIn {
		chunk := int((e.Seq - 1) / rowChunk)
		for len(s.rowEvents) <= chunk {
			s.rowEvents = append(s.rowEvents, 0)
		}
		s.rowEvents[chunk]++
	}
	switch e.Kind {
	case KindConsent:
		if r.consents == nil {
			r.consents = map[string]Current{}
		}
		r.consents[e.PurposeID] = Current{State: e.Value, RecordID: e.RecordID}
	case KindOptIn:
		r.optIn = e.Value
	case KindContactDeleted:
		r.deleted = true
		r.optIn = "none"
		clear(r.consents)
	case KindEvidenceErased:
		r.erasedAt = e.Seq
	case KindContactErased:
		r.erasedAt, r.erasedSeq, r.remainder = e.Seq, e.Seq, e.Evidence
	}
}

func compare(ctx context.Context, q store.Querier, st State, state map[string]*replayed, rep *Report) error {
	err := st.EachContact(ctx, q, func(cs ContactState) error {
		rep.ContactsChecked++
		r := state[cs.Ref]
		if r == nil {
			r = &replayed{optIn: "none"}
		}
		r.seen = true
		switch {
		case r.deleted:
			rep.Problem = &Problem{Code: ProblemDeletedAlive, Seq: r.lastSeq, ContactRef: cs.Ref,
				Message: "the ledger records this contact as deleted, but it is present"}
		case r.optIn != cs.OptIn:
			rep.Problem = &Problem{Code: ProblemState, Seq: r.lastSeq, ContactRef: cs.Ref,
				Message: fmt.Sprintf("opt-in status is %q but the ledger replays to %q", cs.OptIn, r.optIn)}
		case !maps.Equal(r.consents, cs.Consents):
			rep.Problem = &Problem{Code: ProblemState, Seq: r.lastSeq, ContactRef: cs.Ref,
				Message: "current consents differ from the ledger's replay (state or the record that set it)"}
		}
		if rep.Problem != nil {
			return errStop
		}
		return nil
	})
	if err != nil && err != errStop {
		return err
	}
	if rep.Problem != nil {
		return nil
	}
	for ref, r := range state {
		if r.seen || r.deleted {
			continue
		}
		if r.optIn != "none" || len(r.consents) > 0 {
			p := &Problem{Code: ProblemMissing, Seq: r.lastSeq, ContactRef: ref,
				Message: "the ledger has state for a contact that is gone without a deletion event"}
			if rep.Problem == nil || p.Seq < rep.Problem.Seq {
				rep.Problem = p
			}
		}
	}
	return nil
}

// rowChunk is how many ledger positions are compared with history rows at a
// time, so that memory stays bounded however long the ledger is.
const rowChunk = 5000

// checkRows compares every consent and opt-in event of a contact that still
// exists with the history row written with it, recomputing the evidence
// commitment under key (nil when there is none), and finds rows that claim
// a position no such event has.
func checkRows(ctx context.Context, q store.Querier, st State, rs *replay, key []byte, rep *Report) error {
	state := rs.byRef
	for _, r := range [][2]int64{{math.MinInt64, 1}, {rep.HeadSeq + 1, math.MaxInt64}} {
		outside, err := st.Rows(ctx, q, r[0], r[1])
		if err != nil {
			return err
		}
		if len(outside) > 0 {
			rep.Problem = &Problem{Code: ProblemRowExtra, Seq: outside[0].Seq, ContactRef: outside[0].ContactRef,
				Message: fmt.Sprintf("a history row claims event %d, which the ledger does not have", outside[0].Seq)}
			return nil
		}
	}
	remainders := remainderCheck{}
	for from := int64(1); from <= rep.HeadSeq; from += rowChunk {
		to := from + rowChunk
		rows, err := st.Rows(ctx, q, from, to)
		if err != nil {
			return err
		}
		bySeq := make(map[int64]Event, len(rows))
		for _, r := range rows {
			if _, dup := bySeq[r.Seq]; dup {
				rep.Problem = &Problem{Code: ProblemRowExtra, Seq: r.Seq, ContactRef: r.ContactRef,
					Message: fmt.Sprintf("two history rows claim event %d", r.Seq)}
				return nil
			}
			bySeq[r.Seq] = r
		}
		var events []Event
		if chunk := int((from - 1) / rowChunk); chunk < len(rs.rowEvents) && rs.rowEvents[chunk] > 0 {
			events, err = store.QueryAll(ctx, q, scanEvent, "SELECT "+eventColumns+
				" FROM ledger_events WHERE seq >= $1 AND seq < $2 AND kind IN ('consent', 'opt_in') ORDER BY seq", from, to)
			if err != nil {
				return fmt.Errorf("ledger: read events: %w", err)
			}
		}
		for _, e := range events {
			if state[e.ContactRef].deleted {
				continue // its rows went with the contact
			}
			r, ok := bySeq[e.Seq]
			delete(bySeq, e.Seq)
			rep.RowsChecked++
			if !ok {
				rep.Problem = &Problem{Code: ProblemRowMissing, Seq: e.Seq, ContactRef: e.ContactRef,
					Message: fmt.Sprintf("the %s history row of event %d is missing", e.Kind, e.Seq)}
				return nil
			}
			contact := state[e.ContactRef]
			if p := checkRow(&e, &r, contact, key); p != nil {
				rep.Problem = p
				return nil
			}
			if contact.remainder != "" && contact.erasedAt > e.Seq && r.Details != nil && r.Details.erased() && key != nil {
				remainders.add(e.ContactRef, key, &r)
			}
		}
		for seq, r := range bySeq {
			rep.Problem = &Problem{Code: ProblemRowExtra, Seq: seq, ContactRef: r.ContactRef,
				Message: fmt.Sprintf("a history row claims event %d, which is not its event", seq)}
			return nil
		}
	}
	rep.Problem = remainders.problem(state, key)
	return nil
}

// checkRow compares history row r with its event e: first the fields the
// event holds in clear outside the evidence, then the evidence commitment,
// then the evidence fields the event also holds in clear (which decide
// alone for events written before commitments, and for rows whose evidence
// was erased). It returns the problem found, or nil.
func checkRow(e, r *Event, contact *replayed, key []byte) *Problem {
	mismatch := func(field string) *Problem {
		return &Problem{Code: ProblemRowMismatch, Seq: e.Seq, ContactRef: e.ContactRef,
			Message: fmt.Sprintf("the history row of event %d differs from the event in %s", e.Seq, field)}
	}
	if field := differs(e, r); field != "" {
		return mismatch(field)
	}
	// After an evidence_erased or contact_erased event, the contact's
	// earlier rows may have their personal evidence blanked; what they
	// were cannot be checked. What they keep (the text language) is
	// checked against the contact_erased event's commitment instead
	// (remainderCheck), and the fields the event holds in clear below.
	erased := contact.erasedAt > e.Seq && r.Details != nil && r.Details.erased()
	if e.Evidence != "" && !erased {
		switch {
		case key == nil:
			return &Problem{Code: ProblemEvidence, Seq: e.Seq, ContactRef: e.ContactRef,
				Message: fmt.Sprintf("the evidence key is missing or malformed, so the evidence of event %d cannot be checked", e.Seq)}
		case !hmac.Equal([]byte(CommitEvidence(key, r)), []byte(e.Evidence)):
			return &Problem{Code: ProblemEvidence, Seq: e.Seq, ContactRef: e.ContactRef,
				Message: fmt.Sprintf("the evidence of the %s history row of event %d was changed (IP address, user agent, method, "+
					"confirmation token, consent text version or language, or actor): it no longer gives the event's commitment", e.Kind, e.Seq)}
		}
	}
	if field := evidenceDiffers(e, r); field != "" {
		return mismatch(field)
	}
	return nil
}

// differs names the first field outside the evidence in which a history row
// differs from its event, or returns "".
func differs(e, r *Event) string {
	switch {
	case e.Kind != r.Kind:
		return "kind"
	case e.ContactRef != r.ContactRef:
		return "contact"
	case e.RecordID != r.RecordID:
		return "record id"
	case e.RecordedAt != r.RecordedAt:
		return "time"
	case e.PurposeID != r.PurposeID:
		return "purpose"
	case e.Value != r.Value:
		return "state"
	case e.LegalBasis != r.LegalBasis:
		return "legal basis"
	case e.SourceID != r.SourceID:
		return "source"
	case e.ExpiresAt != r.ExpiresAt:
		return "expiry"
	}
	return ""
}

// evidenceDiffers names the first evidence field the event holds in clear
// in which a history row differs from it, or returns "".
func evidenceDiffers(e, r *Event) string {
	switch {
	case e.TextVersion != r.TextVersion:
		return "consent text version"
	case e.ActorKind != r.ActorKind || e.ActorID != r.ActorID:
		return "actor"
	case e.Method != r.Method:
		return "evidence method"
	}
	return ""
}

type stopError struct{}

func (stopError) Error() string { return "stop" }

var errStop error = stopError{}
