package contact

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// Upsert is a contact's details from a public form (a webform), validated
// and ready to be written inside a transaction with everything else the
// submission causes. The form names the contact by email: a new address
// becomes a lead, a known one gets the fields the form carries.
type Upsert struct {
	// Language, when set, becomes the language of a contact the upsert
	// creates (the language of the form they filled in, so that their
	// emails are in it); a known contact's language is left as it is.
	Language string

	s        *Service
	in       Input
	defs     map[string]*FieldDefinition
	emailKey string
	// known says the address was in use when PrepareUpsert looked, or
	// that Retry was told otherwise since: Apply then reads the contact
	// in the transaction. Otherwise it creates the contact without
	// reading, which on PostgreSQL saves the group commit a round trip.
	known bool
}

// UpsertResult says which contact a submission is about and whether it was
// created. When Key.ProcessingStopped is set the contact asked to stop
// processing (R9) and nothing was written.
type UpsertResult struct {
	Key     contactstate.State
	Created bool
	// Contact is the contact as written, with its sensitive values left
	// out; nil when nothing was written.
	Contact *Contact
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
	return u, nil
}

// Retry reports whether err, the outcome of a write that ran Apply, is the
// conflict of a contact created with the same address by another write
// after PrepareUpsert looked. Apply then looks the address up inside the
// transaction from now on, so the caller can run the write again, once.
func (u *Upsert) Retry(err error) bool {
	if e := errs.As(err); u.known || e == nil || e.Code != contactstate.CodeEmailTaken {
		return false
	}
	u.known = true
	return true
}

// Apply finds the contact by email inside tx (emails are unique regardless
// of case) and creates them as a lead, with opt-in status none, when there
// is none; the creation hooks run as for any new contact.
// An address that was free when PrepareUpsert looked is not looked up
// again: the contact is created, and should another write have taken the
// address since, the write fails with the email_taken conflict, which
// Retry recognises.
// A known contact gets only the fields the upsert carries, except a field
// locked because the contact withdrew consent to storing it (R8), which is
// left as it is rather than refusing the whole submission. A contact whose
// processing is stopped is not changed at all.
func (u *Upsert) Apply(tx *store.Tx, now time.Time) (UpsertResult, error) {
	s := u.s
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
	k := contactstate.State{ID: c.ID, Ref: c.LedgerRef, OptIn: c.OptInStatus}
	if err := checkNotLocked(tx, c.ID); errs.Is(err, errs.KindLocked) {
		k.ProcessingStopped = true
		return UpsertResult{Key: k}, nil
	} else if err != nil {
		return UpsertResult{}, err
	}
	in := u.in
	in.Email = nil // the same address, perhaps in another case: keep the one stored
	in.Fields = map[string]any{}
	for name, v := range u.in.Fields {
		err := checkStorageTx(tx, c.ID, map[string]any{name: v}, u.defs)
		if errs.Is(err, errs.KindLocked) {
			continue
		}
		if err != nil {
			return UpsertResult{}, err
		}
		in.Fields[name] = v
	}
	secrets, err := in.apply(c, u.defs)
	if err != nil {
		return UpsertResult{}, err
	}
	if err := s.storeSecrets(tx, c.ID, secrets, u.defs, now); err != nil {
		return UpsertResult{}, err
	}
	c.UpdatedAt = now
	return UpsertResult{Key: k, Contact: c}, contactstate.UpdateProfileTx(tx, c.profile(), c.UpdatedAt)
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
	if err := contactstate.InsertTx(tx, c.profile(), c.CreatedAt); err != nil {
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
