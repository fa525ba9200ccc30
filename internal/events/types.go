package events

// Event types. The names are part of the public interface: receivers
// subscribe to them, and they never change meaning.
const (
	ContactCreated       = "contact.created"
	ContactUpdated       = "contact.updated"
	ContactErased        = "contact.erased"
	ContactDeleted       = "contact.deleted"
	ConsentGranted       = "consent.granted"
	ConsentWithdrawn     = "consent.withdrawn"
	OptInChanged         = "opt_in.changed"
	DoubleOptInConfirmed = "double_opt_in.confirmed"
	ListSubscribed       = "list.subscribed"
	ListUnsubscribed     = "list.unsubscribed"
	PreferencesConfirmed = "preferences.confirmed"
	ProcessingStopped    = "processing.stopped"
	RequestCreated       = "request.created"
	RequestDone          = "request.done"
	CampaignSent         = "campaign.sent"
)

// Type describes one event type: its name, the version of its data's shape
// and what it means, for the documentation and the OpenAPI document.
type Type struct {
	Name        string
	Version     int
	Description string
}

// Types lists every event type, in the order the documentation gives them.
var Types = []Type{
	{ContactCreated, 1, "A contact was created, through the API, a webform, an import or the admin pages."},
	{ContactUpdated, 1, "A contact's fields changed; the data names the fields, not their values."},
	{ContactErased, 1, "The contact's personal data was erased; a remainder that identifies no one is kept."},
	{ContactDeleted, 1, "The contact and their history were deleted."},
	{ConsentGranted, 1, "A consent record granting a purpose was written."},
	{ConsentWithdrawn, 1, "A consent record withdrawing a purpose was written."},
	{OptInChanged, 1, "The contact's email opt-in status changed."},
	{DoubleOptInConfirmed, 1, "The contact confirmed their address by the link in a double opt-in email."},
	{ListSubscribed, 1, "The contact was subscribed to a list."},
	{ListUnsubscribed, 1, "The contact was unsubscribed from a list."},
	{PreferencesConfirmed, 1, "The contact confirmed a change made on their preferences page."},
	{ProcessingStopped, 1, "The contact asked to stop processing; their record is locked."},
	{RequestCreated, 1, "A data subject request was received."},
	{RequestDone, 1, "A data subject request was completed or refused."},
	{CampaignSent, 1, "A campaign finished sending."},
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
