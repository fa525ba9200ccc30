package requests

import (
	"context"
	"errors"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
)

// Service records and moves requests on for the API and the admin pages,
// each in a transaction of its own, telling Notify of every new one.
type Service struct {
	DB *store.DB
	// Consent carries out a restriction (StopProcessing); nil refuses
	// it.
	Consent *consent.Service
	// Notify is told of each request recorded (NotifyOperator); nil tells
	// no one.
	Notify Notifier
	Now    func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Create records a request and returns it; see CreateTx.
func (s *Service) Create(ctx context.Context, in New) (*Request, error) {
	var out *Request
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		var err error
		out, err = CreateTx(tx, in, s.Notify, s.now())
		return err
	})
	return out, err
}

// Get returns the request with this id, or a not-found error.
func (s *Service) Get(ctx context.Context, id string) (*Request, error) {
	return Get(ctx, s.DB.Read, id, s.now())
}

// List returns the requests q selects; see List.
func (s *Service) List(ctx context.Context, q Query) ([]*Request, error) {
	return List(ctx, s.DB.Read, q, s.now())
}

// Count counts the requests f selects; see Count.
func (s *Service) Count(ctx context.Context, f Query) (int64, error) {
	return Count(ctx, s.DB.Read, f)
}

// Update applies c as actor; see Update.
func (s *Service) Update(ctx context.Context, id string, c Change, actor consent.Actor) (*Request, error) {
	return Update(ctx, s.DB, id, c, actor, s.now())
}

// CountOpen counts the open and overdue requests; see CountOpen.
func (s *Service) CountOpen(ctx context.Context) (open, overdue int, err error) {
	return CountOpen(ctx, s.DB.Read, s.now())
}

// StopProcessing carries out a contact's restriction of processing (Art.
// 18, R9) at an operator's hand, for a request received by phone, letter
// or email, as the contact's own "Stop processing" does: their email
// opted out, every consent they gave on the legal basis of consent
// withdrawn, and their record locked (consent.Service.StopProcessingTx),
// each recorded with actor and ev; every open restriction request of the
// contact becomes done, in the same transaction. A record locked already
// stays as it is, and its open restriction requests close. It returns a
// not-found error for an unknown contact, and a locked error for an
// erased one, writing nothing.
func (s *Service) StopProcessing(ctx context.Context, contactID string, actor consent.Actor, ev consent.Evidence) error {
	if s.Consent == nil {
		return errors.New("requests: no consent service to stop processing with")
	}
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		now := s.now()
		k, err := contactstate.Load(tx, contactID)
		if err != nil {
			return err
		}
		if k.Erased {
			return contactstate.ErrErased()
		}
		if !k.ProcessingStopped {
			if err := s.Consent.StopProcessingTx(tx, k, actor, ev, now); err != nil {
				return err
			}
		}
		_, err = SetStatusTx(tx, contactID, KindRestriction, StatusDone, "", actor, now)
		return err
	})
}
