// Package erasure erases a contact's personal data and keeps a remainder
// that identifies no one (R10, B3): the contact id and kind, country and
// region when the operator marks them non-identifying, and the consent
// records' purpose, state, legal basis, source, text version and times,
// so that the ledger still verifies and shows that consent was given and
// when, and that the erasure happened. docs/erasure.md says exactly what
// goes and what stays.
//
// Everything an erasure does is one transaction (EraseTx), which the
// retention job, the API and the admin pages share. A legal hold (package
// holds) stops the full erasure: what the hold does not need goes, the
// rest waits until no hold is active and then goes by itself (Service.
// ResumeReleased).
package erasure

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/holds"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/preferences"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/suppression"
	"github.com/consentry/consentry/internal/webform"
)

// Why says who or what erases a contact: a user, an API client or the
// system, for a request (RequestID) or a retention rule (Rule), or neither
// (an erasure a user decided on). It is written to the erasure log; it
// holds no personal data.
type Why struct {
	Actor     consent.Actor
	RequestID string
	Rule      string
	// Note is the operator's note on why, for the erasure log; it must
	// name no one (at most 500 characters).
	Note string
}

// Statuses of an erasure.
const (
	StatusErased        = "erased"         // the personal data is gone; the remainder stays
	StatusAlreadyErased = "already_erased" // nothing left to erase
	StatusPartlyErased  = "partly_erased"  // a legal hold keeps part; the rest waits for it to end
)

// Outcome is what an erasure did.
type Outcome struct {
	ContactID string    `json:"contact_id"`
	Status    string    `json:"status" enum:"erased,already_erased,partly_erased"`
	At        time.Time `json:"at"`
	// Hold is the active hold that kept part of the record, for a partly
	// erased contact.
	Hold    *holds.Hold `json:"hold,omitempty"`
	Message string      `json:"message"`
}

// EraseTx erases the contact's personal data inside tx, with everything it
// causes: the remainder (contact.EraseTx), the consent evidence
// (consent.EraseEvidenceTx), the ledger event contact_erased, email copies
// and bodies, tokens, preference changes, held webform posts, open double
// opt-in invitations, the address on the contact's requests and on the
// requests received from it that are about no contact
// (requests.ForgetAddressesTx), what imports keep of the address (the
// cells of reported rows, and uploaded files not being imported:
// imports.ForgetAddressesTx), the suppression entry of the address, the
// erasure log, the erased mark, and the contact's open erasure requests
// moved to done. Before all that, the end of each of the contact's holds
// whose until date has passed is recorded (holds.EndExpiredOfTx), if the
// periodic job has not done so yet.
//
// An already erased contact is left as it is (StatusAlreadyErased) but its
// open erasure requests are still closed as done. While a legal hold is
// active, only what no hold needs is erased (holdTx) and the outcome is
// StatusPartlyErased. A contact that does not exist is a not-found error.
func EraseTx(tx *store.Tx, contactID string, why Why, now time.Time) (*Outcome, error) {
	out, err := EraseManyTx(tx, []string{contactID}, why, now)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errs.NotFound("contact", "")
	}
	return out[0], nil
}

// EraseManyTx erases each contact in ids inside tx as EraseTx does, for a
// batch (retention erases a few hundred contacts a transaction): each step
// is one statement for the whole batch where it can be, so that a batch
// costs little more than one erasure. It returns one outcome per contact,
// in the order of ids; a contact that does not exist is skipped (no
// outcome), as is a repeated id.
func EraseManyTx(tx *store.Tx, ids []string, why Why, now time.Time) ([]*Outcome, error) {
	states, err := contactstate.LoadMany(tx, ids)
	if err != nil {
		return nil, err
	}
	present := make([]string, 0, len(states))
	seen := make(map[string]bool, len(states))
	for _, id := range ids {
		if _, ok := states[id]; ok && !seen[id] {
			present, seen[id] = append(present, id), true
		}
	}
	// A hold run out whose end is not recorded yet gets it first, so that
	// the erasure's events follow the hold's end.
	if _, err := holds.EndExpiredOfTx(tx, present, now); err != nil {
		return nil, err
	}
	held, err := holds.FirstActiveTx(tx, present, now)
	if err != nil {
		return nil, err
	}
	outcomes := make(map[string]*Outcome, len(present))
	var full, done []string // to erase now; to close the erasure requests of
	for _, id := range present {
		switch k, h := states[id], held[id]; {
		case k.Erased:
			outcomes[id] = &Outcome{ContactID: id, At: now, Status: StatusAlreadyErased, Message: "the contact's personal data was already erased"}
			done = append(done, id)
		case h != nil:
			if outcomes[id], err = holdTx(tx, k, h, why, now); err != nil {
				return nil, err
			}
		default:
			outcomes[id] = &Outcome{ContactID: id, At: now, Status: StatusErased,
				Message: "the contact's personal data was erased; a non-identifying remainder is kept"}
			full = append(full, id)
		}
	}
	if err := eraseTx(tx, full, states, why, now); err != nil {
		return nil, err
	}
	done = append(done, full...)
	if err := holds.ClearWaitingTx(tx, done); err != nil {
		return nil, err
	}
	withRequests, err := requests.WithOpenTx(tx, done, requests.KindErasure)
	if err != nil {
		return nil, err
	}
	for _, id := range done {
		if withRequests[id] {
			if _, err := requests.SetStatusTx(tx, id, requests.KindErasure, requests.StatusDone, "", why.Actor, now); err != nil {
				return nil, err
			}
		}
	}
	out := make([]*Outcome, 0, len(present))
	for _, id := range present {
		out = append(out, outcomes[id])
	}
	return out, nil
}

// eraseTx erases the contacts in ids, none erased or held, in full.
func eraseTx(tx *store.Tx, ids []string, states map[string]contactstate.State, why Why, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	set, err := settings.InTx(tx)
	if err != nil {
		return err
	}
	emails, err := contact.EraseTx(tx, ids, set.KeptAfterErasure, now)
	if err != nil {
		return err
	}
	rows, err := consent.EraseEvidenceTx(tx, ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := ledger.Append(tx, &ledger.Event{RecordedAt: store.Micros(now), Kind: ledger.KindContactErased, ContactRef: states[id].Ref,
			ActorKind: why.Actor.Kind, ActorID: why.Actor.ID, Erased: rows[id]}); err != nil {
			return err
		}
		if err := events.Emit(tx, events.ContactErased, id, events.ContactErasedData{ContactID: id, ActorKind: why.Actor.Kind,
			RequestID: why.RequestID}, now); err != nil {
			return err
		}
		if err := suppression.AddTx(tx, emails[id], suppression.Erased, now); err != nil {
			return err
		}
		if err := logTx(tx, id, suppression.Erased, why, now); err != nil {
			return err
		}
	}
	if err := forgetTx(tx, ids, now); err != nil {
		return err
	}
	addresses := make([]string, 0, len(ids))
	for _, id := range ids {
		addresses = append(addresses, emails[id])
	}
	if err := requests.ForgetAddressesTx(tx, ids, addresses, now); err != nil {
		return err
	}
	return imports.ForgetAddressesTx(tx, addresses, now)
}

// forgetTx erases what other packages hold about the contacts in ids that
// is not part of the record itself, also under a legal hold: no hold needs
// a pending change, a held post, a link or a copy of an email.
func forgetTx(tx *store.Tx, ids []string, now time.Time) error {
	if err := optin.EndForErasureTx(tx, ids, now); err != nil {
		return err
	}
	if err := mail.EraseContactsTx(tx, ids); err != nil {
		return err
	}
	if err := auth.DeleteContactTokensTx(tx, ids); err != nil {
		return err
	}
	if err := campaign.ForgetContactsTx(tx, ids); err != nil {
		return err
	}
	if err := preferences.ForgetContactsTx(tx, ids); err != nil {
		return err
	}
	return webform.ForgetContactsTx(tx, ids)
}

// holdTx is the erasure of a contact under hold h: the sensitive values
// and the data key go, and what forgetTx erases; the core fields, the
// other custom fields and the consent evidence stay, as the hold's duty
// (bookkeeping, a dispute) may need them. Marketing stops (the contact is
// marked as asking for erasure, which the send gate honours), the
// contact's open erasure requests become partly done with the hold's
// reason, and the hold remembers the erasure, which proceeds when no hold
// is active any more. The first erasure a hold stops writes erasure.held.
func holdTx(tx *store.Tx, k contactstate.State, h *holds.Hold, why Why, now time.Time) (*Outcome, error) {
	id := k.ID
	if err := contact.ShredFieldsTx(tx, id, now); err != nil {
		return nil, err
	}
	if err := forgetTx(tx, []string{id}, now); err != nil {
		return nil, err
	}
	if err := contactstate.RequestErasureTx(tx, id, now); err != nil {
		return nil, err
	}
	if err := holds.MarkWaitingTx(tx, id, why.RequestID, now); err != nil {
		return nil, err
	}
	// A second erasure under the same hold (retention trying again, say)
	// erases what came since but is not logged again.
	if h.ErasureWaiting == nil {
		if err := logTx(tx, id, suppression.PartlyErased, why, now); err != nil {
			return nil, err
		}
		if err := events.Emit(tx, events.ErasureHeld, id, events.ErasureHeldData{ContactID: id, HoldID: h.ID, LegalBasis: h.LegalBasis,
			RequestID: why.RequestID, ActorKind: why.Actor.Kind}, now); err != nil {
			return nil, err
		}
	}
	msg := holdMessage(h)
	if _, err := requests.SetStatusTx(tx, id, requests.KindErasure, requests.StatusPartlyDone, msg, why.Actor, now); err != nil {
		return nil, err
	}
	return &Outcome{ContactID: id, Status: StatusPartlyErased, At: now, Hold: h, Message: msg}, nil
}

// holdMessage says why an erasure stopped part-way, in at most 1000
// characters (a request's reason): the hold's reason is cut at 500.
func holdMessage(h *holds.Hold) string {
	reason := h.Reason
	if r := []rune(reason); len(r) > 500 {
		reason = string(r[:500]) + "…"
	}
	until := "until it is lifted"
	if h.Until != nil {
		until = "until " + h.Until.Format(time.DateOnly)
	}
	return fmt.Sprintf("a legal hold (%s: %s) keeps the contact's core fields and consent evidence %s; the rest was erased, "+
		"and the erasure completes by itself when the hold ends", h.LegalBasis, reason, until)
}

func logTx(tx *store.Tx, contactID, action string, why Why, now time.Time) error {
	return suppression.LogTx(tx, &suppression.Entry{ContactID: contactID, At: now, Action: action, Rule: why.Rule,
		RequestID: why.RequestID, Note: why.Note, Actor: why.Actor})
}

// Service runs erasures and holds in their own transactions, for the API,
// the admin pages and the periodic job.
type Service struct {
	DB  *store.DB
	Now func() time.Time
}

// New returns a Service on db using the wall clock.
func New(db *store.DB) *Service { return &Service{DB: db, Now: time.Now} }

func (s *Service) now() time.Time { return store.Now(s.Now) }

// Erase erases the contact as EraseTx does, in one transaction. A
// requestID that is not an erasure request about this contact is an
// invalid-input error on "request_id".
func (s *Service) Erase(ctx context.Context, contactID string, why Why) (*Outcome, error) {
	if err := errs.OptionalText("note", &why.Note, 500); err != nil {
		return nil, err
	}
	var out *Outcome
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		now := s.now()
		if why.RequestID != "" {
			r, err := requests.Get(ctx, tx, why.RequestID, now)
			if err != nil || r.ContactID != contactID || r.Kind != requests.KindErasure {
				return errs.Invalid("request_id", "must be an erasure request about this contact")
			}
		}
		var err error
		out, err = EraseTx(tx, contactID, why, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.checkpoint(ctx)
	return out, nil
}

// DeleteTx deletes the contact inside tx as contact.DeleteTx does, and
// removes what imports keep of its address, as an erasure does
// (imports.ForgetAddressesTx); as an erasure does, it first records the
// end of the contact's holds that ran out (holds.EndExpiredOfTx). Its
// errors are contact.DeleteTx's.
func DeleteTx(tx *store.Tx, contactID string, actor consent.Actor, now time.Time) error {
	if _, err := holds.EndExpiredOfTx(tx, []string{contactID}, now); err != nil {
		return err
	}
	address, err := contact.DeleteTx(tx, contactID, actor, now)
	if err != nil || address == "" {
		return err
	}
	return imports.ForgetAddressesTx(tx, []string{address}, now)
}

// Delete deletes the contact as DeleteTx does, in one transaction, for
// the API and the admin pages.
func (s *Service) Delete(ctx context.Context, contactID string, actor consent.Actor) error {
	return s.DB.Write(ctx, func(tx *store.Tx) error { return DeleteTx(tx, contactID, actor, s.now()) })
}

// checkpoint empties SQLite's write-ahead log after an erasure, so that the
// erased values do not linger there until the next automatic checkpoint.
// The erasure has committed either way; a failure (a long reader holding
// the log) is only logged, and the next checkpoint does it.
func (s *Service) checkpoint(ctx context.Context) {
	if err := s.DB.Checkpoint(ctx); err != nil {
		slog.Warn("erasure: checkpoint after erasure", "err", err)
	}
}
