// Package filter is the condition language: one way to select contacts by
// their profile, consents, opt-in status and list membership, used alike by
// contact lists, the preferences page, segments and workflows.
//
// A condition is parsed with expr-lang/expr, checked against a Schema (the
// allow-list of fields with their types) into a small tree of predicates,
// and then either evaluated on one contact in memory or compiled to
// parameterised SQL for SQLite or PostgreSQL. The two must always agree; a
// differential test holds them to it. docs/conditions.md is the user guide.
//
// The SQL is a WHERE fragment over the contacts table under the alias c,
// reading custom fields from c.fields (JSON) and consents from
// consent_current. No text from the condition is ever spliced into it: values
// and JSON keys are bound as parameters, and columns come from the Schema.
//
// Missing values: only a custom field can be missing (never set). Any
// comparison, in, contains, startsWith or endsWith on a missing value is
// false, != included, and ! turns false into true; field == nil is true
// exactly when the field is missing. In SQL this is two-valued logic: a NULL
// comparison is made false before ! can see it.
package filter

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Type is the type of a field or value in a condition.
type Type int

const (
	String Type = iota + 1
	Number
	Bool
	Time     // a moment: created_at, updated_at, now(), date("...")
	Date     // a custom date field: a day, compared as its midnight UTC
	Duration // duration("720h"); only in arithmetic with times
	List     // [ ... ]; only after in
	Null     // nil
)

func (t Type) String() string {
	return [...]string{"?", "string", "number", "boolean", "time", "date", "duration", "list", "nil"}[t]
}

// Field is one field a condition may use.
type Field struct {
	Name string
	Type Type
	// Column is the contacts column of a core field; empty for a custom
	// field, which lives under its name in the fields JSON.
	Column string
	// Values, when set, are the only values the field can have; comparing it
	// with anything else is an error (a likely typo).
	Values []string
	// Sensitive fields are encrypted: they can be compared for equality
	// through their blind index (==, != and in), and searched on their
	// masked value only (contains, startsWith, endsWith), when the schema
	// has a BlindIndex; otherwise they are refused.
	Sensitive bool
	// Presence makes a Bool field of a nullable Column: true when the
	// column holds a value (a time something happened), false when NULL.
	Presence bool
	// Event marks a fact of the event that triggered a workflow rule,
	// written event.NAME and read from Subject.Facts. Such a condition is evaluated in memory only; it has
	// no SQL.
	Event bool
}

// Lists resolves list names for inList(...). Campaign lists provide it; a
// Schema without it refuses inList.
type Lists interface {
	// ListID returns the id of the list with this name and whether it exists.
	ListID(name string) (string, bool)
	// MemberSQL returns a condition, over the contacts alias c, that holds
	// when c is in the list whose id is bound to the parameter param.
	MemberSQL(param string) string
}

// Schema is what a condition is checked against.
type Schema struct {
	Fields map[string]*Field
	// Purposes maps purpose names in lower case, and purpose ids, to ids.
	Purposes map[string]string
	Lists    Lists
	// BlindIndex computes the keyed index of a sensitive field's value;
	// nil when no keyset is configured.
	BlindIndex func(field, value string) string
	// EventFacts, keyed by their name without the "event." prefix, are
	// the facts a workflow rule's condition may read from its event
	// (event.purpose, event.state). Nil everywhere else: event.x is then
	// an error.
	EventFacts map[string]*Field
}

// Subject is one contact as the in-memory evaluation sees it.
type Subject struct {
	// Values holds core fields (strings, and created_at/updated_at as
	// time.Time) and custom fields (string, float64, bool, or a date as a
	// "2006-01-02" string); a custom field that was never set is absent.
	Values map[string]any
	// Consents maps purpose ids to "granted" or "withdrawn"; absent is "none".
	Consents map[string]string
	// Lists holds the ids of the lists the contact is in.
	Lists map[string]bool
	// Blind holds the blind index of each sensitive field that is set;
	// Values holds those fields' masked values.
	Blind map[string]string
	// Facts holds the facts of the event that set a workflow rule off,
	// under their names as conditions write them, "event.NAME"
	// (Field.Event); a fact the event lacks is absent. Kept apart from Values so that one
	// contact's values serve each of its events unchanged.
	Facts map[string]any
}

// Condition is a checked condition, ready to evaluate or compile.
type Condition struct {
	Source string
	root   pred
	lists  Lists
}

// ValueLookups returns the sensitive fields the condition compares with a
// value through their blind index, each once; such questions are logged
// like reveals.
func (c *Condition) ValueLookups() []string {
	var out []string
	c.eachLeaf(func(p pred) {
		if b, ok := p.(blindPred); ok && !slices.Contains(out, b.field) {
			out = append(out, b.field)
		}
	})
	return out
}

// eachLeaf calls fn with each predicate of the condition that is not an
// and, or or not of others.
func (c *Condition) eachLeaf(fn func(pred)) {
	var walk func(p pred)
	walk = func(p pred) {
		switch p := p.(type) {
		case andPred:
			walk(p.l)
			walk(p.r)
		case orPred:
			walk(p.l)
			walk(p.r)
		case notPred:
			walk(p.x)
		default:
			fn(p)
		}
	}
	walk(c.root)
}

// Needs says what of a contact a condition reads beyond its plain fields,
// so that a caller evaluating it in memory reads only that: consent states
// (consent(...)), list memberships (inList(...)), the masked values of
// sensitive fields.
type Needs struct{ Consents, Lists, Sensitive bool }

// Or is what n and m need together.
func (n Needs) Or(m Needs) Needs {
	return Needs{Consents: n.Consents || m.Consents, Lists: n.Lists || m.Lists, Sensitive: n.Sensitive || m.Sensitive}
}

// Needs returns what the condition reads beyond the contact's plain fields.
func (c *Condition) Needs() Needs {
	var n Needs
	c.eachLeaf(func(p pred) {
		var lhs operand
		switch p := p.(type) {
		case consentPred:
			n.Consents = true
		case listPred:
			n.Lists = true
		case blindPred:
			n.Sensitive = true
		case comparePred:
			lhs = p.lhs
		case memberPred:
			lhs = p.lhs
		case matchPred:
			lhs = p.lhs
		case presentPred:
			lhs = p.lhs
		case truthPred:
			lhs = p.lhs
		}
		if lhs.field != nil && lhs.field.Sensitive {
			n.Sensitive = true
		}
	})
	return n
}

// Error is a problem in a condition, at a position counted in characters
// from 1.
type Error struct {
	Position int
	Message  string
}

func (e *Error) Error() string { return fmt.Sprintf("position %d: %s", e.Position, e.Message) }

// MaxLength is the longest condition accepted, in bytes.
const MaxLength = 4000

// Compile parses and checks src against schema. now is the moment now()
// stands for; it is fixed at compile time, so the condition means the same
// in memory and in SQL. An empty condition is an error.
func Compile(src string, schema *Schema, now time.Time) (*Condition, error) {
	if len(src) > MaxLength {
		return nil, &Error{Position: 1, Message: fmt.Sprintf("a condition may be at most %d bytes long", MaxLength)}
	}
	if !utf8.ValidString(src) {
		return nil, &Error{Position: 1, Message: "the condition is not valid UTF-8 text"}
	}
	c := &checker{schema: schema, now: now.UTC().Truncate(time.Microsecond)}
	root, err := c.compile(src)
	if err != nil {
		return nil, err
	}
	return &Condition{Source: src, root: root, lists: schema.Lists}, nil
}
