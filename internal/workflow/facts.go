package workflow

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/holds"
	"github.com/consentry/consentry/internal/requests"
)

// fact is one top-level scalar key of an event type's data, which a rule's
// condition reads as event.NAME.
type fact struct {
	name      string
	typ       filter.Type
	values    []string // the only values it can have, when they are few
	index     []int    // of the field in the data's Go type
	omitempty bool     // its zero value is not written, so reads as missing
}

// namedValues are the vocabularies the events' enum tags name (@name)
// whose values a condition may be held to.
var namedValues = map[string][]string{
	"opt_in_status":    contactstate.OptInStatuses,
	"deliverability":   contactstate.Deliverabilities,
	"legal_basis":      consent.LegalBases,
	"hold_legal_basis": holds.Bases,
	"request_kind":     requests.Kinds,
	"request_channel":  requests.Channels,
	"request_status":   requests.Statuses,
}

// factsOf reads the facts of an event type from its data's Go type, so
// that the facts are what docs/events.md and the OpenAPI document
// describe: each string, number or boolean field under its JSON name,
// with the values its enum tag gives. Lists, times and maps are not facts.
func factsOf(data any) []fact {
	t := reflect.TypeOf(data)
	var out []fact
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		var typ filter.Type
		switch f.Type.Kind() {
		case reflect.String:
			typ = filter.String
		case reflect.Int, reflect.Int64, reflect.Float64:
			typ = filter.Number
		case reflect.Bool:
			typ = filter.Bool
		default:
			continue
		}
		x := fact{name: name, typ: typ, index: f.Index, omitempty: slices.Contains(strings.Split(opts, ","), "omitempty")}
		if enum := f.Tag.Get("enum"); enum != "" {
			if key, named := strings.CutPrefix(enum, "@"); named {
				x.values = namedValues[key]
			} else {
				x.values = strings.Split(enum, ",")
			}
		}
		out = append(out, x)
	}
	return out
}

// eventFacts are the facts of each event type a rule may be triggered by:
// every type whose data names a contact (campaign.sent is about none, so
// no rule could act on it).
var eventFacts = func() map[string][]fact {
	out := map[string][]fact{}
	for _, t := range events.Types {
		facts := factsOf(t.Data)
		if slices.ContainsFunc(facts, func(f fact) bool { return f.name == "contact_id" }) {
			out[t.Name] = facts
			dataTypes[t.Name] = reflect.TypeOf(t.Data)
		}
	}
	return out
}()

// dataTypes are the Go types of the data of the event types in
// eventFacts, which factValues decodes into.
var dataTypes = map[string]reflect.Type{}

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

// factValues reads the facts of an event of type typ from its data, under
// "event.NAME" (filter.Subject.Facts). A fact the data leaves out (an
// omitempty field at its zero value) is absent: a condition on it is then
// false, as on a custom field that was never set. Data that does not
// decode into its type gives no facts; Emit writes only data that does.
//
// The data is decoded into its Go type, which costs a good deal less than
// into a map when a thousand events are read a second.
func factValues(typ string, data json.RawMessage) map[string]any {
	t := dataTypes[typ]
	if t == nil {
		return nil
	}
	v := reflect.New(t)
	if json.Unmarshal(data, v.Interface()) != nil {
		return nil
	}
	v = v.Elem()
	out := make(map[string]any, len(eventFacts[typ]))
	for _, f := range eventFacts[typ] {
		fv := v.FieldByIndex(f.index)
		if f.omitempty && fv.IsZero() {
			continue
		}
		switch fv.Kind() {
		case reflect.String:
			out["event."+f.name] = fv.String()
		case reflect.Int, reflect.Int64:
			out["event."+f.name] = float64(fv.Int())
		case reflect.Float64:
			out["event."+f.name] = fv.Float()
		case reflect.Bool:
			out["event."+f.name] = fv.Bool()
		}
	}
	return out
}
