// Package holds keeps legal holds: a duty (bookkeeping, a dispute, a
// contract) that keeps a contact's data from being erased while it lasts.
// A hold has a reason, a legal basis from a short list, who set it and
// optionally until when. It is never deleted: lifting it records who, when
// and why, and both steps are ledger events (kind legal_hold, with no
// personal data and not the reason, which is operator text) with an event
// (legal_hold.set, legal_hold.lifted) that leaves the reason out too.
//
// A hold with an until date ends by itself when the date passes. Its end
// is recorded as a lift by hand is (ledger event "lifted", the event
// legal_hold.lifted, with the cause "expired"), by the periodic job
// (EndExpiredTx) or, sooner, by an erasure of the contact
// (EndExpiredOfTx), so that neither the ledger nor the events ever show an
// erasure while a hold still looks unended. Such a hold cannot be lifted
// by hand any more.
//
// A hold that stopped an erasure remembers it (MarkWaitingTx); once no hold
// of the contact is active any more, the erasure package lets the waiting
// erasure proceed (Released).
package holds

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
)

// Legal bases of a hold: why the data must be kept although its owner
// asked for erasure (GDPR Art. 17(3)(b) and (e)).
const (
	BasisLegalObligation = "legal_obligation" // a legal duty to keep it, such as bookkeeping
	BasisLegalClaims     = "legal_claims"     // establishing, exercising or defending legal claims
	BasisContract        = "contract"         // a contract still being performed
)

// Bases lists the legal bases of a hold.
var Bases = []string{BasisLegalObligation, BasisLegalClaims, BasisContract}

// Causes of a hold's end, the cause of its event legal_hold.lifted
// (events.LegalHoldData lists them too).
const (
	CauseLifted  = "lifted"  // lifted by hand, with a reason
	CauseExpired = "expired" // its until date passed
)

// Hold is a legal hold on a contact.
type Hold struct {
	ID         string        `json:"id"`
	ContactID  string        `json:"contact_id"`
	Reason     string        `json:"reason"`
	LegalBasis string        `json:"legal_basis" enum:"@hold_legal_basis"`
	SetBy      consent.Actor `json:"set_by"`
	SetAt      time.Time     `json:"set_at"`
	Until      *time.Time    `json:"until,omitempty" doc:"when the hold ends by itself; absent: until lifted"`
	LiftedAt   *time.Time    `json:"lifted_at,omitempty"`
	LiftedBy   string        `json:"lifted_by,omitempty" doc:"the id of who lifted it"`
	LiftReason string        `json:"lift_reason,omitempty"`
	ExpiredAt  *time.Time    `json:"expired_at,omitempty" doc:"when the hold's end by its until date was recorded (it ended on until); absent for a hold lifted by hand, active, or run out moments ago and not recorded yet"`
	// Active: not lifted and not past its until date, as of the read.
	Active bool `json:"active"`
	// ErasureWaiting is when an erasure was refused because of this hold;
	// it proceeds once no hold of the contact is active.
	ErasureWaiting *time.Time `json:"erasure_waiting_since,omitempty" doc:"when an erasure was refused because of this hold; it proceeds by itself once no hold is active"`

	ref string
}

// New is a hold to set.
type New struct {
	Reason     string     `json:"reason" required:"true"`
	LegalBasis string     `json:"legal_basis" required:"true" enum:"@hold_legal_basis"`
	Until      *time.Time `json:"until" doc:"optional: when the hold ends by itself"`
}

// ActiveAt reports whether h holds at now.
func (h *Hold) ActiveAt(now time.Time) bool {
	return h.LiftedAt == nil && (h.Until == nil || h.Until.After(now))
}

// SetTx sets a hold on the contact inside tx, as actor, and appends its
// ledger event. A contact that does not exist is a not-found error
// (field "contact").
func SetTx(tx *store.Tx, contactID string, in New, actor consent.Actor, now time.Time) (*Hold, error) {
	if err := errs.TrimText("reason", &in.Reason, 1000); err != nil {
		return nil, err
	}
	if in.LegalBasis == "" {
		return nil, errs.Required("legal_basis")
	}
	if !slices.Contains(Bases, in.LegalBasis) {
		return nil, errs.Invalid("legal_basis", "must be one of %s", strings.Join(Bases, ", "))
	}
	if in.Until != nil && !in.Until.After(now) {
		return nil, errs.Invalid("until", "must be in the future")
	}
	k, err := contactstate.Load(tx, contactID)
	if err != nil {
		return nil, err
	}
	if k.Erased {
		return nil, errs.Conflict("contact_erased", "contact", "the contact's personal data is already erased; there is nothing left to hold")
	}
	h := &Hold{ID: uuid.Must(uuid.NewV7()).String(), ContactID: contactID, Reason: in.Reason, LegalBasis: in.LegalBasis,
		SetBy: actor, SetAt: now, Until: in.Until, ref: k.Ref}
	var until any
	if h.Until != nil {
		until = store.Micros(*h.Until)
	}
	tx.Fence(contactID) // a held contact gets no campaign
	if _, err := tx.Exec(`INSERT INTO legal_holds (id, contact_id, reason, legal_basis, set_by_kind, set_by_id, set_at, until_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, h.ID, contactID, h.Reason, h.LegalBasis, actor.Kind, actor.ID, store.Micros(now), until); err != nil {
		return nil, fmt.Errorf("holds: set: %w", err)
	}
	h.Active = true
	return h, appendEvent(tx, h, "set", events.LegalHoldSet, "", actor, now)
}

// appendEvent writes the hold's step (value "set" or "lifted") to the
// ledger and its event typ, with the cause of an end ("" for a set).
func appendEvent(tx *store.Tx, h *Hold, value, typ, cause string, actor consent.Actor, now time.Time) error {
	if _, err := ledger.Append(tx, &ledger.Event{RecordedAt: store.Micros(now), Kind: ledger.KindLegalHold, ContactRef: h.ref, RecordID: h.ID,
		Value: value, LegalBasis: h.LegalBasis, ActorKind: actor.Kind, ActorID: actor.ID}); err != nil {
		return err
	}
	return events.Emit(tx, typ, h.ContactID, events.LegalHoldData{ContactID: h.ContactID, HoldID: h.ID, LegalBasis: h.LegalBasis,
		Until: h.Until, Cause: cause, ActorKind: actor.Kind}, now)
}

// endTx records the end of hold h with its ledger event and
// legal_hold.lifted, for cause, once: set is the statement that marks the
// row ended ($1 the hold, $2 now, then args), which changes nothing when
// the hold's end is recorded already (a lift or a sweep that committed
// first), and then endTx reports false and writes nothing.
func endTx(tx *store.Tx, h *Hold, cause string, actor consent.Actor, now time.Time, set string, args ...any) (bool, error) {
	res, err := tx.Exec(`UPDATE legal_holds SET `+set+` WHERE id = $1 AND lifted_at IS NULL AND expired_at IS NULL`,
		append([]any{h.ID, store.Micros(now)}, args...)...)
	if err != nil {
		return false, fmt.Errorf("holds: end (%s): %w", cause, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	h.Active = false
	return true, appendEvent(tx, h, "lifted", events.LegalHoldLifted, cause, actor, now)
}

// LiftTx lifts the contact's hold inside tx, as actor, with the reason, and
// appends its ledger event. An unknown hold, or one of another contact, is
// a not-found error (field "hold"); one already lifted is a conflict
// (code hold_lifted), and so is one whose until date has passed (code
// hold_expired: it ended by itself, recorded or about to be).
func LiftTx(tx *store.Tx, contactID, holdID, reason string, actor consent.Actor, now time.Time) (*Hold, error) {
	if err := errs.TrimText("reason", &reason, 1000); err != nil {
		return nil, err
	}
	h, err := get(tx, contactID, holdID, now)
	if err != nil {
		return nil, err
	}
	lifted := func() error {
		return errs.Conflict("hold_lifted", "hold", "the hold was already lifted on %s", h.LiftedAt.Format(time.DateOnly))
	}
	switch {
	case h.LiftedAt != nil:
		return nil, lifted()
	case h.ExpiredAt != nil || !h.ActiveAt(now):
		return nil, errs.Conflict("hold_expired", "hold", "the hold ended by itself on %s; there is nothing to lift", h.Until.Format(time.DateOnly))
	}
	k, err := contactstate.Load(tx, contactID)
	if err != nil {
		return nil, err
	}
	h.ref = k.Ref
	h.LiftedAt, h.LiftedBy, h.LiftReason = &now, actor.ID, reason
	ended, err := endTx(tx, h, CauseLifted, actor, now, `lifted_at = $2, lifted_by_id = $3, lift_reason = $4`, actor.ID, reason)
	if err == nil && !ended { // lifted by another request since it was read
		return nil, lifted()
	}
	return h, err
}

// EndExpiredTx records the end of up to limit holds whose until date has
// passed by now and whose end is not recorded yet, inside tx, as the
// system: each gets expired_at, its ledger event and legal_hold.lifted
// with the cause "expired". It returns how many it recorded; none is 0.
// The periodic job calls it in batches before the erasures waiting on
// those holds proceed, so that their events follow the holds'.
func EndExpiredTx(tx *store.Tx, now time.Time, limit int) (int, error) {
	return endExpired(tx, now, `ORDER BY until_at, id LIMIT $2`, limit)
}

// EndExpiredOfTx records, inside tx, the end of every hold of the contacts
// in ids whose until date has passed by now and whose end is not recorded
// yet, as EndExpiredTx does: an erasure calls it first, so that it never
// follows a hold that still looks unended. It returns how many it
// recorded; none is 0.
func EndExpiredOfTx(tx *store.Tx, ids []string, now time.Time) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	ph, args := store.In(2, ids)
	return endExpired(tx, now, `AND contact_id IN (`+ph+`) ORDER BY until_at, id`, args...)
}

// endExpired records the end of the holds run out by now that the rest of
// the query (from $2 on) selects.
func endExpired(tx *store.Tx, now time.Time, rest string, args ...any) (int, error) {
	list, err := store.QueryAll(context.Background(), tx, scan(now), `SELECT `+columns+` FROM legal_holds
		WHERE lifted_at IS NULL AND expired_at IS NULL AND until_at <= $1 `+rest, append([]any{store.Micros(now)}, args...)...)
	if err != nil {
		return 0, fmt.Errorf("holds: read run out: %w", err)
	}
	if len(list) == 0 {
		return 0, nil
	}
	ids := make([]string, 0, len(list))
	for _, h := range list {
		ids = append(ids, h.ContactID)
	}
	states, err := contactstate.LoadMany(tx, ids)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, h := range list {
		h.ref = states[h.ContactID].Ref
		ended, err := endTx(tx, h, CauseExpired, consent.Actor{Kind: consent.ActorSystem}, now, `expired_at = $2`)
		if err != nil {
			return n, err
		}
		if ended {
			h.ExpiredAt = &now
			n++
		}
	}
	return n, nil
}

const columns = `id, contact_id, reason, legal_basis, set_by_kind, set_by_id, set_at, until_at, lifted_at, lifted_by_id, lift_reason, erasure_waiting_at, expired_at`

func scan(now time.Time) func(store.Scanner) (*Hold, error) {
	return func(row store.Scanner) (*Hold, error) {
		h := &Hold{}
		var set int64
		var until, lifted, waiting, expired sql.NullInt64
		if err := row.Scan(&h.ID, &h.ContactID, &h.Reason, &h.LegalBasis, &h.SetBy.Kind, &h.SetBy.ID, &set, &until, &lifted,
			&h.LiftedBy, &h.LiftReason, &waiting, &expired); err != nil {
			return nil, err
		}
		h.SetAt = store.FromMicros(set)
		h.Until, h.LiftedAt, h.ErasureWaiting, h.ExpiredAt = optional(until), optional(lifted), optional(waiting), optional(expired)
		h.Active = h.ActiveAt(now)
		return h, nil
	}
}

func optional(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := store.FromMicros(v.Int64)
	return &t
}

func get(tx *store.Tx, contactID, holdID string, now time.Time) (*Hold, error) {
	list, err := store.QueryAll(context.Background(), tx, scan(now), `SELECT `+columns+` FROM legal_holds WHERE id = $1 AND contact_id = $2`, holdID, contactID)
	if err != nil {
		return nil, fmt.Errorf("holds: read: %w", err)
	}
	if len(list) == 0 {
		return nil, errs.NotFound("hold", "hold")
	}
	return list[0], nil
}

// List returns the contact's holds as of now, active ones first, then the
// newest first; none is an empty slice.
func List(ctx context.Context, q store.Querier, contactID string, now time.Time) ([]*Hold, error) {
	out, err := store.QueryAll(ctx, q, scan(now), `SELECT `+columns+` FROM legal_holds WHERE contact_id = $1 ORDER BY set_at DESC, id DESC`, contactID)
	if err != nil {
		return nil, fmt.Errorf("holds: list: %w", err)
	}
	slices.SortStableFunc(out, func(a, b *Hold) int {
		switch {
		case a.Active == b.Active:
			return 0
		case a.Active:
			return -1
		}
		return 1
	})
	return out, nil
}

// ActiveTx returns the contact's holds active at now, inside tx, the one
// set first first; none is an empty slice.
func ActiveTx(tx *store.Tx, contactID string, now time.Time) ([]*Hold, error) {
	return active(tx, []string{contactID}, now)
}

// FirstActiveTx returns, for each contact in ids that has a hold active at
// now, the one set first, inside tx; a contact without one is absent.
func FirstActiveTx(tx *store.Tx, ids []string, now time.Time) (map[string]*Hold, error) {
	list, err := active(tx, ids, now)
	if err != nil {
		return nil, err
	}
	out := map[string]*Hold{}
	for _, h := range list {
		if out[h.ContactID] == nil {
			out[h.ContactID] = h
		}
	}
	return out, nil
}

func active(tx *store.Tx, ids []string, now time.Time) ([]*Hold, error) {
	if len(ids) == 0 {
		return []*Hold{}, nil
	}
	ph, args := store.In(2, ids)
	out, err := store.QueryAll(context.Background(), tx, scan(now), `SELECT `+columns+` FROM legal_holds
		WHERE contact_id IN (`+ph+`) AND lifted_at IS NULL AND (until_at IS NULL OR until_at > $1) ORDER BY set_at, id`,
		append([]any{store.Micros(now)}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("holds: read active: %w", err)
	}
	return out, nil
}

// ErrHeld is the error of a change a hold refuses: it names the hold and
// its reason.
func ErrHeld(h *Hold) error {
	until := "until lifted"
	if h.Until != nil {
		until = "until " + h.Until.Format(time.DateOnly)
	}
	return errs.Refused("legal_hold", "hold", "a legal hold (%s: %s, %s) keeps this contact's data", h.LegalBasis, h.Reason, until)
}

// MarkWaitingTx notes on the contact's active holds that an erasure was
// refused because of them (for request requestID, or none), so that it
// proceeds once they end. A hold already marked keeps its first time.
func MarkWaitingTx(tx *store.Tx, contactID, requestID string, now time.Time) error {
	if _, err := tx.Exec(`UPDATE legal_holds SET erasure_waiting_at = COALESCE(erasure_waiting_at, $2),
		waiting_request_id = CASE WHEN waiting_request_id = '' THEN $3 ELSE waiting_request_id END
		WHERE contact_id = $1 AND lifted_at IS NULL AND (until_at IS NULL OR until_at > $2)`, contactID, store.Micros(now), requestID); err != nil {
		return fmt.Errorf("holds: mark waiting erasure: %w", err)
	}
	return nil
}

// ClearWaitingTx forgets the waiting erasure of the contacts in ids, once
// it has proceeded.
func ClearWaitingTx(tx *store.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ph, args := store.In(1, ids)
	return tx.ExecLater(store.Prefix("holds: clear waiting erasure"), `UPDATE legal_holds SET erasure_waiting_at = NULL
		WHERE contact_id IN (`+ph+`) AND erasure_waiting_at IS NOT NULL`, args...)
}

// Waiting is a contact whose erasure a hold stopped and no hold stops any
// more: the request it was fulfilling, if any.
type Waiting struct {
	ContactID string
	RequestID string
}

// Released returns up to limit contacts whose erasure waits on holds none
// of which is active at now, for their erasure to proceed; none is an empty
// slice.
func Released(ctx context.Context, q store.Querier, now time.Time, limit int) ([]Waiting, error) {
	out, err := store.QueryAll(ctx, q, func(row store.Scanner) (Waiting, error) {
		var w Waiting
		return w, row.Scan(&w.ContactID, &w.RequestID)
	}, `SELECT contact_id, MAX(waiting_request_id) FROM legal_holds h WHERE erasure_waiting_at IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM legal_holds a WHERE a.contact_id = h.contact_id AND a.lifted_at IS NULL
			AND (a.until_at IS NULL OR a.until_at > $1))
		GROUP BY contact_id ORDER BY contact_id LIMIT $2`, store.Micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("holds: read released: %w", err)
	}
	return out, nil
}

// WaitingTx reports whether an erasure of the contact waits on holds, and
// the request it was fulfilling ("" for none).
func WaitingTx(tx *store.Tx, contactID string) (waiting bool, requestID string, err error) {
	var n int
	var id sql.NullString
	if err := tx.Row(`SELECT count(*), MAX(waiting_request_id) FROM legal_holds WHERE contact_id = $1 AND erasure_waiting_at IS NOT NULL`,
		contactID).Scan(&n, &id); err != nil {
		return false, "", fmt.Errorf("holds: read waiting erasure: %w", err)
	}
	return n > 0, id.String, nil
}
