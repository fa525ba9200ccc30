// Package workflow runs rules on events (R21): when an event of a rule's
// trigger type happens to a contact and the rule's condition holds on the
// contact as it is then, with the event's own facts (event.purpose ==
// "Share with partners" && event.state == "granted"), the rule's actions
// run: email the contact, email a partner the contact's details, call a
// webhook, change lists or a field, send the double opt-in email, notify
// the operator. A rule may wait before acting ("2 days after"), and then
// checks its condition again first.
//
// The Runner reads events as the consumer "workflows" (package events),
// decides outside the writer, and writes in one transaction the move past
// the events, the actions (each through the owner package's Tx function)
// and the log of every run. The emails go through the outbox and its send
// gate, so an opted-out or stopped contact gets nothing (R2). Actions that
// write events count one more step of depth; an event MaxDepth steps deep
// triggers nothing, so a rule cannot trigger itself without bound.
package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/filter"
)

// Limits of a rule.
const (
	MaxActions      = 10
	MaxDelayMinutes = 365 * 24 * 60
	maxName         = 200
	// MaxDefinitionBytes is the longest rule definition accepted.
	MaxDefinitionBytes = 256 << 10
)

// Rule is a saved workflow rule.
type Rule struct {
	ID string `json:"id"`
	Definition
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Definition is what a rule is made of, as the API sends it: it round-trips
// through JSON (ParseDefinition), and a saved rule's Definition is the
// checked form (a list named by its id, a condition trimmed).
type Definition struct {
	Name string `json:"name" required:"true"`
	// Trigger is the event type that sets the rule off (Triggers).
	Trigger string `json:"trigger" required:"true" doc:"an event type about a contact, such as consent.granted"`
	// Condition, in the condition language (docs/conditions.md), is
	// checked on the contact after the change, with the event's facts as
	// event.NAME; empty: always.
	Condition string   `json:"condition" doc:"a condition on the contact after the change, with the event's facts as event.NAME; empty: always"`
	Actions   []Action `json:"actions" required:"true" doc:"1 to 10 actions, run in order; the first that fails ends the run"`
	// DelayMinutes makes the rule act that long after the event, if its
	// condition still holds then.
	DelayMinutes int `json:"delay_minutes" doc:"0 to 525600 (365 days): act this long after the event, if the condition still holds then"`
	// Enabled rules run; nil on create means true.
	Enabled *bool `json:"enabled,omitempty" doc:"default true"`
}

// enabled reports whether d's rule runs.
func (d *Definition) enabled() bool { return d.Enabled == nil || *d.Enabled }

// Delay is the rule's delay as a duration.
func (d *Definition) Delay() time.Duration { return time.Duration(d.DelayMinutes) * time.Minute }

// ParseDefinition decodes a rule definition from JSON, refusing unknown
// keys, and checks its shape (Check does the rest against the installation:
// the condition, lists, fields). An error names the field it is about
// ("actions[2].to"), or "definition" for text that is no JSON object.
func ParseDefinition(data []byte) (Definition, error) {
	if len(data) > MaxDefinitionBytes {
		return Definition{}, errs.Invalid("definition", "must be at most %d bytes", MaxDefinitionBytes)
	}
	// The actions are decoded one by one, so that an error in one names
	// its place ("actions[2].fields"), which the decoder's own path leaves
	// out.
	type shape Definition
	var raw struct {
		shape
		Actions []json.RawMessage `json:"actions"`
	}
	if err := strictDecode(data, &raw, ""); err != nil {
		return Definition{}, err
	}
	d := Definition(raw.shape)
	d.Actions = make([]Action, len(raw.Actions))
	for i, a := range raw.Actions {
		if err := strictDecode(a, &d.Actions[i], fmt.Sprintf("actions[%d]", i)); err != nil {
			return Definition{}, err
		}
	}
	return d, d.checkShape()
}

// strictDecode decodes one JSON value from data into v, refusing unknown
// keys and anything after the value. Errors name the field under at
// ("actions[2]"), or at itself, or "definition" at the top.
func strictDecode(data []byte, v any, at string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	err := dec.Decode(v)
	if err == nil {
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return errs.Invalid(orTop(at), "has more after the JSON object")
		}
		return nil
	}
	under := func(f string) string {
		f = strings.TrimPrefix(f, "shape.") // the embedded Definition of ParseDefinition
		if at == "" {
			return f
		}
		return at + "." + f
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return errs.Invalid(under(te.Field), "must be a %s", readableType(te.Type.String()))
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, `json: unknown field "`); ok {
		if name := strings.TrimSuffix(rest, `"`); name != "" {
			return errs.Invalid(under(name), "is not a field of a rule definition")
		}
		return errs.Invalid(orTop(at), "has a key with no name")
	}
	return errs.Invalid(orTop(at), "is not a valid JSON object: %s", strings.TrimPrefix(msg, "json: "))
}

func orTop(at string) string {
	if at == "" {
		return "definition"
	}
	return at
}

func readableType(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "list"
	case strings.Contains(t, "int"):
		return "whole number"
	case t == "bool", t == "*bool":
		return "true or false"
	case t == "string":
		return "string"
	}
	return "JSON object"
}

// checkShape checks what needs nothing from the installation: lengths,
// counts, the trigger and each action's fields.
func (d *Definition) checkShape() error {
	if err := errs.TrimLine("name", &d.Name, maxName); err != nil {
		return err
	}
	if d.Name == "" {
		return errs.Required("name")
	}
	if err := checkTrigger(d.Trigger); err != nil {
		return err
	}
	d.Condition = strings.TrimSpace(d.Condition)
	if len(d.Condition) > filter.MaxLength {
		return errs.Invalid("condition", "must be at most %d bytes", filter.MaxLength)
	}
	if d.DelayMinutes < 0 || d.DelayMinutes > MaxDelayMinutes {
		return errs.Invalid("delay_minutes", "must be between 0 and %d (365 days)", MaxDelayMinutes)
	}
	switch {
	case len(d.Actions) == 0:
		return errs.Invalid("actions", "needs at least one action")
	case len(d.Actions) > MaxActions:
		return errs.Invalid("actions", "may hold at most %d actions", MaxActions)
	}
	for i := range d.Actions {
		if err := d.Actions[i].checkShape(fmt.Sprintf("actions[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func checkTrigger(t string) error {
	switch {
	case t == "":
		return errs.Required("trigger")
	case !events.Known(t):
		return errs.Invalid("trigger", "is not an event type; the types are %s", strings.Join(Triggers(), ", "))
	case !slices.Contains(Triggers(), t):
		return errs.Invalid("trigger", "is about no contact, so no rule can act on it")
	}
	return nil
}

// Env is what a definition is checked against besides its shape: the
// installation's fields, purposes and lists as they are when the rule is
// saved.
type Env struct {
	// Schema is the contact condition schema for a caller who may not
	// reveal sensitive values (contact.Service.ConditionSchemaFor): a
	// rule runs unattended, so it compares no sensitive value.
	Schema *filter.Schema
	Now    time.Time
	// ListID resolves a list's id or name to its id.
	ListID func(idOrName string) (string, bool)
	// Fields are the contact's fields a partner email may carry, by name.
	Fields map[string]FieldInfo
	// SetValue checks a set_field action's field and value and returns
	// the value as it will be stored (contact.CheckSetValue), with errors
	// on "field" or "value".
	SetValue func(field string, value any) (any, error)
	// Endpoint reports whether a webhook endpoint exists; nil leaves
	// endpoint ids unchecked (webhooks not set up).
	Endpoint func(id string) bool
}

// FieldInfo is one contact field as a partner email shows it.
type FieldInfo struct {
	Label     string
	Sensitive bool // shown masked
}

// Check checks d in full, as it will be saved: its shape, then its
// condition against the contact schema and the trigger's event facts (an
// error on "condition" with the position), and each action against env.
// It normalises d on the way (trimmed text, lists by id).
func (d *Definition) Check(env *Env) error {
	if err := d.checkShape(); err != nil {
		return err
	}
	if _, err := compileCondition(d.Condition, d.Trigger, env.Schema, env.Now); err != nil {
		return err
	}
	for i := range d.Actions {
		if err := d.Actions[i].check(fmt.Sprintf("actions[%d]", i), env); err != nil {
			return err
		}
	}
	return nil
}

// compileCondition compiles a rule's condition for an event of type
// trigger; nil for an empty condition (always). An invalid one is an
// errs.Error on "condition" that carries the position.
func compileCondition(src, trigger string, schema *filter.Schema, now time.Time) (*filter.Condition, error) {
	if src == "" {
		return nil, nil
	}
	sc := *schema
	sc.BlindIndex = nil
	sc.EventFacts = factFields(trigger)
	cond, err := filter.Compile(src, &sc, now)
	var fe *filter.Error
	if errors.As(err, &fe) {
		return nil, &errs.Error{Kind: errs.KindInvalid, Code: "invalid_condition", Field: "condition", Message: fe.Error(), Position: fe.Position}
	}
	return cond, err
}
