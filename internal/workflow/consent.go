package workflow

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
)

// restsOn returns the consent a run rests on: for a run set off by a
// consent event (consent.granted, consent.withdrawn), the event's purpose
// in the event's state; nil for any other run. The event's facts
// (event.purpose, event.state) stay as they were when it happened, so a
// rule that acts later, or an email it queued, checks the consent as it
// is then (consentGone, mail.Message.Consent).
func restsOn(run *Run) *mail.ConsentState {
	if run.EventType != events.ConsentGranted && run.EventType != events.ConsentWithdrawn {
		return nil
	}
	var d events.ConsentData
	if json.Unmarshal(run.data, &d) != nil || d.PurposeID == "" || (d.State != consent.StateGranted && d.State != consent.StateWithdrawn) {
		return nil
	}
	return &mail.ConsentState{PurposeID: d.PurposeID, State: d.State}
}

// consentGone returns, inside tx, why a run set off by a consent event
// must not act: the contact's consent to the event's purpose is no longer
// in the event's state at now (a grant withdrawn or expired since, a
// withdrawal taken back by a new grant). It returns "" for a run that may
// act, and for one set off by another event.
func consentGone(tx *store.Tx, run *Run, now time.Time) (string, error) {
	rests := restsOn(run)
	if rests == nil {
		return "", nil
	}
	var name, state string
	var expires sql.NullInt64
	err := tx.QueryRow(`SELECT p.name, COALESCE(cc.state, ''), cc.expires_at FROM purposes p
		LEFT JOIN consent_current cc ON cc.purpose_id = p.id AND cc.contact_id = $2 WHERE p.id = $1`, rests.PurposeID, run.ContactID).
		Scan(&name, &state, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return "the purpose of the consent event no longer exists", nil
	}
	if err != nil {
		return "", fmt.Errorf("workflow: read the consent of the event: %w", err)
	}
	expired := state == consent.StateGranted && expires.Valid && expires.Int64 <= store.Micros(now)
	switch {
	case rests.State == consent.StateGranted && state == consent.StateWithdrawn:
		return fmt.Sprintf("the contact withdrew their consent to %q after the event: nothing was done", name), nil
	case rests.State == consent.StateGranted && (expired || state != consent.StateGranted):
		return fmt.Sprintf("the contact's consent to %q is no longer granted (it expired): nothing was done", name), nil
	case rests.State == consent.StateWithdrawn && state == consent.StateGranted && !expired:
		return fmt.Sprintf("the contact consented to %q again after the withdrawal: nothing was done", name), nil
	}
	return "", nil
}
