package inbound

import (
	"context"
	"errors"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/store"
)

// Pending reports whether secret is a confirmation link that still works:
// its page then shows the button that confirms. Reading it changes
// nothing, so that mail scanners that follow links confirm nothing.
func (s *Service) Pending(ctx context.Context, secret string) (bool, error) {
	now := store.Now(s.Now)
	t, err := auth.FindRequestToken(s.DB.Read, secret, now)
	if errors.Is(err, auth.ErrNoToken) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r, err := requests.Get(ctx, s.DB.Read, t.RequestID, now)
	if errs.Is(err, errs.KindNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return r.Status == requests.StatusReceived, nil
}

// Confirm confirms the request whose link's secret is given, in one
// transaction: every link of the request stops working, the request
// becomes verified, the contact whose address it is gets the erasure
// request noted (a request from an address that has become a contact's
// since is linked to that contact), and the operator is told (Notify). It
// returns ErrNotConfirmed for a link that is unknown, used or expired, or
// whose request no longer waits for confirmation; nothing is written then.
func (s *Service) Confirm(ctx context.Context, secret string) error {
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		now := store.Now(s.Now)
		t, err := auth.FindRequestToken(tx, secret, now)
		if errors.Is(err, auth.ErrNoToken) {
			return ErrNotConfirmed
		}
		if err != nil {
			return err
		}
		r, err := requests.Get(ctx, tx, t.RequestID, now)
		if errs.Is(err, errs.KindNotFound) {
			return ErrNotConfirmed
		}
		if err != nil {
			return err
		}
		if r.Status != requests.StatusReceived {
			return ErrNotConfirmed
		}
		if err := auth.UseRequestTokens(tx, r.ID, now); err != nil {
			return err
		}
		verified := requests.StatusVerified
		change := requests.Change{Status: &verified}
		contactID := r.ContactID
		if contactID == "" && r.Address != "" {
			st, err := contactstate.LoadByEmail(tx, r.Address)
			switch {
			case err == nil:
				contactID = st.ID
				change.ContactID = &contactID
			case !errs.Is(err, errs.KindNotFound):
				return err
			}
		}
		r, err = requests.UpdateTx(tx, r.ID, change, consent.Actor{Kind: consent.ActorContact, ID: contactID}, now)
		if err != nil {
			return err
		}
		if contactID != "" {
			if err := contactstate.RequestErasureTx(tx, contactID, now); err != nil {
				return err
			}
		}
		if s.Notify != nil {
			return s.Notify(tx, r, now)
		}
		return nil
	})
}

// UnconfirmedReason is why a request by email is refused when its sender
// never confirmed it.
const UnconfirmedReason = "Not confirmed: nobody followed the confirmation link emailed to the sender's address within 7 days, so the sender could not be identified (GDPR Art. 12(6))."

// RefuseUnconfirmed refuses the requests by email whose confirmation link
// has expired unused, so that forged requests do not wait on the
// operator's list until they are overdue. It returns how many it refused
// (at most 500 a call).
func (s *Service) RefuseUnconfirmed(ctx context.Context) (int, error) {
	var n int
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		now := store.Now(s.Now)
		var err error
		n, err = requests.RefuseUnconfirmedTx(tx, requests.ChannelEmail, actor, now.Add(-LinkValidity), UnconfirmedReason, now)
		return err
	})
	return n, err
}
