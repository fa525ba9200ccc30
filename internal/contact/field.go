// Package contact holds contacts (leads and contacts), their core fields and
// the custom fields defined by field definitions.
package contact

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/store"
)

// Custom field types.
const (
	TypeText    = "text"
	TypeNumber  = "number"
	TypeBoolean = "boolean"
	TypeDate    = "date"
	TypeEmail   = "email"
)

// FieldTypes lists the custom field types.
var FieldTypes = []string{TypeText, TypeNumber, TypeBoolean, TypeDate, TypeEmail}

// FieldDefinition describes a custom field.
type FieldDefinition struct {
	Name      string `json:"name" doc:"lower case letters, digits and _, starting with a letter"`
	Label     string `json:"label"`
	Type      string `json:"type" enum:"text,number,boolean,date,email"`
	Personal  bool   `json:"personal" doc:"erased by \"erase personal data\""`
	Sensitive bool   `json:"sensitive" doc:"shown masked everywhere; once on, it cannot be turned off"`
	Mask      string `json:"mask" doc:"for sensitive fields: last:N shows the last N characters, first:N the first N, none hides all; default last:4"`
	// StoragePurpose ties the field to a purpose: when the contact withdraws
	// that consent, the value is erased and the field locked until they
	// grant it again.
	StoragePurpose string    `json:"storage_purpose,omitempty" doc:"the id of the purpose whose consent storing this field needs"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// FieldInput creates or changes a field definition; nil fields are left as
// they are. Name and type cannot change once created.
type FieldInput struct {
	Name      *string `json:"name" required:"create"`
	Label     *string `json:"label"`
	Type      *string `json:"type" required:"create" enum:"text,number,boolean,date,email"`
	Personal  *bool   `json:"personal"`
	Sensitive *bool   `json:"sensitive"`
	Mask      *string `json:"mask"`
	// StoragePurpose is a purpose name or id; "" unties the field.
	StoragePurpose *string `json:"storage_purpose"`
}

var fieldNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// conditionWords are the operators, constants and functions of the
// condition language (docs/conditions.md), which cannot name a field.
var conditionWords = []string{"in", "not", "and", "or", "contains", "matches", "let", "if", "else", "true", "false", "nil",
	"optin", "consent", "lower", "now", "duration", "date", "len", "all", "none", "any", "one", "filter", "map", "count"}
var maskRE = regexp.MustCompile(`^(none|(last|first):([1-9]|1[0-9]|20))$`)

func (in *FieldInput) validateCommon() error {
	if err := errs.TrimLine("label", in.Label, 100); err != nil {
		return err
	}
	if in.Mask != nil && *in.Mask != "" && !maskRE.MatchString(*in.Mask) {
		return errs.Invalid("mask", "must be last:N, first:N (N from 1 to 20) or none")
	}
	return nil
}

// mergeInto sets the fields of f that in gives; a sensitive field without a
// mask gets last:4.
func (in *FieldInput) mergeInto(f *FieldDefinition) {
	if in.Label != nil {
		f.Label = *in.Label
	}
	if in.Personal != nil {
		f.Personal = *in.Personal
	}
	if in.Sensitive != nil {
		f.Sensitive = *in.Sensitive
	}
	if in.Mask != nil {
		f.Mask = *in.Mask
	}
	if in.StoragePurpose != nil {
		f.StoragePurpose = *in.StoragePurpose
	}
	if f.Sensitive && f.Mask == "" {
		f.Mask = "last:4"
	}
}

// resolvePurpose turns the storage purpose given by name or id into an id.
func (s *Service) resolvePurpose(ctx context.Context, in *FieldInput) error {
	if in.StoragePurpose == nil || *in.StoragePurpose == "" {
		return nil
	}
	p, err := s.Consent.Purpose(ctx, *in.StoragePurpose)
	if err != nil {
		return errs.NotFound("purpose", "storage_purpose")
	}
	in.StoragePurpose = &p.ID
	return nil
}

// EncryptFieldJob is the job kind that encrypts the values a field held
// before it was marked sensitive.
const EncryptFieldJob = "vault.encrypt_field"

// auditedField is what the audit log keeps of a field definition: how
// its values are kept, shown and erased.
type auditedField struct {
	Label          string `json:"label"`
	Type           string `json:"type"`
	Personal       bool   `json:"personal"`
	Sensitive      bool   `json:"sensitive"`
	Mask           string `json:"mask"`
	StoragePurpose string `json:"storage_purpose"`
}

func (f *FieldDefinition) audited() auditedField {
	return auditedField{Label: f.Label, Type: f.Type, Personal: f.Personal, Sensitive: f.Sensitive, Mask: f.Mask, StoragePurpose: f.StoragePurpose}
}

// auditTx writes the audit log's entries of a change of f by by, from
// before (nil for a creation) to f as it now is. The field is named by
// its name, which never changes, and its label. Making it sensitive is
// an action of its own, with the mask that comes with it.
func (f *FieldDefinition) auditTx(tx *store.Tx, by audit.Actor, before *auditedField, now time.Time) error {
	obj := audit.Object{Kind: audit.KindField, ID: f.Name, Name: f.Label}
	if before == nil {
		return audit.RecordTx(tx, by, obj, audit.ActionFieldCreated, audit.Changes(nil, f.audited()), now)
	}
	madeSensitive := f.Sensitive && !before.Sensitive
	for _, c := range audit.Changes(*before, f.audited()) {
		action := audit.ActionFieldChanged
		if madeSensitive && (c.Name == "sensitive" || c.Name == "mask") {
			action = audit.ActionFieldMadeSensitive
		}
		if err := audit.RecordTx(tx, by, obj, action, []audit.Change{c}, now); err != nil {
			return err
		}
	}
	return nil
}

// CreateField adds a custom field definition, made by by, who the audit
// log names.
func (s *Service) CreateField(ctx context.Context, by audit.Actor, in FieldInput) (*FieldDefinition, error) {
	switch {
	case in.Name == nil || *in.Name == "":
		return nil, errs.Required("name")
	case !fieldNameRE.MatchString(*in.Name):
		return nil, errs.Invalid("name", "must be lower case letters, digits and _, starting with a letter, at most 63 characters")
	case slices.Contains(ReservedFieldNames(), *in.Name):
		return nil, errs.Conflict("field_name_reserved", "name", "%q is a core field", *in.Name)
	case slices.Contains(conditionWords, *in.Name):
		return nil, errs.Conflict("field_name_reserved", "name", "%q is a word of the condition language; a field so named could not be used in conditions", *in.Name)
	case in.Type == nil || *in.Type == "":
		return nil, errs.Required("type")
	case !slices.Contains(FieldTypes, *in.Type):
		return nil, errs.Invalid("type", "must be one of %s", strings.Join(FieldTypes, ", "))
	}
	if err := in.validateCommon(); err != nil {
		return nil, err
	}
	if err := s.resolvePurpose(ctx, &in); err != nil {
		return nil, err
	}
	if in.Sensitive != nil && *in.Sensitive && s.Vault == nil {
		return nil, ErrNoEncryption
	}
	if in.Sensitive != nil && *in.Sensitive && *in.Type == TypeBoolean {
		return nil, errs.Invalid("sensitive", "a boolean cannot be masked: any part of true or false gives it away")
	}
	now := s.now()
	f := &FieldDefinition{Name: *in.Name, Label: *in.Name, Type: *in.Type, CreatedAt: now, UpdatedAt: now}
	in.mergeInto(f)
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`INSERT INTO field_definitions (name, label, type, personal, sensitive, mask, storage_purpose_id, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`, f.Name, f.Label, f.Type, f.Personal, f.Sensitive, f.Mask, nullable(f.StoragePurpose), store.Micros(now))
		if store.IsUniqueViolation(err) {
			return errs.Conflict("field_exists", "name", "a field named %q already exists", f.Name)
		}
		if err != nil {
			return fmt.Errorf("contact: create field: %w", err)
		}
		tx.SetLocal(storageFieldsMemo{}, nil)
		return f.auditTx(tx, by, nil, now)
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// UpdateField changes a field definition, by by, who the audit log names
// for each field that changed. Turning sensitive off is refused (R11):
// values once protected stay protected. It returns a not-found error
// (field "name") when there is no such field.
func (s *Service) UpdateField(ctx context.Context, by audit.Actor, name string, in FieldInput) (*FieldDefinition, error) {
	if in.Name != nil && *in.Name != name {
		return nil, errs.Invalid("name", "cannot be changed")
	}
	if err := in.validateCommon(); err != nil {
		return nil, err
	}
	if err := s.resolvePurpose(ctx, &in); err != nil {
		return nil, err
	}
	if in.Sensitive != nil && *in.Sensitive && s.Vault == nil {
		return nil, ErrNoEncryption
	}
	var out *FieldDefinition
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		f, err := scanField(tx.QueryRow(fieldSelect+" WHERE name = $1", name))
		if err != nil {
			return err
		}
		if in.Type != nil && *in.Type != f.Type {
			return errs.Invalid("type", "cannot be changed once values may exist; define a new field instead")
		}
		if in.Sensitive != nil && !*in.Sensitive && f.Sensitive {
			return errs.Refused("sensitive_irreversible", "sensitive", "a sensitive field cannot be made non-sensitive again")
		}
		if in.Sensitive != nil && *in.Sensitive && f.Type == TypeBoolean {
			return errs.Invalid("sensitive", "a boolean cannot be masked: any part of true or false gives it away")
		}
		if in.Mask != nil && *in.Mask != f.Mask && f.Sensitive && !(f.Mask == "" && in.Sensitive != nil) {
			// Masked forms are stored with the values; a new mask would not
			// reach the values already there.
			return errs.Refused("mask_fixed", "mask", "the mask of a sensitive field is fixed once values may exist; define a new field for another mask")
		}
		wasSensitive, before := f.Sensitive, f.audited()
		in.mergeInto(f)
		f.UpdatedAt = s.now()
		_, err = tx.Exec(`UPDATE field_definitions SET label = $2, personal = $3, sensitive = $4, mask = $5, storage_purpose_id = $6,
			updated_at = $7 WHERE name = $1`,
			f.Name, f.Label, f.Personal, f.Sensitive, f.Mask, nullable(f.StoragePurpose), store.Micros(f.UpdatedAt))
		if err != nil {
			return fmt.Errorf("contact: update field: %w", err)
		}
		tx.SetLocal(storageFieldsMemo{}, nil)
		if f.Sensitive && !wasSensitive {
			// Values stored in the clear until now are encrypted by a job,
			// in batches, so that a large table does not hold one long
			// write; until then they are shown masked like the rest.
			if err := jobs.Enqueue(tx, jobs.Spec{Kind: EncryptFieldJob, Payload: f.Name, UniqueKey: EncryptFieldJob + ":" + f.Name}, f.UpdatedAt); err != nil {
				return err
			}
		}
		out = f
		return f.auditTx(tx, by, &before, f.UpdatedAt)
	})
	return out, err
}

const fieldSelect = `SELECT name, label, type, personal, sensitive, mask, COALESCE(storage_purpose_id, ''), created_at, updated_at FROM field_definitions`

// nullable is NULL for "", for optional references.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// scanField returns a not-found error (field "name") when the row is missing.
func scanField(row store.Scanner) (*FieldDefinition, error) {
	var f FieldDefinition
	var created, updated int64
	err := row.Scan(&f.Name, &f.Label, &f.Type, &f.Personal, &f.Sensitive, &f.Mask, &f.StoragePurpose, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("field", "name")
	}
	if err != nil {
		return nil, fmt.Errorf("contact: read field: %w", err)
	}
	f.CreatedAt, f.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return &f, nil
}

// Field returns one field definition, or a not-found error.
func (s *Service) Field(ctx context.Context, name string) (*FieldDefinition, error) {
	return scanField(s.DB.Read.QueryRowContext(ctx, fieldSelect+" WHERE name = $1", name))
}

// Fields returns every field definition by name; an empty list when none
// are defined.
func (s *Service) Fields(ctx context.Context) ([]*FieldDefinition, error) {
	out, err := store.QueryAll(ctx, s.DB.Read, scanField, fieldSelect+" ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("contact: list fields: %w", err)
	}
	return out, nil
}

// checkValue returns v in the form stored for field f, or an error that
// names the field.
func (f *FieldDefinition) checkValue(v any) (any, error) {
	name := "fields." + f.Name
	switch f.Type {
	case TypeText:
		s, ok := v.(string)
		if !ok {
			return nil, errs.Invalid(name, "must be a string")
		}
		if utf8.RuneCountInString(s) > 10000 {
			return nil, errs.Invalid(name, "must be at most 10000 characters")
		}
		return s, errs.SingleLine(name, s) // a text field is one line, as its inputs are
	case TypeNumber:
		switch n := v.(type) {
		case json.Number:
			f, err := n.Float64()
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, errs.Invalid(name, "must be a finite number")
			}
			if !strings.ContainsAny(string(n), ".eE") && math.Abs(f) > 1<<53 {
				return nil, errs.Invalid(name, "is too large to keep exactly (more than 2^53); store it in a text field")
			}
			return f, nil
		case float64:
			if math.IsNaN(n) || math.IsInf(n, 0) {
				return nil, errs.Invalid(name, "must be a finite number")
			}
			return n, nil
		case int:
			return float64(n), nil
		case string:
			if x, err := strconv.ParseFloat(n, 64); err == nil && !math.IsNaN(x) && !math.IsInf(x, 0) {
				return x, nil
			}
		}
		return nil, errs.Invalid(name, "must be a number")
	case TypeBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, errs.Invalid(name, "must be true or false")
		}
		return b, nil
	case TypeDate:
		s, ok := v.(string)
		if _, err := time.Parse(time.DateOnly, s); !ok || err != nil {
			return nil, errs.Invalid(name, "must be a date written YYYY-MM-DD")
		}
		return s, nil
	case TypeEmail:
		s, ok := v.(string)
		if !ok {
			return nil, errs.Invalid(name, "must be a string")
		}
		e, err := normalizeEmail(name, s)
		if err != nil {
			return nil, err
		}
		return e, nil
	}
	return nil, errs.Invalid(name, "has unknown type %q", f.Type)
}

// NormalizeEmail trims an address and checks it is a plain address
// (no display name) with a dotted domain and no invisible character
// (errs.Visible). It returns an error naming the field "email" when it is
// not. Every way an address comes in (the API, webforms, imports, the
// preference centre) goes through it.
func NormalizeEmail(s string) (string, error) { return normalizeEmail("email", s) }

// normalizeEmail is NormalizeEmail naming field in its errors.
func normalizeEmail(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errs.Required(field)
	}
	if len(s) > 254 {
		return "", errs.Invalid(field, "must be at most 254 characters")
	}
	if err := errs.Visible(field, s); err != nil {
		return "", err
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", errs.Invalid(field, "is not a valid email address")
	}
	at := strings.LastIndexByte(s, '@')
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", errs.Invalid(field, "is not a valid email address")
	}
	return s, nil
}

// MaskValue hides a sensitive value according to f's mask, replacing hidden
// characters with •. At most half of the characters are ever shown, so a
// short value is not given away whole by a "last:4" mask.
func (f *FieldDefinition) MaskValue(v any) string {
	s := fmt.Sprint(v)
	if f, ok := v.(float64); ok {
		s = strconv.FormatFloat(f, 'f', -1, 64) // digits, never 1.2e+18
	}
	r := []rune(s)
	show, fromEnd := 0, true
	if strings.HasPrefix(f.Mask, "last:") {
		show, _ = strconv.Atoi(strings.TrimPrefix(f.Mask, "last:"))
	} else if strings.HasPrefix(f.Mask, "first:") {
		show, _ = strconv.Atoi(strings.TrimPrefix(f.Mask, "first:"))
		fromEnd = false
	}
	show = min(show, len(r)/2)
	out := []rune(strings.Repeat("•", len(r)))
	if fromEnd {
		copy(out[len(r)-show:], r[len(r)-show:])
	} else {
		copy(out[:show], r[:show])
	}
	return string(out)
}
