package imports

import (
	"fmt"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/lists"
)

// rowPlan is one data row read as the import will write it.
type rowPlan struct {
	number   int
	cells    []string
	incoming contact.Incoming
	consents []plannedConsent
	lists    []*lists.List // the lists the row joins
}

type plannedConsent struct {
	prepared  *consent.Prepared
	purposeID string
	state     string
	collected time.Time
}

// rowError is why a row cannot be written: the field (a column's field,
// consents[0], ...) and the reason.
type rowError struct {
	field, reason string
}

func (e *rowError) Error() string {
	if e.field == "" {
		return e.reason
	}
	return e.field + ": " + e.reason
}

// asRowError is err as a row's failure.
func asRowError(err error) *rowError {
	if e := errs.As(err); e != nil {
		return &rowError{field: e.Field, reason: e.Message}
	}
	return &rowError{reason: err.Error()}
}

// plan reads one row against the resolved definition: the contact's
// fields, opt-in status, consents with their provenance and lists. The
// error names the column's field and why; nothing is read or written.
func (r *resolved) plan(s *Service, importID string, actor consent.Actor, number int, cells []string, now time.Time) (*rowPlan, *rowError) {
	p := &rowPlan{number: number, cells: cells}
	cell := func(i int) string {
		if i < 0 || i >= len(cells) {
			return ""
		}
		return strings.TrimSpace(cells[i])
	}
	in := &p.incoming
	for _, f := range r.fields {
		v := cell(f.index)
		if v == "" {
			continue // an empty cell never clears a value
		}
		if f.core != nil {
			f.core.Set(&in.Input, v)
			continue
		}
		if in.Input.Fields == nil {
			in.Input.Fields = map[string]any{}
		}
		in.Input.Fields[f.field] = v
	}
	if r.def.OptIn != nil {
		v := r.def.OptIn.Value
		if r.optIn >= 0 {
			v = cell(r.optIn)
		}
		status, err := parseOptIn(v)
		if err != nil {
			return nil, &rowError{field: "opt_in_status", reason: err.Error()}
		}
		in.OptInStatus = status
	}
	if err := contact.CheckIncoming(in, r.defs); err != nil {
		return nil, asRowError(err)
	}
	for i, c := range r.consents {
		at := fmt.Sprintf("consents[%d]", i)
		state := c.State
		if c.index >= 0 {
			var err error
			if state, err = ParseAnswer(cell(c.index)); err != nil {
				return nil, &rowError{field: at, reason: err.Error()}
			}
			if state == "" {
				continue // the file says nothing of this purpose for the row
			}
		}
		collected := c.collected
		if c.dateIndex >= 0 {
			v := cell(c.dateIndex)
			if v == "" {
				return nil, &rowError{field: at + ".collected_at", reason: "the row has no date in column " + fmt.Sprintf("%q", c.CollectedAtColumn)}
			}
			t, err := ParseDate(v)
			if err != nil {
				return nil, &rowError{field: at + ".collected_at", reason: err.Error()}
			}
			if why := implausibleCollection(t, now); why != "" {
				return nil, &rowError{field: at + ".collected_at", reason: v + " " + why}
			}
			collected = t
		}
		prepared, err := s.Consent.PrepareResolved(consent.RecordInput{Purpose: c.purpose.ID, State: state, Source: r.source.ID,
			LegalBasis: c.LegalBasis, TextVersion: c.TextVersion, Actor: actor,
			Evidence: consent.Evidence{Method: consent.MethodImport, ImportID: importID, CollectedAt: &collected, Notice: c.Notice}},
			c.purpose, r.source)
		if err != nil {
			return nil, &rowError{field: at, reason: asRowError(err).Error()}
		}
		if prepared.ExplicitConsent() && collected.After(in.NewConsentAt) {
			in.NewConsentAt = collected
		}
		p.consents = append(p.consents, plannedConsent{prepared: prepared, purposeID: c.purpose.ID, state: state, collected: collected})
	}
	for i, l := range r.lists {
		if l.index >= 0 {
			ans, err := ParseAnswer(cell(l.index))
			if err != nil {
				return nil, &rowError{field: fmt.Sprintf("lists[%d]", i), reason: err.Error()}
			}
			if ans != consent.StateGranted {
				continue
			}
		}
		p.lists = append(p.lists, l.list)
	}
	return p, nil
}

// emailKey is the row's address as contacts are looked up by it.
func (p *rowPlan) emailKey() string { return strings.ToLower(*p.incoming.Input.Email) }
