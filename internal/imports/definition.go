package imports

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/lists"
)

// Definition is how an import reads its file and on what account it
// writes: which column holds what, where the contacts came from, and for
// each purpose the legal basis and how the consent was collected (R24).
// It is what the API takes as JSON and what a saved mapping keeps.
type Definition struct {
	// Source is where the file's contacts came from: the name or id of
	// an active source. Required.
	Source string `json:"source"`
	// Duplicates is what a row does to a contact that has its address:
	// skip (the default), fill (only empty fields) or overwrite.
	Duplicates string `json:"duplicates,omitempty" enum:"skip,fill,overwrite"`
	// Columns map file columns to contact fields: a core field (email,
	// first_name, ...) or a custom field's name. One must be email.
	Columns []Column `json:"columns"`
	// OptIn sets the opt-in status from a column or to one value for
	// every row: none, single_opt_in_user or opt_out_user (R5, R6).
	OptIn *OptIn `json:"opt_in_status,omitempty"`
	// Consents are the purposes the file says something about.
	Consents []Consent `json:"consents,omitempty"`
	// Lists the rows join.
	Lists []List `json:"lists,omitempty"`
}

// Column maps one file column to one field.
type Column struct {
	Column string `json:"column"`
	Field  string `json:"field"`
}

// OptIn is where the opt-in status comes from: Column, or Value for every
// row.
type OptIn struct {
	Column string `json:"column,omitempty"`
	Value  string `json:"value,omitempty"`
}

// Consent says what the file records about one purpose, and its
// provenance: on what legal basis, when it was collected (a date column,
// or one date for every row) and what the person was shown (a consent
// text version of the purpose, or a description of the notice).
type Consent struct {
	Purpose string `json:"purpose"`
	// Column holds each row's answer (yes or no, granted or withdrawn;
	// see ParseAnswer); an empty cell records nothing. Without a column,
	// State is recorded for every row.
	Column string `json:"column,omitempty"`
	State  string `json:"state,omitempty" enum:"granted,withdrawn"`
	// LegalBasis is required: the file's own account of why the data may
	// be used for the purpose.
	LegalBasis string `json:"legal_basis"`
	// CollectedAtColumn, or CollectedAt for every row (a date,
	// 2006-01-02), is when the consent was collected.
	CollectedAtColumn string `json:"collected_at_column,omitempty"`
	CollectedAt       string `json:"collected_at,omitempty"`
	// TextVersion is the version of the purpose's consent text the person
	// was shown; Notice describes it when it was not one of ours (a paper
	// form, a partner's site). One of them is required.
	TextVersion int    `json:"text_version,omitempty"`
	Notice      string `json:"notice,omitempty"`
}

// List is a list the rows join: every row, or those whose Column says yes.
// A contact who left the list before is not put back (lists.JoinLater).
type List struct {
	List   string `json:"list"`
	Column string `json:"column,omitempty"`
}

// MaxNotice is the longest notice description accepted, in characters.
const MaxNotice = 2000

// ParseDefinition reads a definition from JSON, refusing unknown keys so
// that a misspelt key is not silently ignored.
func ParseDefinition(data []byte) (Definition, error) {
	var d Definition
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, errs.Invalid("definition", "is not a valid import definition: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return d, nil
}

// resolved is a definition checked against a file's header and the
// installation's fields, purposes, sources and lists, with each column by
// its index.
type resolved struct {
	def      Definition
	source   *consent.Source
	defs     map[string]*contact.FieldDefinition
	fields   []fieldColumn
	email    int
	optIn    int // column of the opt-in status; -1: Definition.OptIn.Value or none
	consents []consentColumn
	lists    []listColumn
}

type fieldColumn struct {
	index int
	field string
	core  *contact.CoreField // nil: a custom field
}

type consentColumn struct {
	Consent
	purpose   *consent.Purpose
	index     int // -1: State for every row
	dateIndex int // -1: collectedAt for every row
	collected time.Time
}

type listColumn struct {
	list  *lists.List
	index int // -1: every row
}

// columnsNamed returns every column d names, as the header of a file
// that has them all, for checking d without a file.
func (d Definition) columnsNamed() []string {
	var out []string
	add := func(c string) {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	for _, c := range d.Columns {
		add(c.Column)
	}
	if d.OptIn != nil {
		add(d.OptIn.Column)
	}
	for _, c := range d.Consents {
		add(c.Column)
		add(c.CollectedAtColumn)
	}
	for _, l := range d.Lists {
		add(l.Column)
	}
	return out
}

// check resolves d against header, or refuses it with the field at fault
// (source, duplicates, columns[2].field, consents[0].legal_basis, ...) and
// why. Nothing is read from the file.
func (s *Service) check(ctx context.Context, d Definition, header []string) (*resolved, error) {
	r := &resolved{def: d, email: -1, optIn: -1}
	col := func(field, name string) (int, error) {
		i := slices.Index(header, strings.TrimSpace(name))
		if i < 0 {
			return -1, errs.Invalid(field, "the file has no column %q; its columns are %s", name, quoteAll(header))
		}
		return i, nil
	}
	if strings.TrimSpace(d.Source) == "" {
		return nil, errs.Invalid("source", "is required: say where the file's contacts came from (R24)")
	}
	src, err := s.Consent.ActiveSource(ctx, d.Source)
	if err != nil {
		return nil, errs.WithField(err, errs.Field("source"))
	}
	r.source = src
	switch d.Duplicates {
	case "":
		r.def.Duplicates = contact.DuplicateSkip
	case contact.DuplicateSkip, contact.DuplicateFill, contact.DuplicateOverwrite:
	default:
		return nil, errs.Invalid("duplicates", "must be one of %s", strings.Join(contact.DuplicatePolicies, ", "))
	}
	if r.defs, err = s.Contacts.FieldMap(ctx); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, c := range d.Columns {
		at := fmt.Sprintf("columns[%d]", i)
		idx, err := col(at+".column", c.Column)
		if err != nil {
			return nil, err
		}
		fc := fieldColumn{index: idx, field: c.Field}
		if core, ok := contact.LookupCoreField(c.Field); ok {
			fc.core = &core
		} else if r.defs[c.Field] == nil {
			return nil, errs.Invalid(at+".field", "%q is neither a core field (%s) nor a defined custom field", c.Field, coreNames())
		}
		if seen[c.Field] {
			return nil, errs.Invalid(at+".field", "%s is mapped from two columns", c.Field)
		}
		seen[c.Field] = true
		if c.Field == "email" {
			r.email = idx
		}
		r.fields = append(r.fields, fc)
	}
	if r.email < 0 {
		return nil, errs.Invalid("columns", "no column is mapped to email; every row needs an address")
	}
	if o := d.OptIn; o != nil {
		switch {
		case o.Column != "" && o.Value != "":
			return nil, errs.Invalid("opt_in_status", "give a column or a value, not both")
		case o.Column != "":
			if r.optIn, err = col("opt_in_status.column", o.Column); err != nil {
				return nil, err
			}
		default:
			if _, err := parseOptIn(o.Value); err != nil || o.Value == "" {
				return nil, errs.Invalid("opt_in_status.value", "must be one of %s", strings.Join(importOptIns, ", "))
			}
		}
	}
	purposes := map[string]bool{}
	for i, c := range d.Consents {
		cc, err := s.checkConsent(ctx, fmt.Sprintf("consents[%d]", i), c, col)
		if err != nil {
			return nil, err
		}
		if purposes[cc.purpose.ID] {
			return nil, errs.Invalid(fmt.Sprintf("consents[%d].purpose", i), "purpose %q is given twice", cc.purpose.Name)
		}
		purposes[cc.purpose.ID] = true
		r.consents = append(r.consents, cc)
	}
	for i, l := range d.Lists {
		at := fmt.Sprintf("lists[%d]", i)
		found, err := s.Lists.Get(ctx, l.List)
		if err != nil {
			return nil, errs.WithField(err, errs.Field(at+".list"))
		}
		lc := listColumn{list: found, index: -1}
		if l.Column != "" {
			if lc.index, err = col(at+".column", l.Column); err != nil {
				return nil, err
			}
		}
		r.lists = append(r.lists, lc)
	}
	return r, nil
}

// checkConsent resolves one purpose's part of a definition, refusing one
// without its provenance.
func (s *Service) checkConsent(ctx context.Context, at string, c Consent, col func(string, string) (int, error)) (consentColumn, error) {
	cc := consentColumn{Consent: c, index: -1, dateIndex: -1}
	if strings.TrimSpace(c.Purpose) == "" {
		return cc, errs.Invalid(at+".purpose", "is required")
	}
	p, err := s.Consent.Purpose(ctx, c.Purpose)
	if err != nil {
		return cc, errs.WithField(err, errs.Field(at+".purpose"))
	}
	cc.purpose = p
	switch {
	case c.Column != "" && c.State != "":
		return cc, errs.Invalid(at+".state", "give a column or a state, not both")
	case c.Column != "":
		if cc.index, err = col(at+".column", c.Column); err != nil {
			return cc, err
		}
	case c.State != consent.StateGranted && c.State != consent.StateWithdrawn:
		return cc, errs.Invalid(at+".state", "give a column with each row's answer, or a state for every row: granted or withdrawn")
	}
	if c.LegalBasis == "" {
		return cc, errs.Invalid(at+".legal_basis", "is required: on what legal basis the file's contacts may be used for %q (R24)", p.Name)
	}
	if !slices.Contains(consent.LegalBases, c.LegalBasis) {
		return cc, errs.Invalid(at+".legal_basis", "must be one of %s", strings.Join(consent.LegalBases, ", "))
	}
	if !p.AllowsLegalBasis(c.LegalBasis) {
		return cc, errs.Invalid(at+".legal_basis", "purpose %q rests on the legal basis %s, so its consents are imported on that basis, not %s",
			p.Name, p.LegalBasis, c.LegalBasis)
	}
	switch {
	case c.CollectedAtColumn != "" && c.CollectedAt != "":
		return cc, errs.Invalid(at+".collected_at", "give a date column or a date, not both")
	case c.CollectedAtColumn != "":
		if cc.dateIndex, err = col(at+".collected_at_column", c.CollectedAtColumn); err != nil {
			return cc, err
		}
	case c.CollectedAt == "":
		return cc, errs.Invalid(at+".collected_at", "is required: when the consents were collected, a date column or one date (R24)")
	default:
		t, err := ParseDate(c.CollectedAt)
		if err != nil {
			return cc, errs.Invalid(at+".collected_at", "%s", err)
		}
		if why := implausibleCollection(t, s.now()); why != "" {
			return cc, errs.Invalid(at+".collected_at", "%s %s", c.CollectedAt, why)
		}
		cc.collected = t
	}
	switch {
	case c.TextVersion == 0 && strings.TrimSpace(c.Notice) == "":
		return cc, errs.Invalid(at+".notice", "is required: the consent text version shown, or a description of the notice (R24)")
	case c.TextVersion < 0 || c.TextVersion > p.TextVersion:
		return cc, errs.Invalid(at+".text_version", "purpose %q has consent text versions 1 to %d", p.Name, p.TextVersion)
	case len([]rune(c.Notice)) > MaxNotice:
		return cc, errs.Invalid(at+".notice", "must be at most %d characters", MaxNotice)
	}
	if err := errs.PlainText(at+".notice", c.Notice); err != nil {
		return cc, err
	}
	return cc, nil
}

// Check refuses a definition that does not hold together for the import's
// file, naming the field and why, without storing anything.
func (s *Service) Check(ctx context.Context, id string, d Definition) error {
	_, _, err := s.resolve(ctx, id, d)
	return err
}

// resolve reads the import and checks d against its file's header. A
// discarded import is refused: its file is gone.
func (s *Service) resolve(ctx context.Context, id string, d Definition) (*Import, *resolved, error) {
	imp, err := s.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if imp.Status == StatusDiscarded {
		return nil, nil, errs.Conflict("import_discarded", "status", "%s", discardedWhy)
	}
	r, err := s.check(ctx, d, imp.Header)
	return imp, r, err
}

// quoteAll names a file's columns in an error, the first maxNamed of
// them, then how many more there are: a file may have thousands.
func quoteAll(names []string) string {
	const maxNamed = 50
	q := make([]string, 0, min(len(names), maxNamed+1))
	for i, n := range names {
		if i == maxNamed {
			q = append(q, fmt.Sprintf("and %d more", len(names)-maxNamed))
			break
		}
		q = append(q, fmt.Sprintf("%q", n))
	}
	return strings.Join(q, ", ")
}

func coreNames() string {
	names := make([]string, len(contact.CoreFields))
	for i, f := range contact.CoreFields {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}
