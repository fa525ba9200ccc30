package contact

import (
	"context"
	"math"
	"strconv"

	"errors"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/filter"
)

// coreConditionFields is the allow-list of core fields conditions may use,
// with the column each one reads.
var coreConditionFields = []*filter.Field{
	{Name: "email", Type: filter.String, Column: "email"},
	{Name: "first_name", Type: filter.String, Column: "first_name"},
	{Name: "last_name", Type: filter.String, Column: "last_name"},
	{Name: "phone", Type: filter.String, Column: "phone"},
	{Name: "country", Type: filter.String, Column: "country"},
	{Name: "region", Type: filter.String, Column: "region"},
	{Name: "language", Type: filter.String, Column: "language"},
	{Name: "stage", Type: filter.String, Column: "stage"},
	{Name: "owner", Type: filter.String, Column: "owner"},
	{Name: "kind", Type: filter.String, Column: "kind", Values: []string{KindLead, KindContact}},
	{Name: "opt_in_status", Type: filter.String, Column: "opt_in_status", Values: contactstate.OptInStatuses},
	{Name: "deliverability", Type: filter.String, Column: "deliverability", Values: contactstate.Deliverabilities},
	{Name: "processing_stopped", Type: filter.Bool, Column: "processing_stopped_at", Presence: true},
	{Name: "erasure_requested", Type: filter.Bool, Column: "erasure_requested_at", Presence: true},
	{Name: "retention_due", Type: filter.Bool, Column: "retention_due_at", Presence: true},
	{Name: "repermission_lapsed", Type: filter.Bool, Column: "repermission_lapsed_at", Presence: true},
	{Name: "created_at", Type: filter.Time, Column: "created_at"},
	{Name: "updated_at", Type: filter.Time, Column: "updated_at"},
}

var conditionTypes = map[string]filter.Type{
	TypeText: filter.String, TypeEmail: filter.String, TypeNumber: filter.Number, TypeBoolean: filter.Bool, TypeDate: filter.Date,
}

// ConditionSchema returns what conditions are checked against: the core
// fields, the custom fields as currently defined and the purposes, for a
// caller allowed to reveal sensitive values (see ConditionSchemaFor).
func (s *Service) ConditionSchema(ctx context.Context) (*filter.Schema, error) {
	return s.ConditionSchemaFor(ctx, true)
}

// ConditionSchemaFor is ConditionSchema for a caller who may reveal
// sensitive values or not: only one who may can compare a sensitive field
// with a value (through its blind index); anyone can search its visible
// characters.
func (s *Service) ConditionSchemaFor(ctx context.Context, mayReveal bool) (*filter.Schema, error) {
	defs, err := s.Fields(ctx)
	if err != nil {
		return nil, err
	}
	purposes, err := s.Consent.Purposes(ctx)
	if err != nil {
		return nil, err
	}
	sc := &filter.Schema{Fields: map[string]*filter.Field{}, Purposes: map[string]string{}}
	if s.Vault != nil && mayReveal {
		sc.BlindIndex = s.Vault.BlindIndex
	}
	for _, f := range coreConditionFields {
		sc.Fields[f.Name] = f
	}
	for _, d := range defs {
		sc.Fields[d.Name] = &filter.Field{Name: d.Name, Type: conditionTypes[d.Type], Sensitive: d.Sensitive}
	}
	for _, p := range purposes {
		sc.Purposes[strings.ToLower(p.Name)] = p.ID
		sc.Purposes[p.ID] = p.ID
	}
	if s.Lists != nil {
		if sc.Lists, err = s.Lists(ctx); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// Condition compiles a condition for selecting contacts, for a caller who
// may reveal sensitive values or not. An invalid one is an errs.Error on the
// field "filter" that carries the position.
func (s *Service) Condition(ctx context.Context, src string, mayReveal bool) (*filter.Condition, error) {
	sc, err := s.ConditionSchemaFor(ctx, mayReveal)
	if err != nil {
		return nil, err
	}
	cond, err := filter.Compile(src, sc, s.Now())
	var fe *filter.Error
	if errors.As(err, &fe) {
		return nil, &errs.Error{Kind: errs.KindInvalid, Code: "invalid_condition", Field: "filter", Message: fe.Error(), Position: fe.Position}
	}
	return cond, err
}

// LookupCondition turns a look-up of one field's value, as given in a query
// string (?field.score=7), into a condition with the value written as the
// field's type needs: a number, true or false, a date, or a string. An
// unknown field, or a value its type cannot hold, is an error naming
// "field.NAME".
func (s *Service) LookupCondition(ctx context.Context, name, value string) (string, error) {
	param := "field." + name
	sc, err := s.ConditionSchema(ctx)
	if err != nil {
		return "", err
	}
	f := sc.Fields[name]
	if f == nil {
		return "", errs.Invalid(param, "is not a field")
	}
	switch f.Type {
	case filter.Number:
		n, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsInf(n, 0) || math.IsNaN(n) {
			return "", errs.Invalid(param, "must be a number")
		}
		return name + " == " + strconv.FormatFloat(n, 'g', -1, 64), nil
	case filter.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return "", errs.Invalid(param, "must be true or false")
		}
		return name + " == " + strconv.FormatBool(b), nil
	case filter.Date, filter.Time:
		return name + " == date(" + strconv.Quote(value) + ")", nil
	}
	return name + " == " + strconv.Quote(value), nil
}

// Asker is who asks a question about contacts, for the access log when the
// question compares a sensitive value: the caller, whether they may reveal
// sensitive values, and their address.
type Asker struct {
	Actor     consent.Actor
	MayReveal bool
	IP        string
}

// Count returns how many contacts match the condition; all contacts when it
// is empty. A condition that compares a sensitive value is logged first.
func (s *Service) Count(ctx context.Context, condition string, who Asker) (int64, error) {
	sel, err := s.Select(ctx, condition, who)
	if err != nil {
		return 0, err
	}
	if err := sel.logLookups(ctx); err != nil {
		return 0, err
	}
	return sel.Count(ctx)
}

// Subject is the contact as the condition language sees it in memory, with
// its current consent states by purpose id and the ids of the lists it is
// subscribed to (nil when the caller does not need inList).
func Subject(c *Contact, consents map[string]string, lists map[string]bool) *filter.Subject {
	v := map[string]any{
		"email": c.Email, "first_name": c.FirstName, "last_name": c.LastName, "phone": c.Phone, "country": c.Country,
		"region": c.Region, "language": c.Language, "stage": c.Stage, "owner": c.Owner, "kind": c.Kind,
		"opt_in_status": c.OptInStatus, "deliverability": c.Deliverability, "processing_stopped": c.ProcessingStoppedAt != nil,
		"erasure_requested": c.ErasureRequestedAt != nil, "retention_due": c.RetentionDueAt != nil,
		"repermission_lapsed": c.RepermissionLapsedAt != nil, "created_at": c.CreatedAt.Truncate(time.Microsecond), "updated_at": c.UpdatedAt.Truncate(time.Microsecond),
	}
	for k, x := range c.Fields {
		v[k] = x
	}
	return &filter.Subject{Values: v, Consents: consents, Lists: lists}
}
