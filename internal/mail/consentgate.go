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

// The consent states and the legal basis of consent, as package consent
// writes them (it is not imported here: the gate reads consent_current, as
// campaigns' audiences do).
const (
	consentGranted   = "granted"
	consentWithdrawn = "withdrawn"
	basisConsent     = "consent"
)

// consentNow is a contact's current consent to one purpose, as the gate
// reads it.
type consentNow struct {
	state string // granted, withdrawn; "" for a grant that expired
}

// consentsOf reads inside tx the current consents of the contacts in ids,
// by contact and purpose.
func consentsOf(tx *store.Tx, ids []string, now time.Time) (map[string]map[string]consentNow, error) {
	out := map[string]map[string]consentNow{}
	if len(ids) == 0 {
		return out, nil
	}
	ph, args := store.In(1, ids)
	rows, err := tx.Query(`SELECT contact_id, purpose_id, state, expires_at FROM consent_current WHERE contact_id IN (`+ph+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("mail: read consents: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var contactID, purposeID string
		var c consentNow
		var expires sql.NullInt64
		if err := rows.Scan(&contactID, &purposeID, &c.state, &expires); err != nil {
			return nil, fmt.Errorf("mail: read consents: %w", err)
		}
		if c.state == consentGranted && expires.Valid && expires.Int64 <= store.Micros(now) {
			c.state = ""
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

// consentGate decides, after Gate allowed a message that rests on a
// consent (Message.Consent: rests) to a contact whose current consents are
// consents (by purpose id), whether it may still go: "" to send, or the
// reason not to. It goes only while the consent is in the state it rests
// on: a grant not withdrawn or expired since (ReasonConsentWithdrawn), a
// withdrawal not taken back (ReasonConsentChanged). Marketing email is
// checked against its ground after (Ground).
func consentGate(rests ConsentState, consents map[string]consentNow) string {
	now := consents[rests.PurposeID].state
	switch {
	case rests.State == consentGranted && now != consentGranted:
		return ReasonConsentWithdrawn
	case rests.State == consentWithdrawn && now == consentGranted:
		return ReasonConsentChanged
	}
	return ""
}
