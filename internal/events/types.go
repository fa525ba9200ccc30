package events

// Event types. The names are part of the public interface: receivers
// subscribe to them, and they never change meaning.
const (
	ContactCreated        = "contact.created"
	ContactUpdated        = "contact.updated"
	ContactErased         = "contact.erased"
	ContactDeleted        = "contact.deleted"
	ConsentGranted        = "consent.granted"
	ConsentWithdrawn      = "consent.withdrawn"
	OptInChanged          = "opt_in.changed"
	DoubleOptInConfirmed  = "double_opt_in.confirmed"
	ListSubscribed        = "list.subscribed"
	ListUnsubscribed      = "list.unsubscribed"
	PreferencesConfirmed  = "preferences.confirmed"
	ProcessingStopped     = "processing.stopped"
	RequestCreated        = "request.created"
	RequestDone           = "request.done"
	DeliverabilityChanged = "deliverability.changed"
	LegalHoldSet          = "legal_hold.set"
	LegalHoldLifted       = "legal_hold.lifted"
	ErasureHeld           = "erasure.held"
	ImportUndone          = "import.undone"
	CampaignSent          = "campaign.sent"
)

// Type describes one event type: its name, the version of its data's shape,
// what it means, and the Go type of its data (a zero value), from which the
// OpenAPI document describes it. Emit refuses data of another type.
type Type struct {
	Name        string
	Version     int
	Description string
	Data        any
}

// Types lists every event type, in the order the documentation gives them.
var Types = []Type{
	{ContactCreated, 1, "A contact was created, through the API, a webform, an import or the admin pages.", ContactCreatedData{}},
	{ContactUpdated, 1, "A contact's fields changed; the data names the fields, not their values.", ContactUpdatedData{}},
	{ContactErased, 1, "The contact's personal data was erased; a remainder that identifies no one is kept.", ContactErasedData{}},
	{ContactDeleted, 1, "The contact and their history were deleted.", ContactDeletedData{}},
	{ConsentGranted, 1, "A consent record granting a purpose was written.", ConsentData{}},
	{ConsentWithdrawn, 1, "A consent record withdrawing a purpose was written.", ConsentData{}},
	{OptInChanged, 1, "The contact's email opt-in status changed.", OptInChangedData{}},
	{DoubleOptInConfirmed, 1, "The contact confirmed their address by the link in a double opt-in email.", DoubleOptInConfirmedData{}},
	{ListSubscribed, 1, "The contact was subscribed to a list.", ListData{}},
	{ListUnsubscribed, 1, "The contact was unsubscribed from a list.", ListData{}},
	{PreferencesConfirmed, 1, "The contact confirmed a change made on their preferences page.", PreferencesConfirmedData{}},
	{ProcessingStopped, 1, "The contact asked to stop processing; their record is locked.", ProcessingStoppedData{}},
	{RequestCreated, 1, "A data subject request was received.", RequestData{}},
	{RequestDone, 1, "A data subject request was completed or refused.", RequestData{}},
	{DeliverabilityChanged, 1, "The contact's address was put on or taken off the blocklist, or marked bounced.", DeliverabilityChangedData{}},
	{LegalHoldSet, 1, "A legal hold was set on the contact.", LegalHoldData{}},
	{LegalHoldLifted, 1, "A legal hold on the contact ended: it was lifted, or its until date passed (cause).", LegalHoldData{}},
	{ErasureHeld, 1, "An erasure of the contact was held back by a legal hold; what the hold does not need was erased.", ErasureHeldData{}},
	{ImportUndone, 1, "The undo of an import ended: the contacts it created that nobody had changed since were removed.", ImportUndoneData{}},
	{CampaignSent, 1, "A campaign finished sending.", CampaignSentData{}},
}

var typeByName = func() map[string]Type {
	m := make(map[string]Type, len(Types))
	for _, t := range Types {
		m[t.Name] = t
	}
	return m
}()

// Known reports whether name is an event type.
func Known(name string) bool { _, ok := typeByName[name]; return ok }
