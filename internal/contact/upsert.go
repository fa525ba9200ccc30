package contact

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/suppression"
	"github.com/consentry/consentry/internal/vault"
)

// Upsert is a contact's details from a public form (a webform), validated
// and ready to be written inside a transaction with everything else the
// submission causes. The form names the contact by email: a new address
// becomes a lead at once; for a known one, anyone could have filled in the
// form, so its values are only held (Hold) until the owner of the address
// confirms them (ApplyHeld).
type Upsert struct {
	// Language, when set, becomes the language of a contact the upsert
	// creates (the language of the form they filled in, so that their
	// emails are in it); a known contact's language is left as it is.
	Language string
	// NewConsent says the submission grants a consent on the legal basis
	// consent (consent.Prepared.ExplicitConsent): only then may an erased
	// address come back (R10).
	NewConsent bool

	s        *Service
	in       Input
	defs     map[string]*FieldDefinition
	emailKey string
	// known says the address was in use when PrepareUpsert looked, or
	// that Retry was told otherwise since: CreateOrFind then reads the
	// contact in the transaction. Otherwise it creates the contact
	// without reading, which on PostgreSQL saves the group commit a round
	// trip.
	known bool
	// armed: an address may be suppressed (suppression.Armed).
	armed bool
}

// UpsertResult says which contact a submission is about and whether it was
// created. When Key.ProcessingStopped is set the contact asked to stop
// processing (R9).
type UpsertResult struct {
	Key     contactstate.State
	Created bool
	// Contact is the contact as written when Created, or as read when
	// known (unchanged), with its sensitive values left out.
	Contact *Contact
	// Suppressed: the address was erased before and the submission
	// carried no new explicit consent; nothing was written, and the
	// caller writes nothing either.
	Suppressed bool
}

// PrepareUpsert validates in, which must carry an email, against the field
// definitions, and looks up whether the address is in use, reading outside
// any transaction so that the write stays short. Every field in (core or
// custom) that is set is written; callers leave out what a person left
// empty. The errors name the field ("email", "fields.NAME") and say why;
// nothing is written on error.
func (s *Service) PrepareUpsert(ctx context.Context, in Input) (*Upsert, error) {
	if in.Email == nil {
		return nil, errs.Required("email")
	}
	email, err := NormalizeEmail(*in.Email)
	if err != nil {
		return nil, err
	}
	in.Email, in.Kind = &email, nil // the address names the contact; a form never sets the kind
	defs, err := s.fieldMap(ctx)
	if err != nil {
		return nil, err
	}
	scratch := &Contact{Fields: map[string]any{}}
	if _, err := in.apply(scratch, defs); err != nil {
		return nil, err
	}
	u := &Upsert{s: s, in: in, defs: defs, emailKey: strings.ToLower(email)}
	if err := s.DB.Read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM contacts WHERE email_key = $1)`, u.emailKey).Scan(&u.known); err != nil {
		return nil, fmt.Errorf("contact: look up email: %w", err)
	}
	if u.armed, err = suppression.Armed(ctx, s.DB); err != nil {
		return nil, err
	}
	return u, nil
}

// Retry reports whether err, the outcome of a write that ran CreateOrFind,
// is the conflict of a contact created with the same address by another
// write after PrepareUpsert looked. CreateOrFind then looks the address up
// inside the transaction from now on, so the caller can run the write
// again, once.
func (u *Upsert) Retry(err error) bool {
	if e := errs.As(err); u.known || e == nil || e.Code != contactstate.CodeEmailTaken {
		return false
	}
	u.known = true
	return true
}

// CreateOrFind finds the contact by email inside tx (emails are unique
// regardless of case) and creates them as a lead, with opt-in status none,
// when there is none; the contact's AfterCreate hooks run as for any new
// contact. An address that was free when PrepareUpsert looked is not
// looked up again: the contact is created, and should another write have
// taken the address since, the write fails with the email_taken conflict,
// which Retry recognises.
// A known contact is not changed: it comes back as read, locked for the
// rest of tx, for the caller to hold the form's values (Hold) until the
// contact confirms them.
func (u *Upsert) CreateOrFind(tx *store.Tx, now time.Time) (UpsertResult, error) {
	if !u.known {
		return u.create(tx, now)
	}
	// Row: on PostgreSQL, the first read of a write transaction carries
	// its write lock along in one round trip.
	c, err := scanContact(tx.Row(contactSelect+" WHERE email_key = $1", u.emailKey))
	if errs.Is(err, errs.KindNotFound) {
		return u.create(tx, now)
	}
	if err != nil {
		return UpsertResult{}, err
	}
	k := contactstate.State{ID: c.ID, Ref: c.LedgerRef, OptIn: c.OptInStatus, ProcessingStopped: c.ProcessingStoppedAt != nil}
	return UpsertResult{Key: k, Contact: c}, nil
}

// Held is what a form carried for a known contact, held until they confirm
// it: the fields as posted, except that the values of sensitive fields are
// sealed with the contact's data key and bound to the hold, so that where
// it waits it is never readable. It is stored as JSON.
type Held struct {
	Input  Input             `json:"input"`
	Sealed map[string]string `json:"sealed,omitempty"` // sensitive field: sealed value
}

// Empty reports whether the hold sets no field.
func (h *Held) Empty() bool {
	in := h.Input
	return in.FirstName == nil && in.LastName == nil && in.Phone == nil && in.Country == nil && in.Region == nil &&
		len(in.Fields) == 0 && len(h.Sealed) == 0
}

// heldField names a sealed value: bound to the contact, the hold and the
// field, it opens for that hold only.
func heldField(holdID, field string) string { return "held/" + holdID + "/" + field }

// Hold returns the upsert's field values for the contact, as Held, to be
// kept under holdID until the contact confirms them. Sealing a sensitive
// value makes the contact's data key when they have none yet; nothing
// else is written. The address is not held: it names the contact.
func (u *Upsert) Hold(tx *store.Tx, contactID, holdID string, now time.Time) (Held, error) {
	h := Held{Input: u.in}
	h.Input.Email = nil
	h.Input.Fields = map[string]any{}
	var key []byte
	for name, v := range u.in.Fields {
		d := u.defs[name]
		if d == nil || !d.Sensitive || v == nil {
			h.Input.Fields[name] = v
			continue
		}
		nv, err := d.checkValue(v)
		if err != nil {
			return Held{}, err
		}
		if u.s.Vault == nil {
			return Held{}, ErrNoEncryption
		}
		if key == nil {
			if key, err = u.s.dataKey(tx, contactID, now); err != nil {
				return Held{}, err
			}
		}
		sealed, err := vault.Seal(key, contactID, heldField(holdID, name), valueText(nv))
		if err != nil {
			return Held{}, fmt.Errorf("contact: encrypt %s: %w", name, err)
		}
		if h.Sealed == nil {
			h.Sealed = map[string]string{}
		}
		h.Sealed[name] = sealed
	}
	if len(h.Input.Fields) == 0 {
		h.Input.Fields = nil
	}
	return h, nil
}

// ApplyHeld writes, inside tx, the fields held under holdID for the
// contact, as a form post about a known contact once did at once: only the
// fields held, except a field locked because the contact withdrew consent
// to storing it (R8), and a custom field removed or whose value no longer
// fits its definition since, which are left as they are. It returns the
// locked error of a contact who stopped processing (R9) and a not-found
// error when the contact is gone; nothing is written then.
func (s *Service) ApplyHeld(tx *store.Tx, contactID, holdID string, h Held, now time.Time) error {
	c, err := scanContact(tx.QueryRow(contactSelect+" WHERE id = $1", contactID))
	if err != nil {
		return err
	}
	if c.ProcessingStoppedAt != nil {
		return contactstate.ErrProcessingStopped()
	}
	defs, err := fieldMapTx(tx)
	if err != nil {
		return err
	}
	values := map[string]any{}
	for name, v := range h.Input.Fields {
		values[name] = v
	}
	if len(h.Sealed) > 0 {
		key, err := s.dataKey(tx, contactID, now)
		if err != nil {
			return err
		}
		for name, sealed := range h.Sealed {
			v, err := vault.Unseal(key, contactID, heldField(holdID, name), sealed)
			if err != nil {
				return fmt.Errorf("contact: open held %s: %w", name, err)
			}
			values[name] = v
		}
	}
	in := h.Input
	in.Email, in.Kind = nil, nil
	in.Fields = map[string]any{}
	for name, v := range values {
		d := defs[name]
		if d == nil {
			continue // removed since
		}
		if _, err := d.checkValue(v); err != nil {
			continue
		}
		err := checkStorageTx(tx, c.ID, map[string]any{name: v}, defs)
		if errs.Is(err, errs.KindLocked) {
			continue
		}
		if err != nil {
			return err
		}
		in.Fields[name] = v
	}
	before := snapshotOf(c)
	secrets, err := in.apply(c, defs)
	if err != nil {
		return err
	}
	if err := s.storeSecrets(tx, c.ID, secrets, defs, now); err != nil {
		return err
	}
	c.UpdatedAt = now
	return updateTx(tx, before, c, secrets, c.UpdatedAt)
}

func (u *Upsert) create(tx *store.Tx, now time.Time) (UpsertResult, error) {
	c := &Contact{ID: uuid.Must(uuid.NewV7()).String(), Kind: KindLead, Fields: map[string]any{}, OptInStatus: contactstate.OptInNone, Deliverability: contactstate.DeliverabilityOK,
		LedgerRef: newRef(), CreatedAt: now, UpdatedAt: now}
	secrets, err := u.in.apply(c, u.defs)
	if err != nil {
		return UpsertResult{}, err
	}
	if c.Language == "" {
		c.Language = u.Language
	}
	erased, err := checkSuppressed(tx, c, u.armed, u.NewConsent)
	if errs.Is(err, errs.KindRefused) {
		return UpsertResult{Suppressed: true}, nil
	}
	if err != nil {
		return UpsertResult{}, err
	}
	if err := insertTx(tx, c, erased, consent.Actor{Kind: consent.ActorContact}, consent.MethodWebform); err != nil {
		return UpsertResult{}, err
	}
	if err := u.s.storeSecrets(tx, c.ID, secrets, u.defs, now); err != nil {
		return UpsertResult{}, err
	}
	if err := u.s.afterCreate(tx, c, now); err != nil {
		return UpsertResult{}, err
	}
	return UpsertResult{Key: contactstate.State{ID: c.ID, Ref: c.LedgerRef, OptIn: contactstate.OptInNone}, Created: true, Contact: c}, nil
}

// profile is c as the contacts row holds it.
func (c *Contact) profile() *contactstate.Profile {
	return &contactstate.Profile{ID: c.ID, Ref: c.LedgerRef, Kind: c.Kind, Email: c.Email, FirstName: c.FirstName,
		LastName: c.LastName, Phone: c.Phone, Country: c.Country, Region: c.Region, Language: c.Language, Stage: c.Stage,
		Owner: c.Owner, Fields: c.Fields}
}

// afterCreate runs the creation hooks for a contact just inserted.
func (s *Service) afterCreate(tx *store.Tx, c *Contact, now time.Time) error {
	for _, hook := range s.createHooks {
		if err := hook(tx, c, now); err != nil {
			return err
		}
	}
	return nil
}

// fieldMapTx reads the field definitions inside tx, by name.
func fieldMapTx(tx *store.Tx) (map[string]*FieldDefinition, error) {
	list, err := store.QueryAll(context.Background(), tx, scanField, fieldSelect)
	if err != nil {
		return nil, fmt.Errorf("contact: read fields: %w", err)
	}
	m := make(map[string]*FieldDefinition, len(list))
	for _, f := range list {
		m[f.Name] = f
	}
	return m, nil
}
