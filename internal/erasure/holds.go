package erasure

import (
	"context"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/holds"
	"github.com/consentry/consentry/internal/store"
)

// SetHold sets a legal hold on the contact, as actor.
func (s *Service) SetHold(ctx context.Context, contactID string, in holds.New, actor consent.Actor) (*holds.Hold, error) {
	var out *holds.Hold
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		var err error
		out, err = holds.SetTx(tx, contactID, in, actor, s.now())
		return err
	})
	return out, err
}

// Holds returns the contact's holds, active ones first; none is an empty
// slice.
func (s *Service) Holds(ctx context.Context, contactID string) ([]*holds.Hold, error) {
	return holds.List(ctx, s.DB.Read, contactID, s.now())
}

// LiftHold lifts the contact's hold, as actor, with the reason. When an
// erasure was waiting on it and no other hold is active, the erasure
// proceeds in the same transaction; its outcome is returned, or nil when
// none was waiting.
func (s *Service) LiftHold(ctx context.Context, contactID, holdID, reason string, actor consent.Actor) (*holds.Hold, *Outcome, error) {
	var h *holds.Hold
	var out *Outcome
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		now := s.now()
		var err error
		if h, err = holds.LiftTx(tx, contactID, holdID, reason, actor, now); err != nil {
			return err
		}
		out, err = resumeTx(tx, contactID, now)
		return err
	})
	if err == nil && out != nil {
		s.checkpoint(ctx)
	}
	return h, out, err
}

// resumeTx lets the contact's waiting erasure proceed once no hold is
// active, as the system, for the request it was fulfilling. It returns nil
// when no erasure waits or a hold is still active.
func resumeTx(tx *store.Tx, contactID string, now time.Time) (*Outcome, error) {
	active, err := holds.ActiveTx(tx, contactID, now)
	if err != nil || len(active) > 0 {
		return nil, err
	}
	waiting, requestID, err := holds.WaitingTx(tx, contactID)
	if err != nil || !waiting {
		return nil, err
	}
	return EraseTx(tx, contactID, Why{Actor: consent.Actor{Kind: consent.ActorSystem}, RequestID: requestID, Rule: RuleHoldEnded}, now)
}

// RuleHoldEnded is the erasure log's rule for an erasure that waited on a
// legal hold and proceeded when it ended.
const RuleHoldEnded = "legal_hold_ended"

// EndExpiredHolds records the end of the holds whose until date has passed
// (holds.EndExpiredTx: expired_at, the ledger event and legal_hold.lifted
// with the cause expired), in batches of batch holds a transaction. It
// returns how many it recorded. The periodic job calls it before
// ResumeReleased, so that a hold's end comes before the erasure it lets
// proceed.
func (s *Service) EndExpiredHolds(ctx context.Context, batch int) (int, error) {
	total := 0
	for {
		n := 0
		err := s.DB.Write(ctx, func(tx *store.Tx) (err error) {
			n, err = holds.EndExpiredTx(tx, s.now(), batch)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < batch {
			return total, nil
		}
	}
}

// ResumeReleased lets the erasures proceed whose holds have all ended
// (their until date passed, or they were lifted), in batches of batch
// contacts a transaction. It returns how many contacts it erased. The
// periodic job calls it.
func (s *Service) ResumeReleased(ctx context.Context, batch int) (int, error) {
	total := 0
	for {
		waiting, err := holds.Released(ctx, s.DB.Read, s.now(), batch)
		if err != nil || len(waiting) == 0 {
			return total, err
		}
		err = s.DB.Write(ctx, func(tx *store.Tx) error {
			now := s.now()
			for _, w := range waiting {
				o, err := resumeTx(tx, w.ContactID, now)
				if err != nil {
					return err
				}
				if o != nil {
					total++
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		s.checkpoint(ctx)
		if len(waiting) < batch {
			return total, nil
		}
	}
}
