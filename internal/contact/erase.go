package contact

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
)

// Erasure is what erasing a contact's personal data (R10) found of it.
type Erasure struct {
	// Email is the address the contact had before, for its suppression
	// entry; empty when it was already erased.
	Email string
}

type fieldDefsMemo struct{}

// fieldDefsTx returns the field definitions inside tx, read once per
// transaction: a batch of erasures reads them once.
func fieldDefsTx(tx *store.Tx) (map[string]*FieldDefinition, error) {
	if m, ok := tx.Local(fieldDefsMemo{}).(map[string]*FieldDefinition); ok {
		return m, nil
	}
	m, err := fieldMapTx(tx)
	if err != nil {
		return nil, err
	}
	tx.SetLocal(fieldDefsMemo{}, m)
	return m, nil
}

// EraseTx erases, inside tx, the personal data of the contact that this
// package holds. The core fields go (the address becomes a placeholder,
// contactstate.ErasedEmail), except country and region when keep names
// them (settings.KeptAfterErasure); custom fields go unless a definition
// says they are neither personal nor sensitive (a field without a
// definition counts as personal); the sensitive values and the contact's
// data key are deleted, so that a copy of them anywhere, such as a backup,
// can no longer be decrypted with this key (crypto-shredding). A contact
// that does not exist is a not-found error.
func EraseTx(tx *store.Tx, id string, keep []string, now time.Time) (Erasure, error) {
	c, err := scanContact(tx.Row(contactSelect+" WHERE id = $1", id))
	if err != nil {
		return Erasure{}, err
	}
	defs, err := fieldDefsTx(tx)
	if err != nil {
		return Erasure{}, err
	}
	out := Erasure{}
	if c.Email != contactstate.ErasedEmail(id) {
		out.Email = c.Email
	}
	kept := map[string]any{}
	for name, v := range c.Fields {
		if d := defs[name]; d != nil && !d.Personal && !d.Sensitive {
			kept[name] = v
		}
	}
	country, region := "", ""
	if slices.Contains(keep, "country") {
		country = c.Country
	}
	if slices.Contains(keep, "region") {
		region = c.Region
	}
	if err := contactstate.EraseProfileTx(tx, id, country, region, kept, now); err != nil {
		return Erasure{}, err
	}
	return out, ShredTx(tx, id)
}

// ShredTx deletes the contact's sensitive values and its data key inside
// tx. The rest of the record stays: a legal hold keeps it, but never needs
// what was classed sensitive.
func ShredTx(tx *store.Tx, id string) error {
	for _, q := range []string{`DELETE FROM sensitive_values WHERE contact_id = $1`, `DELETE FROM contact_keys WHERE contact_id = $1`} {
		if err := tx.ExecLater(store.Prefix("contact: shred"), q, id); err != nil {
			return err
		}
	}
	return nil
}

// ShredFieldsTx is ShredTx for a record under a legal hold: the sensitive
// custom fields also leave the record's fields (they are stored apart, but
// a value written before its field became sensitive may remain).
func ShredFieldsTx(tx *store.Tx, id string, now time.Time) error {
	defs, err := fieldDefsTx(tx)
	if err != nil {
		return err
	}
	var raw string
	if err := tx.Row(`SELECT fields FROM contacts WHERE id = $1`, id).Scan(&raw); err != nil {
		return fmt.Errorf("contact: read fields: %w", err)
	}
	fields := map[string]any{}
	if err := json.Unmarshal([]byte(raw), &fields); err != nil {
		return fmt.Errorf("contact: decode fields of %s: %w", id, err)
	}
	for name := range fields {
		if d := defs[name]; d != nil && d.Sensitive {
			if err := contactstate.RemoveFieldTx(tx, id, name); err != nil {
				return err
			}
		}
	}
	return ShredTx(tx, id)
}
