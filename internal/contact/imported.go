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
)

// What an import does with a row whose address is already a contact's.
const (
	DuplicateSkip      = "skip"      // leave the contact as it is
	DuplicateFill      = "fill"      // set only the fields the contact has empty
	DuplicateOverwrite = "overwrite" // set every field the row has a value for
)

// DuplicatePolicies lists the policies, in the order forms offer them.
var DuplicatePolicies = []string{DuplicateSkip, DuplicateFill, DuplicateOverwrite}

// Why an imported row changed nothing (ImportOutcome.Skipped).
const (
	SkipErasedAddress = "erased_address"     // erased before, and the row carries no explicit consent collected since
	SkipDuplicate     = "duplicate"          // the address is a contact's, and the policy is skip: its fields are left (an opt-out is still applied)
	SkipLocked        = "processing_stopped" // the contact asked to stop processing (R9), or was erased
)

// Incoming is one contact as an import row brings it, checked by
// CheckIncoming.
type Incoming struct {
	// Input holds the fields the row has a value for; an empty cell is
	// left out, so it never clears a value.
	Input Input
	// OptInStatus is the status the row asks for: "" (none given), none,
	// single_opt_in_user or opt_out_user (R5, R6). A new contact starts at
	// it; a known contact only ever takes an opt-out from an import.
	OptInStatus string
	// NewConsentAt is the latest collection date of the consents the row
	// grants on the legal basis consent; zero when it grants none. An
	// erased address comes back only when this is after its erasure (R10):
	// a consent collected at or before the erasure is not a new one.
	NewConsentAt time.Time

	emailKey string
	scratch  *Contact // what the row sets, applied to an empty contact
}

// ImportOutcome says what ImportTx did with a row.
type ImportOutcome struct {
	Key     contactstate.State // the contact the row is about; zero when skipped
	Created bool
	Updated bool   // a known contact's fields or opt-in status changed
	Skipped string // why the row's fields were not written (Skip...); "" otherwise
	// With Skipped SkipDuplicate, Updated says the row's opt-out was
	// applied all the same: the policy is about fields, not a stop.

	// ErasedAt is when the contact's address was erased before: a new
	// contact that the row brings back with a new explicit consent, or a
	// known one that came back so earlier (PreviouslyErasedAt). Nil when it
	// never was. Of the row's consents, only those collected after it may
	// be written (Admits).
	ErasedAt *time.Time
}

// Admits reports whether a consent of the row collected at collected may
// be written for the contact of o: always, unless the address was erased
// (ErasedAt), and then only when it was collected after the erasure. The
// erasure ended whatever the person had agreed to before; an address
// comes back with the new consent that brought it back, not with the old
// ones of the same file.
func (o ImportOutcome) Admits(collected time.Time) bool { return newSince(o.ErasedAt, collected) }

// newSince reports whether something collected at collected is new since
// an erasure at erased (nil: never erased, and everything is): collected
// after it, not on it or before. A date without a time is midnight UTC,
// so a consent dated the day of the erasure is not new.
func newSince(erased *time.Time, collected time.Time) bool {
	return erased == nil || collected.After(*erased)
}

// FieldMap returns the field definitions by name, for a caller that
// checks many rows against them (CheckIncoming).
func (s *Service) FieldMap(ctx context.Context) (map[string]*FieldDefinition, error) {
	return s.fieldMap(ctx)
}

// CheckIncoming validates in against defs without reading or writing:
// the address, every field value and the opt-in status an import may set.
// The error names the field and says why.
func CheckIncoming(in *Incoming, defs map[string]*FieldDefinition) error {
	if in.Input.Email == nil {
		return errs.Required("email")
	}
	email, err := NormalizeEmail(*in.Input.Email)
	if err != nil {
		return err
	}
	in.Input.Email, in.emailKey = &email, strings.ToLower(email)
	switch in.OptInStatus {
	case "", contactstate.OptInNone, contactstate.SingleOptInUser, contactstate.OptOutUser:
	default:
		return errs.Invalid("opt_in_status", "an import sets only %s, %s or %s", contactstate.OptInNone, contactstate.SingleOptInUser,
			contactstate.OptOutUser)
	}
	in.scratch = &Contact{Fields: map[string]any{}}
	_, err = in.Input.apply(in.scratch, defs)
	return err
}

// Lookup is what an import knows of a chunk's addresses before it writes
// the chunk: the contacts that have them and, of the others, the time
// each was erased. It lets the chunk's new contacts be written without a
// read between them (store.Tx.Gather).
type Lookup struct {
	known  map[string]*Contact  // by email key
	erased map[string]time.Time // by email key, the unknown addresses only
}

// LookupTx reads, in two statements, the contacts that have the addresses
// of ins (checked by CheckIncoming) and, when suppression is armed, the
// suppression entries of the others.
func LookupTx(tx *store.Tx, ins []*Incoming, armed bool) (*Lookup, error) {
	l := &Lookup{known: map[string]*Contact{}, erased: map[string]time.Time{}}
	if len(ins) == 0 {
		return l, nil
	}
	keys := make([]string, len(ins))
	for i, in := range ins {
		keys[i] = in.emailKey
	}
	cond, args := store.Among(tx.Dialect(), 1, keys)
	found, err := store.QueryAll(context.Background(), tx, scanContact, contactSelect+" WHERE email_key "+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("contact: look up addresses: %w", err)
	}
	for _, c := range found {
		l.known[strings.ToLower(c.Email)] = c
	}
	if !armed {
		return l, nil
	}
	var unknown []string
	for _, in := range ins {
		if l.known[in.emailKey] == nil {
			unknown = append(unknown, in.emailKey)
		}
	}
	if l.erased, err = suppression.CheckManyTx(tx, unknown); err != nil {
		return nil, err
	}
	return l, nil
}

// Known reports whether in's address was a contact's when the lookup was
// made.
func (l *Lookup) Known(in *Incoming) bool { return l.known[in.emailKey] != nil }

// keptOut reports whether in's address was erased, at erased, and the row
// carries no explicit consent collected after that: the row is then
// skipped (SkipErasedAddress). Never erased is never kept out.
func (in *Incoming) keptOut(erased *time.Time) bool {
	return !newSince(erased, in.NewConsentAt)
}

// erasedAt is when in's address was erased, as the lookup found it; nil
// when it never was (or is a contact's).
func (l *Lookup) erasedAt(in *Incoming) *time.Time {
	if at, ok := l.erased[in.emailKey]; ok {
		return &at
	}
	return nil
}

// ImportTx writes one row of an import inside tx, after CheckIncoming:
// a new address becomes a contact (unless it was erased and the row
// carries no explicit consent collected after the erasure); a known one is left, filled in or
// overwritten as policy says. A contact who stopped processing or was
// erased is never changed. The contact's creation hooks run for a new
// contact, as for any other.
//
// look, from LookupTx for a chunk that holds in, stands in for reading the
// contact and the suppression entry of in's address: a new contact is
// then written without a read. Nil reads them.
func (s *Service) ImportTx(tx *store.Tx, in *Incoming, look *Lookup, defs map[string]*FieldDefinition, policy string, armed bool,
	actor consent.Actor, ev consent.Evidence, now time.Time) (ImportOutcome, error) {
	if look == nil {
		var err error
		if look, err = LookupTx(tx, []*Incoming{in}, armed); err != nil {
			return ImportOutcome{}, err
		}
	}
	c := look.known[in.emailKey]
	if c == nil {
		return s.importNewTx(tx, in, defs, look.erasedAt(in), actor, ev, now)
	}
	p, err := planKnown(tx, in, c, defs, policy)
	if err != nil || (p.out.Skipped != "" && !p.optOut) {
		return p.out, err
	}
	k := p.out.Key
	if err := s.storeSecrets(tx, c.ID, p.secrets, defs, now); err != nil {
		return ImportOutcome{}, err
	}
	if p.fieldsChanged {
		c.UpdatedAt = now
		if err := updateTx(tx, p.before, c, p.secrets, now); err != nil {
			return ImportOutcome{}, err
		}
	}
	if p.optOut {
		ch, err := s.Consent.ApplyOptIn(tx, k, consent.OptInInput{Status: contactstate.OptOutUser, Channel: consent.ChannelUser,
			Actor: actor, Evidence: ev}, now)
		if err != nil {
			return ImportOutcome{}, errs.WithField(err, optInField)
		}
		if ch != nil {
			k.OptIn = ch.To
		}
	}
	p.out.Key = k
	return p.out, nil
}

// knownPlan is what a row would do to a known contact: its outcome, and
// what ImportTx then writes.
type knownPlan struct {
	out           ImportOutcome
	before        snapshot
	secrets       map[string]*string
	fieldsChanged bool
	optOut        bool // the row opts the contact out
}

// planKnown decides, reading only, what in does to c, the contact that
// has its address, under policy: locked rows are skipped; a skip-duplicate
// row leaves the fields (SkipDuplicate) but still opts the contact out
// when it says so, as an opt-out is the person's choice whatever the
// policy; otherwise c takes the row's fields as the policy allows (in
// memory), and the plan says whether anything would change.
func planKnown(tx *store.Tx, in *Incoming, c *Contact, defs map[string]*FieldDefinition, policy string) (knownPlan, error) {
	k := contactstate.State{ID: c.ID, Ref: c.LedgerRef, Email: c.Email, OptIn: c.OptInStatus,
		ProcessingStopped: c.ProcessingStoppedAt != nil, Erased: c.ErasedAt != nil}
	if k.ProcessingStopped || k.Erased {
		return knownPlan{out: ImportOutcome{Skipped: SkipLocked}}, nil
	}
	optOut := in.OptInStatus == contactstate.OptOutUser && !contactstate.OptedOut(k.OptIn)
	if policy == DuplicateSkip {
		return knownPlan{out: ImportOutcome{Key: k, Skipped: SkipDuplicate, Updated: optOut, ErasedAt: c.PreviouslyErasedAt}, optOut: optOut}, nil
	}
	input := in.Input
	if policy == DuplicateFill {
		var err error
		if input, err = emptyOnly(tx, c, input, defs); err != nil {
			return knownPlan{}, err
		}
	}
	p := knownPlan{before: snapshotOf(c)}
	var err error
	if p.secrets, err = input.apply(c, defs); err != nil {
		return knownPlan{}, err
	}
	if err := checkStorageTx(tx, c.ID, input.Fields, defs); err != nil {
		return knownPlan{}, err
	}
	p.fieldsChanged = len(changedFields(p.before, c, p.secrets)) > 0
	p.optOut = optOut
	p.out = ImportOutcome{Key: k, Updated: p.fieldsChanged || p.optOut, ErasedAt: c.PreviouslyErasedAt}
	return p, nil
}

// PlanImportTx says what ImportTx would do with in, reading only: the
// outcome it would return (a new contact's Key is zero), or the error
// that would refuse the row. A dry run counts rows with it.
func (s *Service) PlanImportTx(tx *store.Tx, in *Incoming, look *Lookup, defs map[string]*FieldDefinition, policy string) (ImportOutcome, error) {
	c := look.known[in.emailKey]
	if c == nil {
		scratch := &Contact{Fields: map[string]any{}}
		if _, err := in.Input.apply(scratch, defs); err != nil {
			return ImportOutcome{}, err
		}
		erased := look.erasedAt(in)
		if in.keptOut(erased) {
			return ImportOutcome{Skipped: SkipErasedAddress}, nil
		}
		return ImportOutcome{Created: true, ErasedAt: erased}, nil
	}
	p, err := planKnown(tx, in, c, defs, policy)
	return p.out, err
}

// importNewTx writes a row whose address is no contact's; erased is when
// the address was erased, nil if it never was.
func (s *Service) importNewTx(tx *store.Tx, in *Incoming, defs map[string]*FieldDefinition, erased *time.Time,
	actor consent.Actor, ev consent.Evidence, now time.Time) (ImportOutcome, error) {
	c := &Contact{ID: uuid.Must(uuid.NewV7()).String(), Kind: KindLead, Fields: map[string]any{}, OptInStatus: contactstate.OptInNone,
		Deliverability: contactstate.DeliverabilityOK, LedgerRef: newRef(), CreatedAt: now, UpdatedAt: now}
	secrets, err := in.Input.apply(c, defs)
	if err != nil {
		return ImportOutcome{}, err
	}
	if in.keptOut(erased) {
		return ImportOutcome{Skipped: SkipErasedAddress}, nil
	}
	setOptIn := in.OptInStatus != "" && in.OptInStatus != contactstate.OptInNone
	if setOptIn {
		c.OptInStatus = in.OptInStatus // checked below, with the change's history; a refusal undoes the insert
	}
	if err := insertTx(tx, c, erased, actor, ev.Method); err != nil {
		return ImportOutcome{}, err
	}
	k := contactstate.State{ID: c.ID, Ref: c.LedgerRef, Email: c.Email, OptIn: contactstate.OptInNone}
	if setOptIn {
		ch, err := s.Consent.ApplyOptIn(tx, k, consent.OptInInput{Status: in.OptInStatus, Channel: consent.ChannelUserCreate,
			Actor: actor, Evidence: ev, Stored: true}, now)
		if err != nil {
			return ImportOutcome{}, errs.WithField(err, optInField)
		}
		if ch != nil {
			c.OptInStatus, k.OptIn = ch.To, ch.To
		}
	}
	if err := s.storeSecrets(tx, c.ID, secrets, defs, now); err != nil {
		return ImportOutcome{}, err
	}
	if err := s.afterCreate(tx, c, now); err != nil {
		return ImportOutcome{}, err
	}
	return ImportOutcome{Key: k, Created: true, ErasedAt: erased}, nil
}

// emptyOnly returns the part of in that sets what c has empty: core
// fields that are blank, custom fields never set, sensitive fields with no
// value stored. The address is the contact's already.
func emptyOnly(tx *store.Tx, c *Contact, in Input, defs map[string]*FieldDefinition) (Input, error) {
	out := Input{}
	for _, f := range []struct {
		have string
		from *string
		to   **string
	}{
		{c.FirstName, in.FirstName, &out.FirstName}, {c.LastName, in.LastName, &out.LastName}, {c.Phone, in.Phone, &out.Phone},
		{c.Country, in.Country, &out.Country}, {c.Region, in.Region, &out.Region}, {c.Language, in.Language, &out.Language},
		{c.Stage, in.Stage, &out.Stage}, {c.Owner, in.Owner, &out.Owner},
	} {
		if f.have == "" {
			*f.to = f.from
		}
	}
	if len(in.Fields) == 0 {
		return out, nil
	}
	stored := map[string]bool{}
	rows, err := tx.Query(`SELECT field FROM sensitive_values WHERE contact_id = $1`, c.ID)
	if err != nil {
		return out, fmt.Errorf("contact: read stored values: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			return out, err
		}
		stored[f] = true
	}
	if err := rows.Err(); err != nil {
		return out, err
	}
	out.Fields = map[string]any{}
	for name, v := range in.Fields {
		_, set := c.Fields[name]
		if d := defs[name]; d != nil && d.Sensitive {
			set = stored[name]
		}
		if !set {
			out.Fields[name] = v
		}
	}
	return out, nil
}

// Values returns what the row sets as it would be stored, by field name,
// after CheckIncoming: core fields and custom fields in their checked
// form. Sensitive values are left out: a preview never shows them.
func (in *Incoming) Values() map[string]string {
	out := map[string]string{}
	if in.scratch == nil {
		return out
	}
	for _, f := range CoreFields {
		if v := f.Value(in.scratch); v != "" {
			out[f.Name] = v
		}
	}
	for name, v := range in.scratch.Fields {
		out[name] = valueText(v)
	}
	return out
}
