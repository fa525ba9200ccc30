package optin

import (
	"context"
	"errors"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
)

// LinkEvidence is what stands behind a change a contact confirmed by a
// link in an email: the link's token and the email that carried it.
type LinkEvidence struct {
	TokenID string
	// Token is nil when its row is gone: tokens are purged some time after
	// they expired or were used, the id staying in the record.
	Token *auth.IssuedToken
	// Email is nil when no email in the outbox matches the token (its
	// token is gone, or the email was removed with the contact's erasure).
	Email *mail.Entry
	// Exact is true when the email is named by the token itself (an
	// unsubscribe link is about the message that carried it); otherwise
	// the email is the contact's last one of the token's kind queued
	// before the token was made, which the token was issued for as that
	// email was handed over.
	Exact bool
}

// tokenEmailKind is the kind of email that carries a link token of each
// purpose a contact confirms changes with.
var tokenEmailKind = map[string]string{
	auth.PurposeDoubleOptIn:         mail.KindDoubleOptIn,
	auth.PurposeWebformConfirmation: mail.KindConfirmation,
	auth.PurposePreferencesChange:   mail.KindConfirmation,
	auth.PurposePreferences:         mail.KindConfirmation,
	auth.PurposeUnsubscribe:         mail.KindCampaign,
}

// EvidenceOfLink returns the token tokenID of contactID and the email that
// carried its link, reading in one snapshot. Link tokens are issued as
// their email is handed to the mail server (mail.Deliverer), so the token
// names the email's subject (an invitation, a pending change, a held
// webform post; the message itself for an unsubscribe link) and was made
// just after the email was queued. It returns nil for an empty tokenID (a
// change not confirmed by email); a token or email no longer kept leaves
// that part nil.
func EvidenceOfLink(ctx context.Context, db *store.DB, contactID, tokenID string) (*LinkEvidence, error) {
	if tokenID == "" {
		return nil, nil
	}
	out := &LinkEvidence{TokenID: tokenID}
	err := db.Snapshot(ctx, func(q store.Querier) error {
		t, err := auth.IssuedContactToken(ctx, q, contactID, tokenID)
		if errors.Is(err, auth.ErrNoToken) {
			return nil
		}
		if err != nil {
			return err
		}
		out.Token = t
		if t.Purpose == auth.PurposeUnsubscribe {
			out.Email, err = mail.ContactEntryIn(ctx, q, contactID, t.SubjectID)
			out.Exact = out.Email != nil
			return err
		}
		if kind := tokenEmailKind[t.Purpose]; kind != "" {
			out.Email, err = mail.LastContactEntryIn(ctx, q, contactID, kind, t.CreatedAt)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
