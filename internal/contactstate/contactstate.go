// Package contactstate owns a contact's row in the contacts table: its state
// (email opt-in status, processing lock, erasure request, deliverability)
// and the writes of its profile columns. Every statement that changes a
// contact's row is here, and every function runs inside the caller's
// transaction, so that a change and everything it causes (a ledger event, a
// consent record, an email) commit together.
//
// The rules about which changes are allowed live with the packages that own
// them (consent.CheckOptIn for the opt-in status, contact for field values);
// this package owns the vocabulary of a contact's state and how it is
// stored.
package contactstate

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
)

// Email opt-in statuses, one per contact.
const (
	OptInNone          = "none"
	SingleOptInUser    = "single_opt_in_user"
	SingleOptInWebform = "single_opt_in_webform"
	DoubleOptIn        = "double_opt_in"
	OptOutUser         = "opt_out_user"
	OptOutContact      = "opt_out_contact"
)

// OptInStatuses lists the six statuses, in the order pages show them.
var OptInStatuses = []string{OptInNone, SingleOptInUser, SingleOptInWebform, DoubleOptIn, OptOutUser, OptOutContact}

// OptedOut reports whether status is an opt-out, by the contact or by a user:
// such a contact gets no new email (R2).
func OptedOut(status string) bool { return status == OptOutUser || status == OptOutContact }

// Deliverability states of an address.
const (
	DeliverabilityOK          = "ok"
	DeliverabilityBounced     = "bounced"
	DeliverabilityBlocklisted = "blocklisted"
)

// Deliverabilities lists the deliverability states.
var Deliverabilities = []string{DeliverabilityOK, DeliverabilityBounced, DeliverabilityBlocklisted}

// State is a contact's state as one write sees it.
type State struct {
	ID                string
	Ref               string // the contact's random ledger reference
	Email             string
	OptIn             string
	ProcessingStopped bool // the contact asked to stop processing (R9): the record is locked
	ErasureRequested  bool
	Erased            bool
	Deliverability    string
	SoftBounces       int
}

// stateColumns are what every write may need; addressedColumns add the id
// and address, for look-ups by address and for the send gate.
const (
	stateColumns = `ref, opt_in_status, processing_stopped_at IS NOT NULL, erasure_requested_at IS NOT NULL,
	erased_at IS NOT NULL, deliverability, soft_bounces`
	addressedColumns = `id, email, ` + stateColumns
)

func (s *State) fields() []any {
	return []any{&s.Ref, &s.OptIn, &s.ProcessingStopped, &s.ErasureRequested, &s.Erased, &s.Deliverability, &s.SoftBounces}
}

func scanAddressed(row store.Scanner) (State, error) {
	var s State
	err := row.Scan(append([]any{&s.ID, &s.Email}, s.fields()...)...)
	return s, err
}

// ErrProcessingStopped is what a change refused on a locked record returns.
func ErrProcessingStopped() error {
	return errs.Locked("processing_stopped", "the contact asked to stop processing; their record is locked")
}

// ErrErased is what a change refused on an erased contact returns: what is
// left of them is a remainder that identifies no one, and takes no new
// data.
func ErrErased() error {
	return errs.Locked("contact_erased", "the contact's personal data was erased; the record takes no new data")
}

// Load reads the contact's state inside tx, without the address (Email is
// empty): the writes that call it on every consent change need only the
// state. It returns a not-found error (field "contact") when the contact
// does not exist.
func Load(tx *store.Tx, id string) (State, error) {
	s := State{ID: id}
	// Row: on PostgreSQL, writes queued before go in the same round trip.
	err := tx.Row("SELECT "+stateColumns+" FROM contacts WHERE id = $1", id).Scan(s.fields()...)
	if errors.Is(err, sql.ErrNoRows) {
		return s, errs.NotFound("contact", "")
	}
	if err != nil {
		return s, fmt.Errorf("contactstate: read: %w", err)
	}
	return s, nil
}

// LoadByEmail is Load for the contact with this address, in any case, with
// its id and address. It returns a not-found error (field "email") for an
// unknown address.
func LoadByEmail(tx *store.Tx, email string) (State, error) {
	s, err := scanAddressed(tx.Row("SELECT "+addressedColumns+" FROM contacts WHERE email_key = $1", strings.ToLower(strings.TrimSpace(email))))
	if errors.Is(err, sql.ErrNoRows) {
		return s, errs.NotFound("contact", "email")
	}
	if err != nil {
		return s, fmt.Errorf("contactstate: read: %w", err)
	}
	return s, nil
}

// LoadMany reads the state and address of each contact in ids, by id. A
// contact that does not exist is absent from the map.
func LoadMany(tx *store.Tx, ids []string) (map[string]State, error) {
	out := make(map[string]State, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := tx.Query("SELECT "+addressedColumns+" FROM contacts WHERE id IN ("+store.Placeholders(1, len(ids))+")", args...)
	if err != nil {
		return nil, fmt.Errorf("contactstate: read: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		s, err := scanAddressed(rows)
		if err != nil {
			return nil, fmt.Errorf("contactstate: read: %w", err)
		}
		out[s.ID] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("contactstate: read: %w", err)
	}
	return out, nil
}

// SetOptInTx stores a new opt-in status. The caller has checked the change
// against the rules (consent.CheckOptIn) and records its history. The
// statement is queued (store.Tx.ExecLater): nothing here reads its answer.
func SetOptInTx(tx *store.Tx, id, status string, now time.Time) error {
	tx.Fence(id) // it can stop email: see store.Tx.Fence
	return tx.ExecLater(store.Prefix("contactstate: set opt-in status"),
		`UPDATE contacts SET opt_in_status = $2, updated_at = $3 WHERE id = $1`, id, status, store.Micros(now))
}

// StopProcessingTx locks the contact's record (R9) and writes the
// processing.stopped event. A record already locked keeps the time it was
// first locked, and no event is written again.
func StopProcessingTx(tx *store.Tx, id string, now time.Time) error {
	tx.Fence(id) // it can stop email: see store.Tx.Fence
	res, err := tx.Exec(`UPDATE contacts SET processing_stopped_at = $2, updated_at = $2 WHERE id = $1 AND processing_stopped_at IS NULL`,
		id, store.Micros(now))
	if err != nil {
		return fmt.Errorf("contactstate: stop processing: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	return events.Emit(tx, events.ProcessingStopped, id, events.ProcessingStoppedData{ContactID: id}, now)
}

// RequestErasureTx notes that the contact asked to be erased (R10). A
// request already noted keeps its first time.
func RequestErasureTx(tx *store.Tx, id string, now time.Time) error {
	tx.Fence(id) // it can stop email: see store.Tx.Fence
	if _, err := tx.Exec(`UPDATE contacts SET erasure_requested_at = $2, updated_at = $2 WHERE id = $1 AND erasure_requested_at IS NULL`,
		id, store.Micros(now)); err != nil {
		return fmt.Errorf("contactstate: request erasure: %w", err)
	}
	return nil
}

// RecordBounceTx notes a bounce for the contact whose state s holds, and
// updates s: a hard bounce marks the address bounced at once, soft bounces
// once softLimit of them have been counted, either with the
// deliverability.changed event. A blocklisted address stays blocklisted.
// The mail server refusing an address and a bounce reported through the
// API are both recorded here, the same way.
func RecordBounceTx(tx *store.Tx, s *State, hard bool, softLimit int, now time.Time) error {
	tx.Fence(s.ID) // it can stop email: see store.Tx.Fence
	from := s.Deliverability
	if !hard {
		s.SoftBounces++
	}
	if s.Deliverability == DeliverabilityOK && (hard || s.SoftBounces >= softLimit) {
		s.Deliverability = DeliverabilityBounced
	}
	if _, err := tx.Exec(`UPDATE contacts SET deliverability = $2, soft_bounces = $3, updated_at = $4 WHERE id = $1`,
		s.ID, s.Deliverability, s.SoftBounces, store.Micros(now)); err != nil {
		return fmt.Errorf("contactstate: record bounce: %w", err)
	}
	cause := "soft_bounces"
	if hard {
		cause = "hard_bounce"
	}
	return deliverabilityChanged(tx, s, from, cause, now)
}

// SetBlocklistedTx puts the contact's address on the blocklist, or takes it
// off again, and updates s, with the deliverability.changed event when
// that changes it. Taking it off does not lift a bounce: a bounced address
// stays bounced.
func SetBlocklistedTx(tx *store.Tx, s *State, on bool, now time.Time) error {
	tx.Fence(s.ID) // it can stop email: see store.Tx.Fence
	from, cause := s.Deliverability, "blocklisted"
	switch {
	case on:
		s.Deliverability = DeliverabilityBlocklisted
	case s.Deliverability == DeliverabilityBlocklisted:
		s.Deliverability, cause = DeliverabilityOK, "unblocklisted"
	}
	if _, err := tx.Exec(`UPDATE contacts SET deliverability = $2, updated_at = $3 WHERE id = $1`,
		s.ID, s.Deliverability, store.Micros(now)); err != nil {
		return fmt.Errorf("contactstate: blocklist: %w", err)
	}
	return deliverabilityChanged(tx, s, from, cause, now)
}

// deliverabilityChanged writes deliverability.changed when s's
// deliverability is no longer from; nothing when it stayed.
func deliverabilityChanged(tx *store.Tx, s *State, from, cause string, now time.Time) error {
	if s.Deliverability == from {
		return nil
	}
	return events.Emit(tx, events.DeliverabilityChanged, s.ID, events.DeliverabilityChangedData{ContactID: s.ID,
		From: from, To: s.Deliverability, Cause: cause}, now)
}

// MarkErasedTx notes that the contact's personal data was erased and a
// non-identifying remainder kept (R10); the send gate then sends them
// nothing. A contact already marked keeps the first time.
func MarkErasedTx(tx *store.Tx, id string, now time.Time) error {
	tx.Fence(id) // it can stop email: see store.Tx.Fence
	if _, err := tx.Exec(`UPDATE contacts SET erased_at = $2, updated_at = $2 WHERE id = $1 AND erased_at IS NULL`,
		id, store.Micros(now)); err != nil {
		return fmt.Errorf("contactstate: mark erased: %w", err)
	}
	return nil
}

// SetRetentionDueTx flags the contacts in ids as due for retention (every
// purpose has passed its retention period), keeping the time a contact was
// first flagged: the grace period counts from it. Flagging is derived
// state, so the row's updated_at stays.
func SetRetentionDueTx(tx *store.Tx, ids []string, now time.Time) error {
	return flag(tx, "retention_due_at", ids, store.Micros(now))
}

// ClearRetentionDueTx takes the retention flag off the contacts in ids: a
// new consent, a hold or a longer period made them no longer due.
func ClearRetentionDueTx(tx *store.Tx, ids []string) error {
	return flag(tx, "retention_due_at", ids, nil)
}

// flag sets the flag column (a time, NULL when off) of the contacts in ids
// to at, keeping the time of a contact flagged already; a nil at takes
// the flag off.
func flag(tx *store.Tx, column string, ids []string, at any) error {
	if len(ids) == 0 {
		return nil
	}
	value, unless, args := "$1", column+" IS NULL", []any{at}
	if at == nil {
		value, unless, args = "NULL", column+" IS NOT NULL", nil
	}
	for _, id := range ids {
		args = append(args, id)
	}
	first := len(args) - len(ids) + 1
	if _, err := tx.Exec(`UPDATE contacts SET `+column+` = `+value+` WHERE `+unless+` AND id IN (`+
		store.Placeholders(first, len(ids))+`)`, args...); err != nil {
		return fmt.Errorf("contactstate: set %s: %w", column, err)
	}
	return nil
}

// SetRepermissionLapsedTx flags the contacts in ids as not having confirmed
// a re-permission email within its days (package repermission), keeping
// the time a contact was first flagged: retention counts the contact's
// marketing consent as ended from it. Derived state, so updated_at stays.
func SetRepermissionLapsedTx(tx *store.Tx, ids []string, now time.Time) error {
	return flag(tx, "repermission_lapsed_at", ids, store.Micros(now))
}

// ClearRepermissionLapsedTx takes the re-permission flag off the contacts
// in ids: they confirmed a double opt-in since.
func ClearRepermissionLapsedTx(tx *store.Tx, ids []string) error {
	return flag(tx, "repermission_lapsed_at", ids, nil)
}
