package mail

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// Reasons the consent gate gives for not sending a message.
const (
	// ReasonConsentWithdrawn: the message rests on the contact's consent
	// to a purpose (Message.Consent, granted), which is no longer granted
	// as it is taken for sending: withdrawn, or expired, since it was
	// queued. A partner gets no data about a contact who withdrew.
	ReasonConsentWithdrawn = "consent_withdrawn"
	// ReasonConsentChanged: the message rests on a withdrawal
	// (Message.Consent, withdrawn) that the contact took back since: they
	// consented again.
	ReasonConsentChanged = "consent_changed"
	// ReasonNoConsent: marketing email that is not a campaign (a workflow
	// rule's email to the contact) to a contact who withdrew their consent
	// to a purpose that governs marketing email, or whose consent to one
	// (on the legal basis of consent) expired: a campaign for that purpose
	// skips them for the same reason.
	ReasonNoConsent = "no_consent_for_purpose"
	// ReasonHeld: email that automation sends (StopsUnderHold) to a
	// contact under an active legal hold: a hold freezes their data for
	// its duty, so nothing is sent to them unasked, as campaigns skip
	// them.
	ReasonHeld = "held"
)

// StopsUnderHold reports whether email of kind stops while a legal hold
// is on its contact: a workflow rule's email and a double opt-in
// invitation or reminder, which automation sends and the contact did not
// ask for. (Campaigns check holds in their own gate; what the contact
// asked for, such as a confirmation link, still goes.)
func StopsUnderHold(kind string) bool { return kind == KindWorkflow || kind == KindDoubleOptIn }

// The consent states, as package consent writes them (it is not imported
// here: the gate reads consent_current, as campaigns' audiences do).
const (
	consentGranted   = "granted"
	consentWithdrawn = "withdrawn"
	basisConsent     = "consent"
)

// consentNow is a contact's current consent to one purpose, as the gate
// reads it.
type consentNow struct {
	state     string // granted, withdrawn; "" for a grant that expired
	expired   bool   // a grant that expired
	marketing bool   // the purpose governs marketing email
	basis     string // the purpose's legal basis
}

// consentsOf reads inside tx the current consents of the contacts in ids,
// by contact and purpose.
func consentsOf(tx *store.Tx, ids []string, now time.Time) (map[string]map[string]consentNow, error) {
	out := map[string]map[string]consentNow{}
	if len(ids) == 0 {
		return out, nil
	}
	ph, args := store.In(1, ids)
	rows, err := tx.Query(`SELECT cc.contact_id, cc.purpose_id, cc.state, cc.expires_at, p.marketing_email, p.legal_basis
		FROM consent_current cc JOIN purposes p ON p.id = cc.purpose_id WHERE cc.contact_id IN (`+ph+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("mail: read consents: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var contactID, purposeID string
		var c consentNow
		var expires sql.NullInt64
		if err := rows.Scan(&contactID, &purposeID, &c.state, &expires, &c.marketing, &c.basis); err != nil {
			return nil, fmt.Errorf("mail: read consents: %w", err)
		}
		if c.state == consentGranted && expires.Valid && expires.Int64 <= store.Micros(now) {
			c.state, c.expired = "", true
		}
		if out[contactID] == nil {
			out[contactID] = map[string]consentNow{}
		}
		out[contactID][purposeID] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mail: read consents: %w", err)
	}
	return out, nil
}

// needsConsents reports whether the gate reads the contact's consents for
// a message of kind that rests on a consent to the purpose rests (empty:
// on none).
func needsConsents(kind, rests string) bool { return rests != "" || kind == KindWorkflow }

// consentGate decides, after Gate allowed a message of kind to a contact
// whose current consents are consents (by purpose id), whether the
// contact's consents still let it go: "" to send, or the reason not to.
//
//   - A message that rests on a consent (Message.Consent) goes only while
//     the consent is in the state it rests on: a grant not withdrawn or
//     expired since (ReasonConsentWithdrawn), a withdrawal not taken back
//     (ReasonConsentChanged).
//   - Marketing email other than a campaign's (a workflow rule's email to
//     the contact, KindWorkflow) does not go to a contact who withdrew a
//     purpose that governs marketing email, or whose consent to one on the
//     legal basis of consent expired (ReasonNoConsent), as a campaign for
//     that purpose does not. A campaign's own gate checks its purpose.
func consentGate(kind string, rests ConsentState, consents map[string]consentNow) string {
	if rests.PurposeID != "" {
		now := consents[rests.PurposeID].state
		switch {
		case rests.State == consentGranted && now != consentGranted:
			return ReasonConsentWithdrawn
		case rests.State == consentWithdrawn && now == consentGranted:
			return ReasonConsentChanged
		}
	}
	if kind == KindWorkflow {
		for _, c := range consents {
			if c.marketing && (c.state == consentWithdrawn || (c.expired && c.basis == basisConsent)) {
				return ReasonNoConsent
			}
		}
	}
	return ""
}
