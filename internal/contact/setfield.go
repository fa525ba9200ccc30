package contact

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// The address is not among the fields a rule may set: it is how the contact
// is known and reached, and must stay unique; a user changes it.
var unsettable = []string{"email"}

// CheckSetValue returns value as SetFieldTx would store it in the field
// name (a core field other than the address, or a custom field defined in
// defs), or an invalid-input error on "field" (no such field, or a
// sensitive one, whose value only people may set) or on "value" (a value
// the field cannot hold). A workflow rule is checked with it when saved.
func CheckSetValue(name string, value any, defs map[string]*FieldDefinition) (any, error) {
	if f, ok := LookupCoreField(name); ok && !slices.Contains(unsettable, name) {
		s, ok := value.(string)
		if !ok {
			return nil, errs.Invalid("value", "must be a string")
		}
		var in Input
		f.Set(&in, s)
		var c Contact
		if err := in.applyCore(&c); err != nil {
			return nil, errs.WithField(err, errs.Field("value"))
		}
		return f.Value(&c), nil
	}
	d := defs[name]
	switch {
	case slices.Contains(unsettable, name):
		return nil, errs.Invalid("field", "is the contact's address, which only a user may change")
	case d == nil:
		return nil, errs.Invalid("field", "is not a core or custom field")
	case d.Sensitive:
		return nil, errs.Invalid("field", "is sensitive: only a person may set its value")
	case value == nil:
		return nil, errs.Required("value")
	}
	v, err := d.checkValue(value)
	return v, errs.WithField(err, errs.Field("value"))
}

// SetFieldTx sets one field of the contact inside tx, as a workflow rule
// does. It respects the record's lock: a contact who stopped processing
// or was erased is refused (errs.KindLocked), and so is a field tied to a
// purpose the contact withdrew consent to (R8). It returns a not-found
// error for a contact that does not exist, and CheckSetValue's error for
// a field or value that cannot be set.
func SetFieldTx(tx *store.Tx, id, name string, value any, now time.Time) error {
	defs, err := fieldDefsTx(tx)
	if err != nil {
		return err
	}
	v, err := CheckSetValue(name, value, defs)
	if err != nil {
		return err
	}
	c, err := scanContact(tx.QueryRow(contactSelect+" WHERE id = $1", id))
	if err != nil {
		return err
	}
	if err := checkNotLocked(tx, id); err != nil {
		return err
	}
	before := snapshotOf(c)
	if f, ok := LookupCoreField(name); ok {
		*f.field(c) = v.(string)
	} else {
		if err := checkStorageTx(tx, id, map[string]any{name: v}, defs); err != nil {
			return err
		}
		c.Fields[name] = v
	}
	if err := updateTx(tx, before, c, nil, now); err != nil {
		return fmt.Errorf("contact: set %s: %w", name, err)
	}
	return nil
}

// Many returns the contacts of ids by id, with sensitive fields masked as
// Get masks them, in one query for them all, for work done on a batch of
// contacts (workflow rules evaluating their conditions). Without
// sensitive, the fields kept encrypted are left out, a query less for a
// caller that reads none of them. An id with no contact (deleted) is
// absent from the map; no ids is an empty map.
func (s *Service) Many(ctx context.Context, ids []string, sensitive bool) (map[string]*Contact, error) {
	out, err := s.byID(ctx, ids)
	if err != nil || len(out) == 0 {
		return out, err
	}
	defs, err := s.fieldMap(ctx)
	if err != nil {
		return nil, err
	}
	found := make([]*Contact, 0, len(out))
	for _, c := range out {
		maskFields(c, defs)
		found = append(found, c)
	}
	if !sensitive {
		return out, nil
	}
	return out, s.attachMasked(ctx, found)
}

// byID reads the contacts of ids as they are stored, by id, in one query;
// an id with no contact is absent, and no ids is an empty map.
func (s *Service) byID(ctx context.Context, ids []string) (map[string]*Contact, error) {
	out := make(map[string]*Contact, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	ph, args := store.In(1, ids)
	found, err := store.QueryAll(ctx, s.DB.Read, scanContact, contactSelect+` WHERE id IN (`+ph+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("contact: read contacts: %w", err)
	}
	for _, c := range found {
		out[c.ID] = c
	}
	return out, nil
}
