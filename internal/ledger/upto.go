package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// Position is what verification says of one ledger position: the event
// there, whether the chain from the first event up to it still holds, and
// whether the history row written with it (a consent record or an opt-in
// change) still matches it.
type Position struct {
	Seq int64 `json:"seq"`
	// Event is nil when the ledger has no event at Seq.
	Event *Event `json:"event,omitempty"`
	// Events is how many events were checked, from the first on.
	Events int64 `json:"events"`
	OK     bool  `json:"ok"`
	// EvidenceErased: the row's personal evidence was blanked by an
	// erasure after the event, so its commitment cannot be recomputed; the
	// fields the event holds in clear were compared.
	EvidenceErased bool      `json:"evidence_erased,omitempty"`
	Problem        *Problem  `json:"problem,omitempty"`
	CheckedAt      time.Time `json:"checked_at"`
}

// VerifyUpTo recomputes the chain from the first event to position seq
// and compares the history row that claims seq (st.Rows) with its event,
// its evidence commitment included, all in one snapshot. Unlike Verify it
// reads no event after seq, replays no state and checks no other row:
// it answers whether this entry, and everything before it, is as written.
// Its cost grows with seq (one pass over the events before it). An error
// is returned only when the database could not be read; a broken chain or
// row is a Position with OK false and the first Problem.
func VerifyUpTo(ctx context.Context, db *store.DB, st State, seq int64, now time.Time) (*Position, error) {
	pos := &Position{Seq: seq, CheckedAt: now.UTC()}
	err := db.Snapshot(ctx, func(q store.Querier) error {
		last, err := chainUpTo(ctx, q, seq, pos)
		if err != nil || pos.Problem != nil {
			return err
		}
		pos.Event = last
		return checkRowAt(ctx, q, st, last, pos)
	})
	if err != nil {
		return nil, err
	}
	pos.OK = pos.Problem == nil
	return pos, nil
}

// chainUpTo checks the links of events 1 to seq and returns event seq; a
// problem found is left in pos.
func chainUpTo(ctx context.Context, q store.Querier, seq int64, pos *Position) (*Event, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+eventColumns+" FROM ledger_events WHERE seq <= $1 ORDER BY seq", seq)
	if err != nil {
		return nil, fmt.Errorf("ledger: read events: %w", err)
	}
	link := newLinkCheck()
	var last Event
	err = eachEvent(rows, func(e *Event) bool {
		pos.Events++
		if pos.Problem = link.check(e); pos.Problem != nil {
			return false
		}
		last = *e
		return true
	})
	if err != nil || pos.Problem != nil {
		return nil, err
	}
	want := link.want
	if want-1 != seq || seq < 1 {
		pos.Problem = &Problem{Code: ProblemSequence, Seq: seq,
			Message: fmt.Sprintf("the ledger has no event %d: its events end at %d", seq, want-1)}
		return nil, nil
	}
	return &last, nil
}

// checkRowAt compares the history row of event e with it, as Verify does
// for every row; a problem found is left in pos.
func checkRowAt(ctx context.Context, q store.Querier, st State, e *Event, pos *Position) error {
	if e.Kind != KindConsent && e.Kind != KindOptIn {
		return nil // no history row of its own
	}
	rows, err := st.Rows(ctx, q, e.Seq, e.Seq+1)
	if err != nil {
		return err
	}
	switch {
	case len(rows) == 0:
		pos.Problem = &Problem{Code: ProblemRowMissing, Seq: e.Seq, ContactRef: e.ContactRef,
			Message: fmt.Sprintf("the %s history row of event %d is missing", e.Kind, e.Seq)}
		return nil
	case len(rows) > 1:
		pos.Problem = &Problem{Code: ProblemRowExtra, Seq: e.Seq, ContactRef: e.ContactRef,
			Message: fmt.Sprintf("two history rows claim event %d", e.Seq)}
		return nil
	}
	// An erasure after the event may have blanked the row's evidence,
	// which then cannot be checked against its commitment (see checkRow).
	contact := &replayed{}
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM ledger_events
		WHERE contact_ref = $1 AND kind IN ('evidence_erased', 'contact_erased') AND seq > $2`, e.ContactRef, e.Seq).Scan(&contact.erasedAt); err != nil {
		return fmt.Errorf("ledger: read erasures: %w", err)
	}
	key, err := readEvidenceKey(ctx, q)
	if err != nil {
		return err
	}
	r := &rows[0]
	pos.EvidenceErased = contact.erasedAt > e.Seq && r.Details != nil && r.Details.erased()
	pos.Problem = checkRow(e, r, contact, key)
	return nil
}

// EventAt returns the event at position seq, as stored, without checking
// the chain (VerifyUpTo does). It returns a not-found error when the
// ledger has no event there.
func EventAt(ctx context.Context, q store.Querier, seq int64) (*Event, error) {
	e, err := scanEvent(q.QueryRowContext(ctx, "SELECT "+eventColumns+" FROM ledger_events WHERE seq = $1", seq))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &errs.Error{Kind: errs.KindNotFound, Code: "ledger_event_not_found", Message: fmt.Sprintf("the ledger has no event %d", seq)}
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: read event %d: %w", seq, err)
	}
	return &e, nil
}

// EventIn is EventAt inside tx, seeing the events appended in tx and not
// yet inserted (they are, just before commit): what a receipt signed in
// the transaction of its consent record needs. The event is as EventAt
// would read it after the commit. It returns a not-found error when
// neither tx nor the ledger has an event at seq.
func EventIn(tx *store.Tx, seq int64) (*Event, error) {
	if c, ok := tx.Local(chainKey{}).(*chain); ok {
		for _, e := range c.pending {
			if e.Seq == seq {
				out := *e
				out.Details, out.Erased = nil, nil
				return &out, nil
			}
		}
	}
	return EventAt(context.Background(), tx, seq)
}
