package preferences

import (
	"context"
	"errors"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// SessionMinutes is how long a preferences page session lasts. It is short:
// the link in the email can open a new one.
const SessionMinutes = 30

// ErrNoSession means a link or session cookie is unknown, expired or made
// for something else; the page says the same for all of these.
var ErrNoSession = errors.New("preferences: no valid link or session")

// OpenSession exchanges the secret of a preferences or unsubscribe link
// (purpose auth.PurposePreferences or auth.PurposeUnsubscribe) for a new
// session, and returns the session's secret for the cookie and when it
// expires. The link stays usable until it expires, so opening it twice
// works. It returns ErrNoSession for any link that cannot be used.
func (s *Service) OpenSession(ctx context.Context, purpose, secret string) (string, time.Time, error) {
	if purpose != auth.PurposePreferences && purpose != auth.PurposeUnsubscribe {
		return "", time.Time{}, ErrNoSession
	}
	t, err := auth.FindContactToken(dbQuerier{ctx, s.DB.Read}, purpose, secret, s.now())
	if errors.Is(err, auth.ErrNoToken) {
		return "", time.Time{}, ErrNoSession
	}
	if err != nil {
		return "", time.Time{}, err
	}
	return s.issueSession(ctx, t.ContactID, t.ID)
}

// issueSession opens a session for contactID; subjectID is the link's
// token, or empty.
func (s *Service) issueSession(ctx context.Context, contactID, subjectID string) (string, time.Time, error) {
	var session string
	now := s.now()
	expires := now.Add(SessionMinutes * time.Minute)
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		var err error
		session, _, err = auth.IssueContactToken(tx, auth.PurposePreferencesSession, contactID, subjectID, expires, now)
		return err
	})
	return session, expires, err
}

// Session returns the contact whose session secret this is, and what the
// session was opened after (subjectID: the link's token, the change or the
// invitation a confirmation link applied, or ""), so that the page a
// confirmation redirects to can say what was done; or ErrNoSession.
func (s *Service) Session(ctx context.Context, secret string) (contactID, subjectID string, err error) {
	t, err := auth.FindContactToken(dbQuerier{ctx, s.DB.Read}, auth.PurposePreferencesSession, secret, s.now())
	if errors.Is(err, auth.ErrNoToken) {
		return "", "", ErrNoSession
	}
	if err != nil {
		return "", "", err
	}
	return t.ContactID, t.SubjectID, nil
}

// EndSession makes a session secret unusable; an unknown one is ignored.
func (s *Service) EndSession(ctx context.Context, secret string) error {
	t, err := auth.FindContactToken(dbQuerier{ctx, s.DB.Read}, auth.PurposePreferencesSession, secret, s.now())
	if err != nil {
		return nil
	}
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		err := auth.UseContactToken(tx, t.ID, s.now())
		if errors.Is(err, auth.ErrNoToken) {
			return nil
		}
		return err
	})
}

// OneClick opts out the contact whose unsubscribe link this is, at once and
// without a page (RFC 8058): the mail client posts
// List-Unsubscribe=One-Click to the link. The opt-out is the contact's own
// (opt_out_contact, R1), recorded with the link's token as evidence. A
// contact already opted out, or deleted, is left as it is, and that is not
// an error. A link that cannot be used (expired after the setting
// unsubscribe_link_days, or unknown) changes nothing and returns
// ErrNoSession, so that the contact is told it did not work rather than
// that they are unsubscribed.
func (s *Service) OneClick(ctx context.Context, secret string, ev Evidence) error {
	t, err := auth.FindContactToken(dbQuerier{ctx, s.DB.Read}, auth.PurposeUnsubscribe, secret, s.now())
	if errors.Is(err, auth.ErrNoToken) {
		return ErrNoSession
	}
	if err != nil {
		return err
	}
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		return s.OptOutTx(tx, t.ContactID, consent.Evidence{Method: consent.MethodUnsubscribeLink, IP: ev.IP, UserAgent: ev.UserAgent, TokenID: t.ID}, s.now())
	})
}

// OptOutTx opts the contact out inside tx as their own choice
// (opt_out_contact, R1), with ev as the evidence. A contact already opted
// out, or deleted, is left as it is, and that is not an error.
func (s *Service) OptOutTx(tx *store.Tx, contactID string, ev consent.Evidence, now time.Time) error {
	k, err := contactstate.Load(tx, contactID)
	if errs.Is(err, errs.KindNotFound) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	_, err = s.Consent.ApplyOptIn(tx, k, consent.OptInInput{Status: contactstate.OptOutContact, Channel: consent.ChannelContact,
		Actor: consent.Actor{Kind: consent.ActorContact, ID: contactID}, Evidence: ev}, now)
	return err
}

// OpenSessionFor opens a preferences page session for a contact whose
// link was checked elsewhere (a campaign message's signed link), and
// returns its secret and expiry as OpenSession does. subjectID is what
// the link did (see Session), or "". An unknown contact is ErrNoSession.
func (s *Service) OpenSessionFor(ctx context.Context, contactID, subjectID string) (string, time.Time, error) {
	var n int
	if err := s.DB.Read.QueryRowContext(ctx, `SELECT count(*) FROM contacts WHERE id = $1`, contactID).Scan(&n); err != nil {
		return "", time.Time{}, err
	}
	if n == 0 {
		return "", time.Time{}, ErrNoSession
	}
	return s.issueSession(ctx, contactID, subjectID)
}
