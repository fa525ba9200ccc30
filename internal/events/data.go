package events

import "time"

// The data of each event type. Every shape carries ids and references
// (what a receiver needs to act, or to fetch more through the API), the
// product's own words for what happened, and names rather than values: no
// email address, no field value, never a sensitive value. Names are flat,
// so that a workflow rule reads event.purpose == "Newsletter" &&
// event.state == "granted". A field is added without a new version; one
// removed, renamed or given another meaning makes a new version.

// ContactCreatedData is the data of contact.created.
type ContactCreatedData struct {
	ContactID string `json:"contact_id"`
	ActorKind string `json:"actor_kind" enum:"user,contact,system,api_token" doc:"who created the contact: a user of the admin pages, the contact (a webform), the system or an API client"`
	Method    string `json:"method" doc:"how the contact came in: entered_by_user, api, webform, import"`
	ImportID  string `json:"import_id,omitempty" doc:"the import that created the contact (method import); absent otherwise"`
}

// ContactUpdatedData is the data of contact.updated.
type ContactUpdatedData struct {
	ContactID string   `json:"contact_id"`
	Fields    []string `json:"fields" doc:"the names of the core and custom fields that changed, sorted; never their values. A sensitive field is named whenever a value was written to it or removed"`
	ImportID  string   `json:"import_id,omitempty" doc:"the import whose row changed the fields; absent for any other change"`
}

// ContactErasedData is the data of contact.erased.
type ContactErasedData struct {
	ContactID string `json:"contact_id"`
	ActorKind string `json:"actor_kind" enum:"user,contact,system,api_token"`
	RequestID string `json:"request_id,omitempty" doc:"the erasure request it fulfilled, if any"`
}

// ContactDeletedData is the data of contact.deleted.
type ContactDeletedData struct {
	ContactID string `json:"contact_id"`
	ActorKind string `json:"actor_kind" enum:"user,contact,system,api_token" doc:"system: deleted by the retention rules"`
	// Reason is why, when the deletion was not a deletion asked for as
	// such: the undo of an import takes back what the import created.
	Reason   string `json:"reason,omitempty" enum:"import_undone" doc:"import_undone: removed by the undo of the import import_id, which had created the contact; absent for a contact deleted as such (by a user, an API client or the retention rules)"`
	ImportID string `json:"import_id,omitempty" doc:"the import whose undo removed the contact (reason import_undone)"`
}

// ConsentData is the data of consent.granted and consent.withdrawn: the
// consent record written, as references.
type ConsentData struct {
	ContactID   string     `json:"contact_id"`
	RecordID    string     `json:"record_id" doc:"the consent record; GET /api/v1/contacts/{id}/consents/history has it with its evidence"`
	PurposeID   string     `json:"purpose_id"`
	Purpose     string     `json:"purpose" doc:"the purpose's name"`
	State       string     `json:"state" enum:"granted,withdrawn"`
	LegalBasis  string     `json:"legal_basis" enum:"@legal_basis"`
	SourceID    string     `json:"source_id"`
	Source      string     `json:"source" doc:"the source's name"`
	TextVersion int        `json:"text_version" doc:"the version of the purpose's consent text the contact was shown"`
	Method      string     `json:"method" doc:"how it was collected: double_opt_in_link, preferences_page, unsubscribe_link, webform, webform_confirmed, entered_by_user, import, api, system"`
	ActorKind   string     `json:"actor_kind" enum:"user,contact,system,api_token"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty" doc:"when a granted consent expires; absent when it does not"`
	ImportID    string     `json:"import_id,omitempty" doc:"the import the record came with (method import); absent otherwise"`
}

// OptInChangedData is the data of opt_in.changed.
type OptInChangedData struct {
	ContactID string `json:"contact_id"`
	ChangeID  string `json:"change_id" doc:"the opt-in change; GET /api/v1/contacts/{id}/opt-in/history has it with its evidence"`
	From      string `json:"from" enum:"@opt_in_status"`
	To        string `json:"to" enum:"@opt_in_status"`
	Method    string `json:"method"`
	ActorKind string `json:"actor_kind" enum:"user,contact,system,api_token"`
	ImportID  string `json:"import_id,omitempty" doc:"the import whose row changed the status (method import); absent otherwise"`
}

// DoubleOptInConfirmedData is the data of double_opt_in.confirmed.
type DoubleOptInConfirmedData struct {
	ContactID string `json:"contact_id"`
	ChangeID  string `json:"change_id,omitempty" doc:"the opt-in change to double_opt_in; absent when the contact's status already was double_opt_in"`
	Method    string `json:"method" doc:"double_opt_in_link (an invitation email) or webform_confirmed (a webform's confirmation email)"`
}

// ListData is the data of list.subscribed and list.unsubscribed.
type ListData struct {
	ContactID string `json:"contact_id"`
	ListID    string `json:"list_id"`
	List      string `json:"list" doc:"the list's name"`
	State     string `json:"state" enum:"subscribed,unsubscribed"`
	Source    string `json:"source" enum:"api,webform,preferences_page,campaign,workflow,import" doc:"where the change came from; campaign: the unsubscribe link of a campaign; workflow: a workflow rule's action; import: an import's row (import_id)"`
	ImportID  string `json:"import_id,omitempty" doc:"the import whose row made the change (source import); absent otherwise"`
}

// PreferencesConfirmedData is the data of preferences.confirmed: what the
// confirmed change covered. Each part also writes its own events (consent,
// list, opt-in, request, contact.updated).
type PreferencesConfirmedData struct {
	ContactID      string   `json:"contact_id"`
	ChangeID       string   `json:"change_id"`
	PurposeIDs     []string `json:"purpose_ids" doc:"the purposes whose consent the change granted or withdrew"`
	ListIDs        []string `json:"list_ids" doc:"the lists the change subscribed to or unsubscribed from"`
	OptOut         bool     `json:"opt_out" doc:"the contact opted out of all email"`
	StopProcessing bool     `json:"stop_processing"`
	Erasure        bool     `json:"erasure" doc:"the contact asked to be erased"`
	Fields         []string `json:"fields" doc:"the names of the details the contact corrected"`
}

// ProcessingStoppedData is the data of processing.stopped.
type ProcessingStoppedData struct {
	ContactID string `json:"contact_id"`
}

// RequestData is the data of request.created and request.done.
type RequestData struct {
	RequestID string `json:"request_id"`
	ContactID string `json:"contact_id,omitempty" doc:"the contact it is about; absent while the sender is not a known contact"`
	Kind      string `json:"kind" enum:"@request_kind"`
	Channel   string `json:"channel" enum:"@request_channel"`
	Status    string `json:"status" enum:"@request_status"`
}

// DeliverabilityChangedData is the data of deliverability.changed. The
// address itself is never given: a receiver that needs it fetches the
// contact.
type DeliverabilityChangedData struct {
	ContactID string `json:"contact_id"`
	From      string `json:"from" enum:"@deliverability"`
	To        string `json:"to" enum:"@deliverability"`
	Cause     string `json:"cause" enum:"hard_bounce,soft_bounces,blocklisted,unblocklisted" doc:"hard_bounce: a hard bounce; soft_bounces: the soft bounces reached the soft_bounce_limit setting; blocklisted, unblocklisted: the address was put on the blocklist or taken off it"`
}

// LegalHoldData is the data of legal_hold.set and legal_hold.lifted. The
// hold's reason, and the reason it was lifted, are operator text and stay
// out; GET /api/v1/contacts/{id}/holds has them. A hold that ends by its
// until date writes legal_hold.lifted too, with the cause expired and the
// actor system, so that every hold's end is an event.
type LegalHoldData struct {
	ContactID  string     `json:"contact_id"`
	HoldID     string     `json:"hold_id"`
	LegalBasis string     `json:"legal_basis" enum:"@hold_legal_basis"`
	Until      *time.Time `json:"until,omitempty" doc:"when the hold ends by itself; absent: until lifted"`
	Cause      string     `json:"cause,omitempty" enum:"lifted,expired" doc:"legal_hold.lifted only: lifted, by a person with a reason; expired, its until date passed (actor_kind system)"`
	ActorKind  string     `json:"actor_kind" enum:"user,contact,system,api_token"`
}

// ErasureHeldData is the data of erasure.held: an erasure a legal hold
// stopped part-way. It proceeds by itself once no hold is active, and
// then writes contact.erased.
type ErasureHeldData struct {
	ContactID  string `json:"contact_id"`
	HoldID     string `json:"hold_id" doc:"the active hold that keeps the rest (the one set first, when there are several)"`
	LegalBasis string `json:"legal_basis" enum:"@hold_legal_basis"`
	RequestID  string `json:"request_id,omitempty" doc:"the erasure request it was fulfilling, if any"`
	ActorKind  string `json:"actor_kind" enum:"user,contact,system,api_token"`
}

// ImportUndoneData is the data of import.undone: the undo of an import
// ended. Each contact it removed has its own contact.deleted (reason
// import_undone, with the import's id) before it.
type ImportUndoneData struct {
	ImportID  string `json:"import_id"`
	Removed   int64  `json:"removed" doc:"the contacts the undo removed: those the import created that nobody had changed since and no legal hold kept"`
	ActorKind string `json:"actor_kind" enum:"user,contact,system,api_token" doc:"who asked for the undo"`
}

// CampaignSentData is the data of campaign.sent.
type CampaignSentData struct {
	CampaignID string `json:"campaign_id"`
	Name       string `json:"name"`
	// Recipients counts the campaign's recipients by status (sent,
	// skipped, failed, ...).
	Recipients map[string]int64 `json:"recipients" doc:"the campaign's recipients by status, such as sent, skipped and failed"`
}
