package contact

import "github.com/consentry/consentry/internal/errs"

// CoreField is a field every contact has, with what checks it, what a form
// asks for it with and how a posted value reaches an Input. Pages, webforms,
// the API's checks and custom-field names all read this one table.
type CoreField struct {
	Name  string
	Label string // in the admin pages
	// MaxLength is the longest value accepted, in characters.
	MaxLength int
	// InputType and Autocomplete are the HTML input's attributes.
	InputType    string
	Autocomplete string
	// OnWebform says whether a webform may ask for the field.
	OnWebform bool
	field     func(*Contact) *string
	input     func(*Input) **string
}

// CoreFields are the editable core fields, in the order forms show them.
var CoreFields = []CoreField{
	{"email", "Email address", 254, "email", "email", true,
		func(c *Contact) *string { return &c.Email }, func(in *Input) **string { return &in.Email }},
	{"first_name", "First name", 200, "text", "given-name", true,
		func(c *Contact) *string { return &c.FirstName }, func(in *Input) **string { return &in.FirstName }},
	{"last_name", "Last name", 200, "text", "family-name", true,
		func(c *Contact) *string { return &c.LastName }, func(in *Input) **string { return &in.LastName }},
	{"phone", "Phone", 40, "tel", "tel", true,
		func(c *Contact) *string { return &c.Phone }, func(in *Input) **string { return &in.Phone }},
	{"country", "Country (ISO code)", 2, "text", "country", true,
		func(c *Contact) *string { return &c.Country }, func(in *Input) **string { return &in.Country }},
	{"region", "Region", 100, "text", "address-level1", true,
		func(c *Contact) *string { return &c.Region }, func(in *Input) **string { return &in.Region }},
	{"language", "Language (en, sv, nl, ...)", 35, "text", "language", false,
		func(c *Contact) *string { return &c.Language }, func(in *Input) **string { return &in.Language }},
	{"stage", "Stage", 100, "text", "", false,
		func(c *Contact) *string { return &c.Stage }, func(in *Input) **string { return &in.Stage }},
	{"owner", "Owner", 200, "text", "", false,
		func(c *Contact) *string { return &c.Owner }, func(in *Input) **string { return &in.Owner }},
}

// Value is the field's value on c.
func (f CoreField) Value(c *Contact) string { return *f.field(c) }

// Set makes in set the field to v.
func (f CoreField) Set(in *Input, v string) { *f.input(in) = &v }

// LookupCoreField returns the core field so named, and false when there is
// none.
func LookupCoreField(name string) (CoreField, bool) {
	for _, f := range CoreFields {
		if f.Name == name {
			return f, true
		}
	}
	return CoreField{}, false
}

// WebformFields lists the names of the core fields a webform may ask for.
func WebformFields() []string {
	var out []string
	for _, f := range CoreFields {
		if f.OnWebform {
			out = append(out, f.Name)
		}
	}
	return out
}

// ReservedFieldNames are the names a custom field cannot take: the core
// fields and the contact's other attributes, as the API and conditions
// name them.
func ReservedFieldNames() []string {
	out := []string{"id", "kind", "opt_in_status", "deliverability", "processing_stopped", "erasure_requested",
		"created_at", "updated_at", "fields", "ledger_ref"}
	for _, f := range CoreFields {
		out = append(out, f.Name)
	}
	return out
}

// Problems checks each field that in sets on its own, against defs, and
// returns the error of every field that fails rather than the first, so
// that a form can show them all at once. None fails: nil. The kind and
// the fields in is silent about are not checked.
func Problems(in Input, defs map[string]*FieldDefinition) []*errs.Error {
	var out []*errs.Error
	check := func(one Input) {
		if _, err := one.apply(&Contact{Fields: map[string]any{}}, defs); err != nil {
			if e := errs.As(err); e != nil {
				out = append(out, e)
			}
		}
	}
	for _, f := range CoreFields {
		if v := *f.input(&in); v != nil {
			var one Input
			*f.input(&one) = v
			check(one)
		}
	}
	for name, v := range in.Fields {
		check(Input{Fields: map[string]any{name: v}})
	}
	return out
}
