package ledger

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// Problem codes in a Report.
const (
	ProblemSequence     = "sequence_broken"    // a position is missing, repeated or out of order
	ProblemPrevHash     = "prev_hash_mismatch" // the event does not point at the event before it
	ProblemHash         = "hash_mismatch"      // the event's fields no longer give its hash
	ProblemHead         = "head_mismatch"      // the last event is not the recorded head
	ProblemState        = "state_mismatch"     // current consent or opt-in state differs from the replay
	ProblemMissing      = "contact_missing"    // the ledger has state for a contact that is gone without a deletion event
	ProblemDeletedAlive = "deleted_contact_present"
)

// Problem is the first thing verification found wrong. Seq is the ledger
// position it concerns: the first bad event for chain problems, or the last
// event of the contact whose state disagrees (0 if the ledger has none).
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
	Problem         *Problem  `json:"problem,omitempty"`
	CheckedAt       time.Time `json:"checked_at"`
}

// ContactState is a contact's current opt-in status and consent states by
// purpose id, as the domain tables hold them.
type ContactState struct {
	Ref      string
	OptIn    string
	Consents map[string]string
}

// StateSource calls fn for every contact's current state, reading through q
// so that it sees the same snapshot as the ledger scan.
type StateSource func(ctx context.Context, q store.Querier, fn func(ContactState) error) error

type replayed struct {
	optIn    string
	consents map[string]string
	lastSeq  int64
	deleted  bool
}

// Verify recomputes the chain from the first event, checks it ends at the
// recorded head, replays the events into each contact's state and compares
// that with the current state from src. It stops at the first problem. An
// error is returned only when the database could not be read; a broken ledger
// is a Report with OK false.
func Verify(ctx context.Context, db *store.DB, src StateSource, now time.Time) (*Report, error) {
	rep := &Report{CheckedAt: now.UTC()}
	err := db.Snapshot(ctx, func(q store.Querier) error {
		state, err := scan(ctx, q, rep)
		if err != nil || rep.Problem != nil {
			return err
		}
		return compare(ctx, q, src, state, rep)
	})
	if err != nil {
		return nil, err
	}
	rep.OK = rep.Problem == nil
	return rep, nil
}

func scan(ctx context.Context, q store.Querier, rep *Report) (map[string]*replayed, error) {
	if err := q.QueryRowContext(ctx, "SELECT seq, hash FROM ledger_head WHERE id = 1").Scan(&rep.HeadSeq, &rep.HeadHash); err != nil {
		return nil, fmt.Errorf("ledger: read head: %w", err)
	}
	rows, err := q.QueryContext(ctx, "SELECT "+eventColumns+" FROM ledger_events ORDER BY seq")
	if err != nil {
		return nil, fmt.Errorf("ledger: read events: %w", err)
	}
	defer rows.Close()
	state := map[string]*replayed{}
	prev, want := GenesisHash, int64(1)
	for rows.Next() {
		var e Event
		var at int64
		if err := rows.Scan(&e.Seq, &at, &e.Kind, &e.ContactRef, &e.PurposeID, &e.Value, &e.LegalBasis, &e.Source,
			&e.TextVersion, &e.ActorKind, &e.ActorID, &e.Method, &e.RecordID, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("ledger: read event: %w", err)
		}
		e.RecordedAt = store.FromMicros(at)
		rep.Events++
		switch {
		case e.Seq != want:
			rep.Problem = &Problem{Code: ProblemSequence, Seq: want,
				Message: fmt.Sprintf("expected event %d, found event %d", want, e.Seq)}
		case e.PrevHash != prev:
			rep.Problem = &Problem{Code: ProblemPrevHash, Seq: e.Seq,
				Message: fmt.Sprintf("event %d does not point at the hash of event %d", e.Seq, e.Seq-1)}
		default:
			h, err := ComputeHash(e.PrevHash, &e)
			if err != nil || h != e.Hash {
				rep.Problem = &Problem{Code: ProblemHash, Seq: e.Seq,
					Message: fmt.Sprintf("event %d was altered: its fields no longer give its hash", e.Seq)}
			}
		}
		if rep.Problem != nil {
			return nil, nil
		}
		apply(state, &e)
		prev, want = e.Hash, e.Seq+1
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: read events: %w", err)
	}
	if want-1 != rep.HeadSeq || prev != rep.HeadHash {
		rep.Problem = &Problem{Code: ProblemHead, Seq: want,
			Message: fmt.Sprintf("the chain ends at event %d but the head records event %d", want-1, rep.HeadSeq)}
		return nil, nil
	}
	return state, nil
}

func apply(state map[string]*replayed, e *Event) {
	r := state[e.ContactRef]
	if r == nil {
		r = &replayed{optIn: "none", consents: map[string]string{}}
		state[e.ContactRef] = r
	}
	r.lastSeq = e.Seq
	switch e.Kind {
	case KindConsent:
		r.consents[e.PurposeID] = e.Value
	case KindOptIn:
		r.optIn = e.Value
	case KindContactDeleted:
		r.deleted = true
		r.optIn = "none"
		clear(r.consents)
	}
}

func compare(ctx context.Context, q store.Querier, src StateSource, state map[string]*replayed, rep *Report) error {
	seen := make(map[string]bool, len(state))
	err := src(ctx, q, func(cs ContactState) error {
		rep.ContactsChecked++
		seen[cs.Ref] = true
		r := state[cs.Ref]
		if r == nil {
			r = &replayed{optIn: "none", consents: map[string]string{}}
		}
		switch {
		case r.deleted:
			rep.Problem = &Problem{Code: ProblemDeletedAlive, Seq: r.lastSeq, ContactRef: cs.Ref,
				Message: "the ledger records this contact as deleted, but it is present"}
		case r.optIn != cs.OptIn:
			rep.Problem = &Problem{Code: ProblemState, Seq: r.lastSeq, ContactRef: cs.Ref,
				Message: fmt.Sprintf("opt-in status is %q but the ledger replays to %q", cs.OptIn, r.optIn)}
		case !maps.Equal(r.consents, cs.Consents):
			rep.Problem = &Problem{Code: ProblemState, Seq: r.lastSeq, ContactRef: cs.Ref,
				Message: "consent states differ from the ledger's replay"}
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
		if seen[ref] || r.deleted {
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

type stopError struct{}

func (stopError) Error() string { return "stop" }

var errStop error = stopError{}
