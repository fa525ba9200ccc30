package contact

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/holds"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/suppression"
	"github.com/consentry/consentry/internal/vault"
)

// Contact kinds.
const (
	KindLead    = "lead"
	KindContact = "contact"
)

// Contact is a person: a lead or a contact, with core fields, custom fields
// and the email opt-in status. Sensitive custom fields are masked in every
// Contact this package returns.
type Contact struct {
	ID          string         `json:"id"`
	Kind        string         `json:"kind" enum:"lead,contact"`
	Email       string         `json:"email"`
	FirstName   string         `json:"first_name"`
	LastName    string         `json:"last_name"`
	Phone       string         `json:"phone"`
	Country     string         `json:"country" doc:"ISO 3166-1 alpha-2 code"`
	Region      string         `json:"region"`
	Language    string         `json:"language" doc:"BCP 47 tag, e.g. en, sv, nl"`
	Stage       string         `json:"stage"`
	Owner       string         `json:"owner"`
	Fields      map[string]any `json:"fields" doc:"custom fields by name; sensitive values are masked"`
	OptInStatus string         `json:"opt_in_status" enum:"@opt_in_status"`
	// Deliverability is whether email can reach the address (bounces and
	// the blocklist).
	Deliverability string    `json:"deliverability" enum:"@deliverability"`
	LedgerRef      string    `json:"ledger_ref" doc:"the random reference that stands for this contact in the consent ledger"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	// Consents are the consent records the request that created the
	// contact made, so its caller sees what was recorded; other reads
	// leave it out (GET .../consents has them all).
	Consents []*consent.Record `json:"consents,omitempty" doc:"on create only: the consent records made with the contact"`
	// ProcessingStoppedAt is when the contact asked to stop processing
	// (R9); the record is locked from then on.
	ProcessingStoppedAt *time.Time `json:"processing_stopped_at,omitempty" doc:"when the contact asked to stop processing; the record is locked"`
	// ErasureRequestedAt is when the contact asked for their data to be
	// erased (R10).
	ErasureRequestedAt *time.Time `json:"erasure_requested_at,omitempty" doc:"when the contact asked for their data to be erased"`
	// RetentionDueAt is when every purpose of the contact had passed its
	// retention period (package retention); retention erases them once
	// the grace period has passed.
	RetentionDueAt *time.Time `json:"retention_due_at,omitempty" doc:"when every purpose of the contact had passed its retention period; the contact is erased after the grace period unless that changes"`
	// RepermissionLapsedAt is when the contact, sent a re-permission
	// email (package repermission), let its days pass without
	// confirming; cleared when they confirm a double opt-in.
	RepermissionLapsedAt *time.Time `json:"repermission_lapsed_at,omitempty" doc:"when the contact let a re-permission email's days pass without confirming; retention counts their marketing consent as ended from then"`
	// ErasedAt is when the contact's personal data was erased (R10); the
	// record is the non-identifying remainder.
	ErasedAt *time.Time `json:"erased_at,omitempty" doc:"when the contact's personal data was erased; what is left identifies no one"`
	// PreviouslyErasedAt is when this contact's address was erased before:
	// it came back with a new explicit consent.
	PreviouslyErasedAt *time.Time `json:"previously_erased_at,omitempty" doc:"when this address was erased before; it came back with a new explicit consent"`
}

func optionalTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := store.FromMicros(v.Int64)
	return &t
}

// Input sets a contact's core and custom fields. Nil core fields are left as
// they are (an empty string clears one). In Fields, a null value removes
// the custom field.
type Input struct {
	Kind      *string        `json:"kind" enum:"lead,contact"`
	Email     *string        `json:"email" required:"create"`
	FirstName *string        `json:"first_name"`
	LastName  *string        `json:"last_name"`
	Phone     *string        `json:"phone"`
	Country   *string        `json:"country"`
	Region    *string        `json:"region"`
	Language  *string        `json:"language"`
	Stage     *string        `json:"stage"`
	Owner     *string        `json:"owner"`
	Fields    map[string]any `json:"fields"`
}

// NewContact is what creating a contact takes: its fields, an optional
// starting opt-in status and consents recorded in the same transaction.
type NewContact struct {
	Input
	OptInStatus string
	Consents    []consent.RecordInput
	Actor       consent.Actor
	Evidence    consent.Evidence
}

// Service reads and changes contacts and field definitions.
type Service struct {
	DB      *store.DB
	Consent *consent.Service
	Now     func() time.Time
	// Vault encrypts sensitive values; nil when no keyset is configured, and
	// then sensitive values cannot be stored.
	Vault *vault.Vault
	// Lists resolves list names in conditions (inList); nil refuses inList.
	Lists func(ctx context.Context) (filter.Lists, error)

	createHooks []CreateHook
}

// CreateHook runs inside the transaction that creates a contact, for what
// the creation causes (the right-to-be-informed email:
// preferences.InformOnCreate). An error aborts the creation.
type CreateHook func(tx *store.Tx, c *Contact, now time.Time) error

// NewService returns a Service on db using the wall clock, running
// afterCreate for every contact it creates.
func NewService(db *store.DB, c *consent.Service, afterCreate ...CreateHook) *Service {
	return &Service{DB: db, Consent: c, Now: time.Now, createHooks: afterCreate}
}

func (s *Service) now() time.Time { return store.Now(s.Now) }

var countryRE = regexp.MustCompile(`^[A-Z]{2}$`)
var phoneRE = regexp.MustCompile(`^[0-9+()./ -]{3,40}$`)

// apply merges in into c, validating every field it sets against defs. The
// values of sensitive fields are not put in c: they come back as secrets,
// by field, to be encrypted (nil: remove the value).
func (in *Input) apply(c *Contact, defs map[string]*FieldDefinition) (map[string]*string, error) {
	secrets := map[string]*string{}
	err := in.applyCore(c)
	if err != nil {
		return nil, err
	}
	for name, v := range in.Fields {
		def := defs[name]
		if def == nil {
			return nil, errs.Invalid("fields."+name, "is not a defined field; define it under /api/v1/fields first")
		}
		if v == nil {
			delete(c.Fields, name)
			if def.Sensitive {
				secrets[name] = nil
			}
			continue
		}
		nv, err := def.checkValue(v)
		if err != nil {
			return nil, err
		}
		if !def.Sensitive {
			c.Fields[name] = nv
			continue
		}
		s := valueText(nv)
		if strings.Contains(s, "•") {
			return nil, errs.Invalid("fields."+name, "holds a masked value; send the full value or leave the field out")
		}
		delete(c.Fields, name) // a value from before encryption moves out of the clear
		secrets[name] = &s
	}
	return secrets, nil
}

// applyCore merges the core fields of in into c.
func (in *Input) applyCore(c *Contact) error {
	text := func(field string, p *string, dst *string, max int) error {
		if p == nil {
			return nil
		}
		v := strings.TrimSpace(*p)
		if utf8.RuneCountInString(v) > max {
			return errs.Invalid(field, "must be at most %d characters", max)
		}
		if err := errs.SingleLine(field, v); err != nil {
			return err
		}
		*dst = v
		return nil
	}
	if in.Kind != nil {
		if *in.Kind != KindLead && *in.Kind != KindContact {
			return errs.Invalid("kind", "must be lead or contact")
		}
		c.Kind = *in.Kind
	}
	if in.Email != nil {
		e, err := NormalizeEmail(*in.Email)
		if err != nil {
			return err
		}
		c.Email = e
	}
	for _, f := range CoreFields {
		switch f.Name {
		case "email", "phone", "country", "language": // checked by their own rules
			continue
		}
		if err := text(f.Name, *f.input(in), f.field(c), f.MaxLength); err != nil {
			return err
		}
	}
	if in.Phone != nil {
		p := strings.TrimSpace(*in.Phone)
		if p != "" && !phoneRE.MatchString(p) {
			return errs.Invalid("phone", "must be 3 to 40 digits, spaces and + ( ) . / -")
		}
		c.Phone = p
	}
	if in.Country != nil {
		cc := strings.ToUpper(strings.TrimSpace(*in.Country))
		if cc != "" && !countryRE.MatchString(cc) {
			return errs.Invalid("country", "must be a two-letter ISO 3166-1 code such as SE or NL")
		}
		c.Country = cc
	}
	if in.Language != nil {
		l, err := i18n.ParseTag("language", *in.Language)
		if err != nil {
			return err
		}
		c.Language = l
	}
	return nil
}

func (s *Service) fieldMap(ctx context.Context) (map[string]*FieldDefinition, error) {
	list, err := s.Fields(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]*FieldDefinition, len(list))
	for _, f := range list {
		m[f.Name] = f
	}
	return m, nil
}

func newRef() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Create validates and stores a new contact. Its opt-in status starts at
// none (R6) and moves to in.OptInStatus if the rules allow it for a user
// creating a contact; the consents in in are recorded in the same
// transaction. An email already in use, in any case, is a conflict.
func (s *Service) Create(ctx context.Context, in NewContact) (*Contact, error) {
	if in.Email == nil {
		return nil, errs.Required("email")
	}
	defs, err := s.fieldMap(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	c := &Contact{ID: uuid.Must(uuid.NewV7()).String(), Kind: KindLead, Fields: map[string]any{}, OptInStatus: contactstate.OptInNone,
		Deliverability: contactstate.DeliverabilityOK,
		LedgerRef:      newRef(), CreatedAt: now, UpdatedAt: now}
	secrets, err := in.Input.apply(c, defs)
	if err != nil {
		return nil, err
	}
	if in.OptInStatus != "" {
		if _, err := consent.CheckOptIn(contactstate.OptInNone, in.OptInStatus, consent.ChannelUserCreate); err != nil {
			return nil, errs.WithField(err, optInField)
		}
	}
	prepared := make([]*consent.Prepared, len(in.Consents))
	for i, ci := range in.Consents {
		p, err := s.Consent.Prepare(ctx, ci)
		if err != nil {
			return nil, errs.WithField(err, under(fmt.Sprintf("consents[%d]", i)))
		}
		prepared[i] = p
	}
	explicit := false
	for _, p := range prepared {
		explicit = explicit || p.ExplicitConsent()
	}
	armed, err := suppression.Armed(ctx, s.DB)
	if err != nil {
		return nil, err
	}
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		erased, err := checkSuppressed(tx, c, armed, explicit)
		if err != nil {
			return err
		}
		c.OptInStatus = contactstate.OptInNone
		if in.OptInStatus != "" {
			c.OptInStatus = in.OptInStatus // checked below, with the change's history; a refusal undoes the insert
		}
		if err := insertTx(tx, c, erased, in.Actor, in.Evidence.Method); err != nil {
			return err
		}
		k := contactstate.State{ID: c.ID, Ref: c.LedgerRef, OptIn: contactstate.OptInNone}
		if in.OptInStatus != "" {
			ch, err := s.Consent.ApplyOptIn(tx, k, consent.OptInInput{Status: in.OptInStatus, Channel: consent.ChannelUserCreate,
				Actor: in.Actor, Evidence: in.Evidence, Stored: true}, now)
			if err != nil {
				return errs.WithField(err, optInField)
			}
			if ch != nil {
				c.OptInStatus = ch.To
			}
		}
		// The values first, the consents after: a storage consent withdrawn
		// in the same request then erases what it covers.
		if err := s.storeSecrets(tx, c.ID, secrets, defs, now); err != nil {
			return err
		}
		c.Consents = nil // a retried transaction starts again
		for i, p := range prepared {
			r, err := p.Apply(tx, k, now)
			if err != nil {
				return errs.WithField(err, under(fmt.Sprintf("consents[%d]", i)))
			}
			if r != nil {
				c.Consents = append(c.Consents, r)
			}
		}
		return s.afterCreate(tx, c, now)
	})
	if err != nil {
		return nil, err
	}
	maskFields(c, defs)
	return c, s.attachMasked(ctx, []*Contact{c})
}

// under puts every field of an error from item i of a list under that item.
func under(prefix string) func(string) string {
	return func(field string) string {
		if field == "" {
			return prefix
		}
		return prefix + "." + field
	}
}

// optInField names the status field of an opt-in error as the request does;
// evidence fields stay as they are.
func optInField(field string) string {
	if field == "status" {
		return "opt_in_status"
	}
	return field
}

const contactSelect = `SELECT id, ref, kind, email, first_name, last_name, phone, country, region, language, stage, owner,
	fields, opt_in_status, created_at, updated_at, processing_stopped_at, erasure_requested_at, deliverability, retention_due_at,
	erased_at, previously_erased_at, repermission_lapsed_at FROM contacts c`

// scanContact returns a not-found error when the row is missing.
func scanContact(row store.Scanner) (*Contact, error) {
	var c Contact
	var fields string
	var created, updated int64
	var stopped, erasure, retentionDue, erased, previously, lapsed sql.NullInt64
	err := row.Scan(&c.ID, &c.LedgerRef, &c.Kind, &c.Email, &c.FirstName, &c.LastName, &c.Phone, &c.Country, &c.Region,
		&c.Language, &c.Stage, &c.Owner, &fields, &c.OptInStatus, &created, &updated, &stopped, &erasure, &c.Deliverability, &retentionDue,
		&erased, &previously, &lapsed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("contact", "")
	}
	if err != nil {
		return nil, fmt.Errorf("contact: read: %w", err)
	}
	c.ProcessingStoppedAt, c.ErasureRequestedAt, c.RetentionDueAt = optionalTime(stopped), optionalTime(erasure), optionalTime(retentionDue)
	c.ErasedAt, c.PreviouslyErasedAt, c.RepermissionLapsedAt = optionalTime(erased), optionalTime(previously), optionalTime(lapsed)
	c.Fields = map[string]any{}
	if err := json.Unmarshal([]byte(fields), &c.Fields); err != nil {
		return nil, fmt.Errorf("contact: decode fields of %s: %w", c.ID, err)
	}
	c.CreatedAt, c.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return &c, nil
}

func maskFields(c *Contact, defs map[string]*FieldDefinition) {
	for name, v := range c.Fields {
		if d := defs[name]; d != nil && d.Sensitive {
			c.Fields[name] = d.MaskValue(v)
		}
	}
}

// Get returns one contact with sensitive fields masked, or a not-found error.
func (s *Service) Get(ctx context.Context, id string) (*Contact, error) {
	c, _, err := ReadIn(ctx, s.DB.Read, id)
	return c, err
}

// Named returns the contacts of ids by id, for a page that names them
// (the access log): the core fields only, Fields left empty so that no
// sensitive value is read. An id with no contact (deleted) is absent from
// the map; no ids is an empty map.
func (s *Service) Named(ctx context.Context, ids []string) (map[string]*Contact, error) {
	out, err := s.byID(ctx, ids)
	for _, c := range out {
		c.Fields = map[string]any{}
	}
	return out, err
}

// checkNotLocked refuses, with a 423, any edit of a contact who asked to
// stop processing (R9) or whose personal data was erased (R10).
func checkNotLocked(tx *store.Tx, id string) error {
	var stopped, erased bool
	if err := tx.QueryRow(`SELECT processing_stopped_at IS NOT NULL, erased_at IS NOT NULL FROM contacts WHERE id = $1`, id).Scan(&stopped, &erased); err != nil {
		return fmt.Errorf("contact: read lock: %w", err)
	}
	if erased {
		return contactstate.ErrErased()
	}
	if stopped {
		return contactstate.ErrProcessingStopped()
	}
	return nil
}

// Update applies in to the contact. The opt-in status is not changed here
// (see consent.Service.SetOptIn). A new address that was erased or deleted
// before is refused as creation refuses it (checkAddressChange).
func (s *Service) Update(ctx context.Context, id string, in Input) (*Contact, error) {
	defs, err := s.fieldMap(ctx)
	if err != nil {
		return nil, err
	}
	armed := false
	if in.Email != nil {
		if armed, err = suppression.Armed(ctx, s.DB); err != nil {
			return nil, err
		}
	}
	var out *Contact
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		c, err := scanContact(tx.QueryRow(contactSelect+" WHERE id = $1", id))
		if err != nil {
			return err
		}
		if err := checkNotLocked(tx, c.ID); err != nil {
			return err
		}
		before := snapshotOf(c)
		secrets, err := in.apply(c, defs)
		if err != nil {
			return err
		}
		if err := checkAddressChange(tx, before.profile.Email, c.Email, armed); err != nil {
			return err
		}
		if err := checkStorageTx(tx, c.ID, in.Fields, defs); err != nil {
			return err
		}
		if err := s.storeSecrets(tx, c.ID, secrets, defs, s.now()); err != nil {
			return err
		}
		c.UpdatedAt = s.now()
		if err := updateTx(tx, before, c, secrets, c.UpdatedAt); err != nil {
			return err
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	maskFields(out, defs)
	return out, s.attachMasked(ctx, []*Contact{out})
}

// Delete removes the contact with its consent records and opt-in history,
// as DeleteTx does, in one transaction. The front ends delete through
// erasure.Service.Delete, which also removes what imports keep of the
// address.
func (s *Service) Delete(ctx context.Context, id string, actor consent.Actor) error {
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := DeleteTx(tx, id, actor, s.now())
		return err
	})
}

// DeleteTx removes the contact with its consent records and opt-in
// history inside tx, and appends a deletion event to the ledger so that
// verification knows the contact is gone on purpose, and writes the
// contact.deleted event. Like an erasure, it
// leaves a suppression entry for the address (so that it cannot come back
// silently), erases the address from the requests that hold it
// (requests.ForgetAddressesTx), and writes a line in the erasure log. It
// returns the address the contact had ("" for a contact erased before),
// for what else must forget it (erasure.DeleteTx); a not-found error when
// there is no such contact, and a refusal naming the hold while a legal
// hold is active.
func DeleteTx(tx *store.Tx, id string, actor consent.Actor, now time.Time) (string, error) {
	return deleteTx(tx, id, actor, now, "")
}

// RemovedByUndo is the erasure log's rule, and the contact.deleted event's
// reason, for a contact the undo of an import removed.
const RemovedByUndo = "import_undone"

// RemoveImportedTx removes a contact the import importID created, as
// DeleteTx does (the ledger and the erasure log record it), but leaves no
// suppression entry: undoing an import takes back a mistake, and the
// corrected file may bring the address in again. The erasure log's line
// and the contact.deleted event say so (RemovedByUndo, with the import's
// id), so that a receiver tells the removal from a deletion asked for as
// such.
func RemoveImportedTx(tx *store.Tx, id, importID string, actor consent.Actor, now time.Time) error {
	_, err := deleteTx(tx, id, actor, now, importID)
	return err
}

// deleteTx deletes the contact and returns the address it had; undoneImport
// is the import whose undo removes it, "" for a deletion asked for as
// such, which leaves a suppression entry.
func deleteTx(tx *store.Tx, id string, actor consent.Actor, now time.Time, undoneImport string) (string, error) {
	suppress, rule := undoneImport == "", ""
	if !suppress {
		rule = RemovedByUndo
	}
	k, err := contactstate.Load(tx, id)
	if err != nil {
		return "", err
	}
	active, err := holds.ActiveTx(tx, id, now)
	if err != nil {
		return "", err
	}
	if len(active) > 0 {
		return "", holds.ErrHeld(active[0])
	}
	var email string
	if err := tx.Row(`SELECT email FROM contacts WHERE id = $1`, id).Scan(&email); err != nil {
		return "", fmt.Errorf("contact: read: %w", err)
	}
	if k.Erased {
		email = ""
	}
	if email != "" && suppress {
		if err := suppression.AddTx(tx, email, suppression.Deleted, now); err != nil {
			return "", err
		}
		if err := requests.ForgetAddressesTx(tx, []string{id}, []string{email}, now); err != nil {
			return "", err
		}
	}
	if err := suppression.LogTx(tx, &suppression.Entry{ContactID: id, At: now, Action: suppression.Deleted, Rule: rule, ImportID: undoneImport,
		Actor: actor}); err != nil {
		return "", err
	}
	if _, err := ledger.Append(tx, &ledger.Event{RecordedAt: store.Micros(now), Kind: ledger.KindContactDeleted, ContactRef: k.Ref,
		ActorKind: actor.Kind, ActorID: actor.ID}); err != nil {
		return "", err
	}
	if err := events.Emit(tx, events.ContactDeleted, id, events.ContactDeletedData{ContactID: id, ActorKind: actor.Kind, Reason: rule,
		ImportID: undoneImport}, now); err != nil {
		return "", err
	}
	if err := campaign.ForgetContactsTx(tx, []string{id}); err != nil {
		return "", err
	}
	if err := mail.ForgetContact(tx, id); err != nil {
		return "", err
	}
	tx.Fence(id) // no campaign message goes to a deleted contact
	if _, err := tx.Exec(`DELETE FROM contacts WHERE id = $1`, id); err != nil {
		return "", fmt.Errorf("contact: delete: %w", err)
	}
	return email, nil
}

// checkSuppressed refuses, inside tx, a new contact whose address was
// erased or deleted before, unless the same request grants a new explicit
// consent (explicit). It returns when the address was erased, or nil when
// it never was or nothing can be suppressed yet (armed false:
// suppression.Armed). The refusal (field "email", code "address_erased")
// tells an operator's client why; the public webform says nothing of it.
func checkSuppressed(tx *store.Tx, c *Contact, armed, explicit bool) (*time.Time, error) {
	if !armed {
		return nil, nil
	}
	erased, err := suppression.CheckTx(tx, c.Email)
	if err != nil || erased == nil {
		return nil, err
	}
	if !explicit {
		return nil, errs.Refused("address_erased", "email", "this address was erased on %s; it can be added again only with a new explicit consent "+
			"(a consent granted on the legal basis consent) in the same request", erased.Format(time.DateOnly))
	}
	return erased, nil
}

// checkAddressChange refuses, inside tx, changing a contact's address from
// old to an address that was erased or deleted before, with the refusal
// creation gives (field "email", code "address_erased"). An erased address
// comes back only on a contact created with a new explicit consent in the
// same request; a change of address carries no consent, so it is always
// refused, and nothing of the change is written. Changing only the case or
// spaces of the contact's own address is no change of address.
func checkAddressChange(tx *store.Tx, from, to string, armed bool) error {
	if !armed || suppression.Normalize(from) == suppression.Normalize(to) {
		return nil
	}
	erased, err := suppression.CheckTx(tx, to)
	if err != nil || erased == nil {
		return err
	}
	return errs.Refused("address_erased", "email", "this address was erased on %s; it can be added again only by creating a contact "+
		"with a new explicit consent (a consent granted on the legal basis consent) in the same request, not by changing an address",
		erased.Format(time.DateOnly))
}

// notePreviouslyErased marks a contact just inserted whose address was
// erased before, at erased (nil: it never was).
func notePreviouslyErased(tx *store.Tx, c *Contact, erased *time.Time) error {
	if erased == nil {
		return nil
	}
	c.PreviouslyErasedAt = erased
	return contactstate.SetPreviouslyErasedTx(tx, c.ID, *erased)
}

// ListQuery selects a page of contacts in creation order.
type ListQuery struct {
	Limit  int    // 1 to 500; 0 means 50
	After  string // the id of the last contact of the previous page
	Email  string // exact look-up, regardless of case
	Filter string // a condition (docs/conditions.md); empty means all
	// Asker is who asks: only one who may reveal sensitive values can
	// compare them with a value in Filter, and each such question is
	// written to the access log.
	Asker Asker
}

// List returns one page of contacts and the cursor for the next page, empty
// on the last page. Paging is by key, not offset, so every page costs the
// same however deep it is.
func (s *Service) List(ctx context.Context, q ListQuery) ([]*Contact, string, error) {
	out, next, _, err := s.list(ctx, q, false)
	return out, next, err
}

// ListCounted is List with the number of contacts the query matches on
// every page, not only this one, counted from the same reading of its
// condition, so that a look-up of a sensitive value is logged once.
func (s *Service) ListCounted(ctx context.Context, q ListQuery) ([]*Contact, string, int64, error) {
	return s.list(ctx, q, true)
}

func (s *Service) list(ctx context.Context, q ListQuery, count bool) ([]*Contact, string, int64, error) {
	switch {
	case q.Limit == 0:
		q.Limit = 50
	case q.Limit < 1 || q.Limit > 500:
		return nil, "", 0, errs.Invalid("limit", "must be between 1 and 500")
	}
	if err := errs.IDCursor("after", q.After); err != nil {
		return nil, "", 0, err
	}
	sel, err := s.Select(ctx, q.Filter, q.Asker)
	if err != nil {
		return nil, "", 0, err
	}
	if err := sel.logLookups(ctx); err != nil {
		return nil, "", 0, err
	}
	if q.Email != "" {
		sel.and("email_key = $N", strings.ToLower(strings.TrimSpace(q.Email)))
	}
	var total int64
	if count {
		if total, err = sel.Count(ctx); err != nil {
			return nil, "", 0, err
		}
	}
	out, err := sel.page(ctx, q.After, q.Limit+1, nil, false)
	if err != nil {
		return nil, "", 0, err
	}
	next := ""
	if len(out) > q.Limit {
		out = out[:q.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, total, nil
}
