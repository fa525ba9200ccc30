package workflow

import (
	"encoding/json"
	"slices"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/lists"
)

// fact is one top-level scalar key of an event type's data, which a rule's
// condition reads as event.NAME.
type fact struct {
	name   string
	typ    filter.Type
	values []string // the only values it can have, when they are few
}

// oneOf is f with the only values it can have: a condition comparing it
// with another value is refused as a likely typo.
func oneOf(f fact, values ...string) fact { f.values = values; return f }

func text(names ...string) []fact {
	out := make([]fact, len(names))
	for i, n := range names {
		out[i] = fact{name: n, typ: filter.String}
	}
	return out
}

var consentFacts = append(text("contact_id", "record_id", "purpose_id", "purpose", "legal_basis", "source_id", "source",
	"method", "actor_kind"), oneOf(fact{name: "state", typ: filter.String}, consent.StateGranted, consent.StateWithdrawn),
	fact{name: "text_version", typ: filter.Number})

var listFacts = append(text("contact_id", "list_id", "list", "source"),
	oneOf(fact{name: "state", typ: filter.String}, lists.Subscribed, lists.Unsubscribed))

var optInFacts = append(text("contact_id", "change_id", "method", "actor_kind"),
	oneOf(fact{name: "from", typ: filter.String}, contactstate.OptInStatuses...),
	oneOf(fact{name: "to", typ: filter.String}, contactstate.OptInStatuses...))

var requestFacts = text("contact_id", "request_id", "kind", "channel", "status")

// eventFacts are the facts of each event type a rule may be triggered by:
// the top-level scalar keys of the type's data (docs/events.md). Arrays
// and objects (the names of the fields that changed, say) are not facts.
// It mirrors the data shapes of package events, from which it is to be
// derived once they are declared there as types; campaign.sent is
// missing because it is about no contact, so no rule could act on it.
var eventFacts = map[string][]fact{
	events.ContactCreated:       text("contact_id", "actor_kind", "method"),
	events.ContactUpdated:       text("contact_id"),
	events.ContactErased:        text("contact_id", "actor_kind", "request_id"),
	events.ContactDeleted:       text("contact_id", "actor_kind"),
	events.ConsentGranted:       consentFacts,
	events.ConsentWithdrawn:     consentFacts,
	events.OptInChanged:         optInFacts,
	events.DoubleOptInConfirmed: text("contact_id", "change_id", "method"),
	events.ListSubscribed:       listFacts,
	events.ListUnsubscribed:     listFacts,
	events.PreferencesConfirmed: append(text("contact_id", "change_id"),
		fact{name: "opt_out", typ: filter.Bool}, fact{name: "stop_processing", typ: filter.Bool}, fact{name: "erasure", typ: filter.Bool}),
	events.ProcessingStopped: text("contact_id"),
	events.RequestCreated:    requestFacts,
	events.RequestDone:       requestFacts,
}

// Triggers returns the event types a rule may be triggered by, in the
// order of events.Types.
func Triggers() []string {
	var out []string
	for _, t := range events.Types {
		if _, ok := eventFacts[t.Name]; ok {
			out = append(out, t.Name)
		}
	}
	return out
}

// FactNames returns the names of the facts of event type typ (without the
// "event." prefix), sorted; none for a type no rule can be triggered by.
func FactNames(typ string) []string {
	var out []string
	for _, f := range eventFacts[typ] {
		out = append(out, f.name)
	}
	slices.Sort(out)
	return out
}

// factFields are the facts of typ as the condition language's schema
// wants them (filter.Schema.EventFacts).
func factFields(typ string) map[string]*filter.Field {
	out := map[string]*filter.Field{}
	for _, f := range eventFacts[typ] {
		out[f.name] = &filter.Field{Name: "event." + f.name, Type: f.typ, Values: f.values, Event: true}
	}
	return out
}

// factValues reads the facts of an event of type typ from its data into
// the subject's values, under "event.NAME". A fact missing from the data
// is left out, and one of another type than declared counts as missing
// (filter.Subject): a condition on it is then false, as on a custom field
// that was never set.
func factValues(typ string, data json.RawMessage, into map[string]any) {
	var raw map[string]any
	if json.Unmarshal(data, &raw) != nil {
		return
	}
	for _, f := range eventFacts[typ] {
		if v, ok := raw[f.name]; ok {
			into["event."+f.name] = v
		}
	}
}
