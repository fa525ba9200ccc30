// Package consent holds purposes with their legal bases and versioned consent
// texts, sources, consent records and the email opt-in status rules.
//
// Every change of a consent record or opt-in status is written together with
// its ledger event in one transaction; the rules for which opt-in status may
// follow which (SPEC R1, R3, R5, R6) live in optin.go and nowhere else.
package consent

import (
	"slices"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// Legal bases of GDPR Art. 6(1).
const (
	BasisConsent             = "consent"
	BasisContract            = "contract"
	BasisLegalObligation     = "legal_obligation"
	BasisVitalInterests      = "vital_interests"
	BasisPublicTask          = "public_task"
	BasisLegitimateInterests = "legitimate_interests"
)

// LegalBases lists the six legal bases in the order of Art. 6(1)(a)-(f).
var LegalBases = []string{BasisConsent, BasisContract, BasisLegalObligation, BasisVitalInterests, BasisPublicTask, BasisLegitimateInterests}

// Consent record states.
const (
	StateGranted   = "granted"
	StateWithdrawn = "withdrawn"
	// StateNone is what a contact has for a purpose with no record yet. It is
	// never stored.
	StateNone = "none"
)

// RecordStates are the states a consent record can have.
var RecordStates = []string{StateGranted, StateWithdrawn}

// Retention actions, chosen per purpose: what happens to a contact once
// every purpose they have a record for has passed its retention period
// (package retention).
const (
	// RetentionErase erases the personal data and keeps the
	// non-identifying remainder with the consent records, as an erasure
	// request does.
	RetentionErase = "erase"
	// RetentionAnonymise removes the record and its history too: what
	// stays is the ledger's events under a reference nothing links to
	// anyone any more, the suppression entry and the erasure log.
	RetentionAnonymise = "anonymise"
)

// RetentionActions lists the retention actions.
var RetentionActions = []string{RetentionErase, RetentionAnonymise}

// Actor kinds: who made a change.
const (
	ActorUser     = "user"
	ActorContact  = "contact"
	ActorSystem   = "system"
	ActorAPIToken = "api_token"
)

// ActorKinds lists every actor kind.
var ActorKinds = []string{ActorUser, ActorContact, ActorSystem, ActorAPIToken}

// Evidence methods: how a consent or opt-in change was obtained.
const (
	MethodDoubleOptInLink = "double_opt_in_link"
	MethodPreferencesPage = "preferences_page"
	MethodUnsubscribeLink = "unsubscribe_link"
	MethodWebform         = "webform"
	MethodEnteredByUser   = "entered_by_user"
	MethodImport          = "import"
	MethodAPI             = "api"
	MethodSystem          = "system"
)

// MethodWebformConfirmed: a webform post about a known address, applied
// only when the owner of the address followed the link emailed to it.
const MethodWebformConfirmed = "webform_confirmed"

// Methods lists every evidence method.
var Methods = []string{MethodDoubleOptInLink, MethodPreferencesPage, MethodUnsubscribeLink, MethodWebform, MethodWebformConfirmed, MethodEnteredByUser, MethodImport, MethodAPI, MethodSystem}

// UserMethods are the methods a user or an API client may claim. The others
// are recorded only by the flows that carry them out (a confirmation link, a
// confirmed preferences change, a webform post), so that evidence cannot be
// asserted by someone who did not collect it.
var UserMethods = []string{MethodEnteredByUser, MethodImport, MethodAPI}

// Actor says who made a change: a user, the contact, the system or an API
// token, with that actor's id where there is one.
type Actor struct {
	Kind string `json:"kind"`
	ID   string `json:"id,omitempty"`
}

// Evidence says how a change was obtained. IP and user agent are personal
// data: they stay in the consent record and are erased with it, never copied
// to the ledger.
type Evidence struct {
	Method    string `json:"method"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	TokenID   string `json:"confirmation_token_id,omitempty" doc:"the confirmation link's token id, for changes confirmed by email"`
	// The provenance of a record brought in by an import (R24): the import
	// it came with, when the consent was collected by the file's account,
	// and the notice the person was shown when no text version says it.
	ImportID    string     `json:"import_id,omitempty" doc:"the import this record came with"`
	CollectedAt *time.Time `json:"collected_at,omitempty" doc:"when the consent was collected, as the imported file says; the record itself is dated when it was written"`
	Notice      string     `json:"notice,omitempty" doc:"how the consent was collected and the notice shown, as the import described it"`
}

// collectedAt is CollectedAt as stored: microseconds, or NULL.
func (e Evidence) collectedAt() any {
	if e.CollectedAt == nil {
		return nil
	}
	return store.Micros(*e.CollectedAt)
}

// collectedAtMicros is CollectedAt in microseconds, 0 when not known.
func (e Evidence) collectedAtMicros() int64 {
	if e.CollectedAt == nil {
		return 0
	}
	return store.Micros(*e.CollectedAt)
}

func validOneOf(v string, list []string) bool { return slices.Contains(list, v) }
