package contact

import (
	"slices"
	"time"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// correctable are the core fields a contact may correct themselves on the
// preferences page (GDPR Art. 16). The address is not among them: it is how
// the contact is known and reached, and the confirmation of a change goes
// to it, so a user changes it.
var correctable = []string{"first_name", "last_name", "phone", "country", "region"}

// CorrectableFields returns the core fields a contact may correct
// themselves, in the order forms show them.
func CorrectableFields() []CoreField {
	out := make([]CoreField, 0, len(correctable))
	for _, name := range correctable {
		f, _ := LookupCoreField(name)
		out = append(out, f)
	}
	return out
}

// CheckCorrection returns value as a correction of field would store it
// (trimmed, a country code in capitals), or an invalid-input error on
// "profile.FIELD" saying why it cannot be stored, or that the contact may
// not correct that field.
func CheckCorrection(field, value string) (string, error) {
	f, ok := LookupCoreField(field)
	if !ok || !slices.Contains(correctable, field) {
		return "", errs.Invalid("profile."+field, "is not a detail you can correct here")
	}
	var in Input
	f.Set(&in, value)
	var c Contact
	if err := in.applyCore(&c); err != nil {
		return "", errs.WithField(err, errs.Field("profile."+field))
	}
	return f.Value(&c), nil
}

// CorrectTx applies a contact's own corrections (field: new value) inside
// tx. It works on a record whose processing was stopped too: restricting
// processing does not take away the right to have one's data corrected
// (GDPR Art. 16 and 18(1)(a)). It returns a not-found error for a contact
// that does not exist, and the error of CheckCorrection for a bad value.
func (s *Service) CorrectTx(tx *store.Tx, id string, values map[string]string, now time.Time) error {
	c, err := scanContact(tx.QueryRow(contactSelect+" WHERE id = $1", id))
	if err != nil {
		return err
	}
	var in Input
	for field, v := range values {
		if _, err := CheckCorrection(field, v); err != nil {
			return err
		}
		f, _ := LookupCoreField(field)
		f.Set(&in, v)
	}
	before := snapshotOf(c)
	if err := in.applyCore(c); err != nil {
		return err
	}
	return updateTx(tx, before, c, nil, now)
}
