package contact

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
)

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

// EraseTx erases, inside tx, the personal data that this package holds of
// the contacts in ids. The core fields go (the address becomes a
// placeholder, contactstate.ErasedEmail), except country and region when
// keep names them (settings.KeptAfterErasure); custom fields go unless a
// definition says they are neither personal nor sensitive (a field without
// a definition counts as personal); the sensitive values and the
// contacts' data keys are deleted, so that a copy of them anywhere, such
// as a backup, can no longer be decrypted with these keys
// (crypto-shredding). The contacts are marked erased. It returns the
// address each contact had, by id, for its suppression entry: empty for a
// contact already erased, absent for one that does not exist.
func EraseTx(tx *store.Tx, ids []string, keep []string, now time.Time) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	defs, err := fieldDefsTx(tx)
	if err != nil {
		return nil, err
	}
	ph, args := store.In(1, ids)
	found, err := store.QueryAll(context.Background(), tx, scanContact, contactSelect+` WHERE id IN (`+ph+`)`, args...)
	if err != nil {
		return nil, err
	}
	for _, c := range found {
		out[c.ID] = c.Email
		if c.Email == contactstate.ErasedEmail(c.ID) {
			out[c.ID] = ""
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
		if err := contactstate.EraseProfileTx(tx, c.ID, country, region, kept, now); err != nil {
			return nil, err
		}
	}
	return out, ShredTx(tx, ids)
}

// ShredTx deletes the sensitive values and the data keys of the contacts
// in ids inside tx. The rest of the records stay: a legal hold keeps them,
// but never needs what was classed sensitive.
func ShredTx(tx *store.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ph, args := store.In(1, ids)
	for _, table := range []string{"sensitive_values", "contact_keys"} {
		if err := tx.ExecLater(store.Prefix("contact: shred"), `DELETE FROM `+table+` WHERE contact_id IN (`+ph+`)`, args...); err != nil {
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
	return ShredTx(tx, []string{id})
}
