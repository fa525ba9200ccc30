// Package webform holds webforms (SPEC R4, R12): forms that a website embeds
// or links to, through which a person leaves their details, chooses lists
// and gives consents.
//
// A form's definition names its fields, the public lists it offers, its
// consent boxes (each shows its purpose's current consent text), an optional
// marketing box and the privacy policy it links to. A definition that
// pre-checks any box, or has no privacy policy link, is refused: consent
// must be an active choice, and the person must be able to read what they
// agree to (R12).
//
// A submission with a new address is written in one transaction with
// everything it causes: the lead, a consent record for each checked box
// with its evidence (IP address, user agent, the consent text version the
// form showed), for the marketing box the opt-in status
// single_opt_in_webform and the double opt-in email (R4), and the list
// subscriptions. A submission about a known address changes nothing: it is
// held, and applied only by the link emailed to the address (confirm.go).
// The package knows nothing of HTTP: the public pages decode the post and
// render what this package returns.
package webform

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store"
)

// SourceWebForm is the built-in "Web form" source that every consent record
// of a submission names, referred to by id so that renaming it changes
// nothing here.
const SourceWebForm = "01930000-0000-7000-8001-000000000001"

// coreFields are the contact fields a form can ask for besides custom
// fields. The email address is always asked for, and always required.
var coreFields = contact.WebformFields()

// Limits on what one form holds, so that a form stays a form.
const (
	maxFields   = 50
	maxBoxes    = 30
	maxURL      = 2000
	maxLabel    = 200
	maxTitle    = 200
	maxFormName = 100
)

// Definition is what an operator says a form is.
type Definition struct {
	Name     string `json:"name" required:"create" doc:"unique regardless of case"`
	Title    string `json:"title" required:"create" doc:"the heading of the hosted form"`
	Language string `json:"language" enum:"en,sv,nl" doc:"the language of the form's own texts; default en"`
	// Fields are the contact fields asked for, in order. The email address
	// is added first when missing and is always required.
	Fields    []Field       `json:"fields" doc:"core fields (email, first_name, last_name, phone, country, region) or custom fields by name"`
	Lists     []ListBox     `json:"lists,omitempty" doc:"public lists offered as checkboxes"`
	Consents  []ConsentBox  `json:"consents,omitempty" doc:"consent boxes; each shows its purpose's current consent text"`
	Marketing *MarketingBox `json:"marketing,omitempty" doc:"the box that asks for email marketing: sets single_opt_in_webform and sends the double opt-in email"`
	// PrivacyPolicyURL is required (R12): https, or http on localhost.
	PrivacyPolicyURL string `json:"privacy_policy_url" required:"create" doc:"https, or http only for localhost"`
	RedirectURL      string `json:"redirect_url,omitempty" doc:"where to send the person after a submission, instead of the thank-you page"`
	SubmitLabel      string `json:"submit_label,omitempty" doc:"the submit button's text; default a translation of Submit"`
}

// Field is a contact field on a form.
type Field struct {
	Name     string `json:"name" required:"true"`
	Label    string `json:"label,omitempty" doc:"default: a custom field's label, or the core field's name in the language the form is shown in"`
	Required bool   `json:"required,omitempty" doc:"always true for email"`
}

// ListBox offers a public list as a checkbox.
type ListBox struct {
	List    string `json:"list" required:"true" doc:"list id or name; stored as the id"`
	Label   string `json:"label,omitempty" doc:"default: the list's name"`
	Checked bool   `json:"checked,omitempty" doc:"refused when true: boxes are never pre-checked"`
}

// ConsentBox asks for consent to a purpose.
type ConsentBox struct {
	Purpose string `json:"purpose" required:"true" doc:"purpose id or name; stored as the id"`
	Label   string `json:"label,omitempty" doc:"names the box with the form; default: the purpose's name. The box shows one sentence, its purpose's consent text, and this label only for a purpose without one"`
	Checked bool   `json:"checked,omitempty" doc:"refused when true: consent boxes are never pre-checked (R12)"`
}

// MarketingBox asks for email marketing.
type MarketingBox struct {
	Purpose string `json:"purpose,omitempty" doc:"purpose id or name; default E-marketing"`
	Label   string `json:"label,omitempty" doc:"names the box with the form. The box shows one sentence, its purpose's consent text; this label (default: \"Yes, send me news and offers by email\" in the language the form is shown in) only for a purpose without one"`
	Checked bool   `json:"checked,omitempty" doc:"refused when true: the box is never pre-checked (R12)"`
}

// Webform is a stored form.
type Webform struct {
	ID string `json:"id"`
	Definition
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Service keeps webforms and takes their submissions.
type Service struct {
	DB       *store.DB
	Consent  *consent.Service
	Contacts *contact.Service
	Lists    *lists.Service
	OptIn    *optin.Service
	// BaseURL is where the snippet posts to: BaseURL/f/{id}, and where the
	// links confirming a post about a known address point.
	BaseURL string
	// Sender names the sender in emails.
	Sender string
	Mail   *mail.Templates // renders the email confirming a post about a known address
	Now    func() time.Time
	// AfterGrant, when set, runs inside the transaction of each confirmed
	// post for every consent it grants, with the record and the
	// contact's language, for what a confirmed consent causes (a receipt
	// email, receipts.Service.EmailTx). An error aborts the change.
	AfterGrant func(tx *store.Tx, r *consent.Record, lang string, now time.Time) error

	cache sync.Map // form id or name → cached
	form  *template.Template
}

// New completes s, parsing the form's markup template: a broken template
// is an error at start-up.
func New(s *Service) (*Service, error) {
	var err error
	s.form, err = parseForm()
	return s, err
}

func (s *Service) now() time.Time { return store.Now(s.Now) }

// validate checks d and puts it in its stored form: ids for purposes and
// lists, default labels, the email field first and required. The error
// names the field by its path in the definition ("consents[1].checked").
func (s *Service) validate(ctx context.Context, d *Definition) error {
	if err := errs.TrimLine("name", &d.Name, maxFormName); err != nil {
		return err
	}
	if err := errs.TrimLine("title", &d.Title, maxTitle); err != nil {
		return err
	}
	if d.Language == "" {
		d.Language = i18n.Languages[0]
	}
	if !slices.Contains(i18n.Languages, d.Language) {
		return errs.Invalid("language", "must be one of %s", strings.Join(i18n.Languages, ", "))
	}
	if d.SubmitLabel != "" {
		if err := errs.TrimLine("submit_label", &d.SubmitLabel, maxLabel); err != nil {
			return err
		}
	}
	var err error
	if d.PrivacyPolicyURL, err = checkURL("privacy_policy_url", d.PrivacyPolicyURL, true); err != nil {
		return err
	}
	if d.RedirectURL, err = checkURL("redirect_url", d.RedirectURL, false); err != nil {
		return err
	}
	// Pre-checked boxes come before anything that reads the database, so
	// that this refusal is the one an operator sees (R12).
	for i, b := range d.Consents {
		if b.Checked {
			return errs.Invalid(fmt.Sprintf("consents[%d].checked", i), "consent boxes are never pre-checked: consent must be an active choice (R12); leave checked out")
		}
	}
	if d.Marketing != nil && d.Marketing.Checked {
		return errs.Invalid("marketing.checked", "the marketing box is never pre-checked: consent must be an active choice (R12); leave checked out")
	}
	for i, b := range d.Lists {
		if b.Checked {
			return errs.Invalid(fmt.Sprintf("lists[%d].checked", i), "list boxes are never pre-checked: the person chooses (R12); leave checked out")
		}
	}
	if err := s.validateFields(ctx, d); err != nil {
		return err
	}
	if err := s.validateBoxes(ctx, d); err != nil {
		return err
	}
	return s.validateLists(ctx, d)
}

// checkURL accepts an absolute https URL, or http for localhost (a site
// under development) (errs.WebAddress). An empty optional URL is fine.
func checkURL(field, raw string, required bool) (string, error) {
	if strings.TrimSpace(raw) == "" && required {
		return "", errs.Invalid(field, "is required: a webform must link to the privacy policy (R12)")
	}
	return errs.WebAddress(field, raw, maxURL, "https://example.com/privacy")
}

func (s *Service) validateFields(ctx context.Context, d *Definition) error {
	defs, err := s.Contacts.Fields(ctx)
	if err != nil {
		return err
	}
	custom := map[string]*contact.FieldDefinition{}
	for _, f := range defs {
		custom[f.Name] = f
	}
	if len(d.Fields) > maxFields {
		return errs.Invalid("fields", "a form has at most %d fields", maxFields)
	}
	seen := map[string]bool{}
	for i := range d.Fields {
		f := &d.Fields[i]
		path := fmt.Sprintf("fields[%d]", i)
		f.Name = strings.TrimSpace(f.Name)
		switch {
		case f.Name == "":
			return errs.Required(path + ".name")
		case seen[f.Name]:
			return errs.Invalid(path+".name", "%s is on the form twice", f.Name)
		case slices.Contains(coreFields, f.Name):
		case custom[f.Name] != nil:
		case slices.Contains(contact.ReservedFieldNames(), f.Name):
			return errs.Invalid(path+".name", "%s cannot be set from a webform; use one of %s or a custom field", f.Name, strings.Join(coreFields, ", "))
		default:
			return errs.Invalid(path+".name", "%q is not a contact field; define custom fields under /api/v1/fields first", f.Name)
		}
		seen[f.Name] = true
		if f.Name == "email" {
			f.Required = true
		}
		if f.Label == "" && custom[f.Name] != nil {
			f.Label = custom[f.Name].Label
		}
		if err := optionalLabel(path+".label", &f.Label); err != nil {
			return err
		}
	}
	if !seen["email"] {
		// Added after the checks, so that their paths are the ones the
		// operator wrote.
		d.Fields = append([]Field{{Name: "email", Required: true}}, d.Fields...)
	}
	return nil
}

// optionalLabel checks a label that may be left out: the form then shows
// the catalog's wording in the language it is shown in.
func optionalLabel(field string, label *string) error {
	if *label == "" {
		return nil
	}
	return errs.TrimLine(field, label, maxLabel)
}

func (s *Service) validateBoxes(ctx context.Context, d *Definition) error {
	if len(d.Consents) > maxBoxes {
		return errs.Invalid("consents", "a form has at most %d consent boxes", maxBoxes)
	}
	seen := map[string]string{}
	resolve := func(path, idOrName string) (*consent.Purpose, error) {
		if strings.TrimSpace(idOrName) == "" {
			return nil, errs.Required(path + ".purpose")
		}
		p, err := s.Consent.Purpose(ctx, idOrName)
		if errs.Is(err, errs.KindNotFound) {
			return nil, errs.NotFound("purpose", path+".purpose")
		}
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[p.ID]; dup {
			return nil, errs.Invalid(path+".purpose", "purpose %q is already asked for by %s", p.Name, prev)
		}
		seen[p.ID] = path
		return p, nil
	}
	if m := d.Marketing; m != nil {
		if m.Purpose == "" {
			m.Purpose = optin.EMarketing
		}
		p, err := resolve("marketing", m.Purpose)
		if err != nil {
			return err
		}
		m.Purpose = p.ID
		if err := optionalLabel("marketing.label", &m.Label); err != nil {
			return err
		}
	}
	for i := range d.Consents {
		b := &d.Consents[i]
		path := fmt.Sprintf("consents[%d]", i)
		p, err := resolve(path, b.Purpose)
		if err != nil {
			return err
		}
		b.Purpose = p.ID
		if b.Label == "" {
			b.Label = p.Name
		}
		if err := errs.TrimLine(path+".label", &b.Label, maxLabel); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) validateLists(ctx context.Context, d *Definition) error {
	if len(d.Lists) > maxBoxes {
		return errs.Invalid("lists", "a form offers at most %d lists", maxBoxes)
	}
	seen := map[string]bool{}
	for i := range d.Lists {
		b := &d.Lists[i]
		path := fmt.Sprintf("lists[%d]", i)
		if strings.TrimSpace(b.List) == "" {
			return errs.Required(path + ".list")
		}
		l, err := s.Lists.Get(ctx, b.List)
		if errs.Is(err, errs.KindNotFound) {
			return errs.NotFound("list", path+".list")
		}
		if err != nil {
			return err
		}
		if !l.Public {
			return errs.Invalid(path+".list", "list %q is not public; only public lists can be offered on a webform", l.Name)
		}
		if seen[l.ID] {
			return errs.Invalid(path+".list", "list %q is on the form twice", l.Name)
		}
		seen[l.ID] = true
		b.List = l.ID
		if b.Label == "" {
			b.Label = l.Name
		}
		if err := errs.TrimLine(path+".label", &b.Label, maxLabel); err != nil {
			return err
		}
	}
	return nil
}

// Create validates d and stores it as a new form, made by by, who the
// audit log names with the form's definition. A name already taken,
// regardless of case, is a conflict on "name".
func (s *Service) Create(ctx context.Context, by audit.Actor, d Definition) (*Webform, error) {
	if err := s.validate(ctx, &d); err != nil {
		return nil, err
	}
	now := s.now()
	w := &Webform{ID: uuid.Must(uuid.NewV7()).String(), Definition: d, CreatedAt: now, UpdatedAt: now}
	def, err := json.Marshal(w.Definition)
	if err != nil {
		return nil, fmt.Errorf("webform: encode definition: %w", err)
	}
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`INSERT INTO webforms (id, name, name_key, definition, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)`,
			w.ID, w.Name, strings.ToLower(w.Name), string(def), store.Micros(now))
		if err := saveError(err, w.Name); err != nil {
			return err
		}
		return w.auditTx(tx, by, audit.ActionWebformCreated, nil, now)
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// auditTx writes the audit log's entries of a change of w by by: each
// part of its definition (what it asks, the purposes and lists it offers,
// its texts) that differs from before's (nil for a creation; w nil for a
// deletion). The entries name the form as it was when deleted.
func (w *Webform) auditTx(tx *store.Tx, by audit.Actor, action string, before *Definition, now time.Time) error {
	var b, a any
	if before != nil {
		b = before
	}
	if action != audit.ActionWebformDeleted {
		a = w.Definition
	}
	return audit.RecordTx(tx, by, audit.Object{Kind: audit.KindWebform, ID: w.ID, Name: w.Name}, action, audit.Changes(b, a), now)
}

func saveError(err error, name string) error {
	if store.IsUniqueViolation(err) {
		return errs.Conflict("webform_name_taken", "name", "a webform named %q already exists", name)
	}
	if err != nil {
		return fmt.Errorf("webform: save: %w", err)
	}
	return nil
}

const formSelect = `SELECT id, definition, created_at, updated_at FROM webforms`

// scanForm returns a not-found error (field "webform") when the row is
// missing.
func scanForm(row store.Scanner) (*Webform, error) {
	var w Webform
	var def string
	var created, updated int64
	err := row.Scan(&w.ID, &def, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("webform", "webform")
	}
	if err != nil {
		return nil, fmt.Errorf("webform: read: %w", err)
	}
	if err := json.Unmarshal([]byte(def), &w.Definition); err != nil {
		return nil, fmt.Errorf("webform: decode definition of %s: %w", w.ID, err)
	}
	w.CreatedAt, w.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return &w, nil
}

// Get finds a form by id or, failing that, by name regardless of case. It
// returns a not-found error (field "webform") when neither matches.
func (s *Service) Get(ctx context.Context, idOrName string) (*Webform, error) {
	return scanForm(s.DB.Read.QueryRowContext(ctx, formSelect+" WHERE id = $1 OR name_key = $2 ORDER BY id = $1 DESC LIMIT 1",
		idOrName, strings.ToLower(strings.TrimSpace(idOrName))))
}

// All returns every form by name; none is an empty slice.
func (s *Service) All(ctx context.Context) ([]*Webform, error) {
	out, err := store.QueryAll(ctx, s.DB.Read, scanForm, formSelect+" ORDER BY name_key")
	if err != nil {
		return nil, fmt.Errorf("webform: list: %w", err)
	}
	return out, nil
}

// Update applies patch, a JSON object, to the form's definition as a JSON
// merge patch (RFC 7396) at the top level: a key given replaces that part
// of the definition (lists of fields and boxes are replaced whole), a key
// set to null removes it (the marketing box, the redirect URL), and absent
// keys stay. The result is validated as a new definition would be. It
// returns a not-found error when there is no such form. The audit log
// names by for each part that changed.
func (s *Service) Update(ctx context.Context, by audit.Actor, idOrName string, patch json.RawMessage) (*Webform, error) {
	w, err := s.Get(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	var changes map[string]json.RawMessage
	if err := json.Unmarshal(patch, &changes); err != nil || changes == nil {
		return nil, &errs.Error{Kind: errs.KindInvalid, Code: "malformed_json", Message: "request body must be a JSON object"}
	}
	cur, err := json.Marshal(w.Definition)
	if err != nil {
		return nil, fmt.Errorf("webform: encode definition: %w", err)
	}
	var merged map[string]json.RawMessage
	if err := json.Unmarshal(cur, &merged); err != nil {
		return nil, fmt.Errorf("webform: decode definition: %w", err)
	}
	for k, v := range changes {
		if string(v) == "null" {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	b, _ := json.Marshal(merged)
	var d Definition
	if err := DecodeDefinition(b, &d); err != nil {
		return nil, err
	}
	return s.replace(ctx, by, w, d)
}

// Replace validates d as a new definition would be and stores it in place
// of the form's whole definition: what d leaves out (the marketing box, the
// redirect URL) is removed. The admin pages post a form's every part at
// once. It returns a not-found error when there is no such form. The
// audit log names by for each part that changed.
func (s *Service) Replace(ctx context.Context, by audit.Actor, idOrName string, d Definition) (*Webform, error) {
	w, err := s.Get(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	return s.replace(ctx, by, w, d)
}

func (s *Service) replace(ctx context.Context, by audit.Actor, w *Webform, d Definition) (*Webform, error) {
	if err := s.validate(ctx, &d); err != nil {
		return nil, err
	}
	def, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("webform: encode definition: %w", err)
	}
	now := s.now()
	var out *Webform
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		cur, err := scanForm(tx.QueryRow(formSelect+" WHERE id = $1", w.ID))
		if errs.Is(err, errs.KindNotFound) {
			return errs.NotFound("webform", "")
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(`UPDATE webforms SET name = $2, name_key = $3, definition = $4, updated_at = $5 WHERE id = $1`,
			w.ID, d.Name, strings.ToLower(d.Name), string(def), store.Micros(now))
		if err := saveError(err, d.Name); err != nil {
			return err
		}
		before := cur.Definition
		cur.Definition, cur.UpdatedAt = d, now
		out = cur
		return cur.auditTx(tx, by, audit.ActionWebformChanged, &before, now)
	})
	if err != nil {
		return nil, err
	}
	s.forget()
	return out, nil
}

// URL is the address of the hosted form with id, for a link instead of
// the snippet.
func (s *Service) URL(id string) string { return strings.TrimRight(s.BaseURL, "/") + "/f/" + id }

// DecodeDefinition reads a definition strictly: an unknown key or a value
// of the wrong type is an error naming the field.
func DecodeDefinition(b []byte, d *Definition) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	err := dec.Decode(d)
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &typ):
		return errs.Invalid(strings.TrimPrefix(typ.Field, "Definition."), "must be a %s", typ.Type.Kind())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &errs.Error{Kind: errs.KindInvalid, Code: "unknown_field", Field: name, Message: "is not a field of a webform definition"}
	}
	return &errs.Error{Kind: errs.KindInvalid, Code: "malformed_json", Message: "the definition could not be read: " + err.Error()}
}

// Delete removes a form; what its submissions recorded stays. It returns a
// not-found error when there is no such form. The audit log names by, and
// keeps what the form was.
func (s *Service) Delete(ctx context.Context, by audit.Actor, idOrName string) error {
	w, err := s.Get(ctx, idOrName)
	if err != nil {
		return err
	}
	defer s.forget()
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		cur, err := scanForm(tx.QueryRow(formSelect+" WHERE id = $1", w.ID))
		if errs.Is(err, errs.KindNotFound) {
			return nil // deleted meanwhile, by whoever has the entry
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM webforms WHERE id = $1`, w.ID); err != nil {
			return fmt.Errorf("webform: delete: %w", err)
		}
		return cur.auditTx(tx, by, audit.ActionWebformDeleted, &cur.Definition, s.now())
	})
}
