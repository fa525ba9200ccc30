package contact

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/vault"
)

// The reads here take a store.Querier, so that a caller can read a contact
// together with the rest of its data in one snapshot (store.DB.Snapshot):
// an access export shows one consistent state, however long it takes.

// ReadIn returns the contact, with sensitive fields masked as Get masks
// them, and every field definition by name, reading through q. It returns
// a not-found error when there is no such contact.
func ReadIn(ctx context.Context, q store.Querier, id string) (*Contact, []*FieldDefinition, error) {
	c, err := scanContact(q.QueryRowContext(ctx, contactSelect+" WHERE id = $1", id))
	if err != nil {
		return nil, nil, err
	}
	defs, err := store.QueryAll(ctx, q, scanField, fieldSelect+" ORDER BY name")
	if err != nil {
		return nil, nil, fmt.Errorf("contact: list fields: %w", err)
	}
	byName := make(map[string]*FieldDefinition, len(defs))
	for _, d := range defs {
		byName[d.Name] = d
	}
	maskFields(c, byName)
	return c, defs, attachMaskedIn(ctx, q, []*Contact{c})
}

// OpenValuesIn returns the clear values of the contact's sensitive fields,
// by field, reading through q: the encrypted ones decrypted, and those
// still in the clear from before their field was made sensitive (waiting
// for the encryption job). A contact with none gets an empty map.
//
// It writes nothing: the caller must write an access-log entry for each
// value (LogAccessTx) before it shows any, as Reveal does in one
// transaction. An export reads in a snapshot, where it cannot write, and
// logs once the snapshot is read.
func (s *Service) OpenValuesIn(ctx context.Context, q store.Querier, contactID string, defs []*FieldDefinition) (map[string]string, error) {
	out := map[string]string{}
	var raw string
	if err := q.QueryRowContext(ctx, `SELECT fields FROM contacts WHERE id = $1`, contactID).Scan(&raw); err != nil {
		return nil, fmt.Errorf("contact: read fields of %s: %w", contactID, err)
	}
	fields := map[string]any{}
	if err := json.Unmarshal([]byte(raw), &fields); err != nil {
		return nil, fmt.Errorf("contact: decode fields of %s: %w", contactID, err)
	}
	for _, d := range defs {
		if v, ok := fields[d.Name]; ok && d.Sensitive && v != nil {
			out[d.Name] = valueText(v)
		}
	}
	type sealed struct{ field, ciphertext, wrapped string }
	rows, err := store.QueryAll(ctx, q, func(row store.Scanner) (sealed, error) {
		var v sealed
		return v, row.Scan(&v.field, &v.ciphertext, &v.wrapped)
	}, `SELECT v.field, v.ciphertext, k.wrapped FROM sensitive_values v JOIN contact_keys k ON k.contact_id = v.contact_id
		WHERE v.contact_id = $1 ORDER BY v.field`, contactID)
	if err != nil {
		return nil, fmt.Errorf("contact: read sensitive values: %w", err)
	}
	if len(rows) == 0 {
		return out, nil
	}
	if s.Vault == nil {
		return nil, ErrNoEncryption
	}
	key, err := s.Vault.Unwrap(contactID, rows[0].wrapped)
	if err != nil {
		return nil, fmt.Errorf("contact: open data key of %s: %w", contactID, err)
	}
	for _, r := range rows {
		if out[r.field], err = vault.Unseal(key, contactID, r.field, r.ciphertext); err != nil {
			return nil, fmt.Errorf("contact: decrypt %s of %s: %w", r.field, contactID, err)
		}
	}
	return out, nil
}
