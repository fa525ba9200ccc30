package contactstate

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// Profile is what a contact's row holds besides its state: the core fields
// and the custom fields (sensitive values are stored apart, encrypted). The
// contact package checks and composes it.
type Profile struct {
	ID, Ref, Kind, Email                    string
	FirstName, LastName, Phone              string
	Country, Region, Language, Stage, Owner string
	Fields                                  map[string]any
}

// CodeEmailTaken is the conflict of an address another contact has.
const CodeEmailTaken = "email_taken"

// InsertTx stores a new contact with opt-in status optIn and
// deliverability ok. optIn is none (R6) unless the caller records, in the
// same transaction, the change that sets it (consent.ApplyOptIn with
// Stored): the row is then written once. An address already in use, in any case, is a conflict
// on "email" (CodeEmailTaken), reported as the write's outcome: on
// PostgreSQL the statement is queued for the transaction's next round trip.
func InsertTx(tx *store.Tx, p *Profile, optIn string, now time.Time) error {
	fieldsJSON, err := json.Marshal(p.Fields)
	if err != nil {
		return fmt.Errorf("contactstate: encode fields: %w", err)
	}
	return tx.ExecLater(func(err error) error { return rowError(err, "create") }, `INSERT INTO contacts (id, ref, kind, email, email_key,
		first_name, last_name, phone, country, region, language, stage, owner, fields, opt_in_status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)`,
		p.ID, p.Ref, p.Kind, p.Email, strings.ToLower(p.Email), p.FirstName, p.LastName, p.Phone, p.Country,
		p.Region, p.Language, p.Stage, p.Owner, string(fieldsJSON), optIn, store.Micros(now))
}

// UpdateProfileTx writes p's core and custom fields to its row; the state
// columns are left as they are.
func UpdateProfileTx(tx *store.Tx, p *Profile, now time.Time) error {
	fieldsJSON, err := json.Marshal(p.Fields)
	if err != nil {
		return fmt.Errorf("contactstate: encode fields: %w", err)
	}
	_, err = tx.Exec(`UPDATE contacts SET kind = $2, email = $3, email_key = $4, first_name = $5, last_name = $6, phone = $7,
		country = $8, region = $9, language = $10, stage = $11, owner = $12, fields = $13, updated_at = $14 WHERE id = $1`,
		p.ID, p.Kind, p.Email, strings.ToLower(p.Email), p.FirstName, p.LastName, p.Phone, p.Country, p.Region,
		p.Language, p.Stage, p.Owner, string(fieldsJSON), store.Micros(now))
	return rowError(err, "update")
}

// RemoveFieldTx deletes one key from a contact's custom fields.
func RemoveFieldTx(tx *store.Tx, id, field string) error {
	q := `UPDATE contacts SET fields = json_remove(fields, $2) WHERE id = $1`
	arg := "$." + field
	if tx.Dialect() == store.Postgres {
		q, arg = `UPDATE contacts SET fields = fields - $2::text WHERE id = $1`, field
	}
	if _, err := tx.Exec(q, id, arg); err != nil {
		return fmt.Errorf("contactstate: remove %s: %w", field, err)
	}
	return nil
}

func rowError(err error, what string) error {
	if store.IsUniqueViolation(err) {
		return errs.Conflict(CodeEmailTaken, "email", "a contact with this email address already exists")
	}
	if err != nil {
		return fmt.Errorf("contactstate: %s: %w", what, err)
	}
	return nil
}

// ErasedEmail is the placeholder an erased contact's address becomes: not
// an address, unique per contact so that the address column stays unique.
func ErasedEmail(id string) string { return "erased-" + id }

// EraseProfileTx replaces the contact's core fields with the remainder of
// an erasure (R10) and marks the contact erased, as MarkErasedTx does, in
// one statement: the address becomes ErasedEmail, names, phone, language,
// stage and owner are blanked, country and region are set to the given
// values (blank unless the operator keeps them), and the custom fields
// become fields (those that identify no one). The statement is queued
// (store.Tx.ExecLater).
func EraseProfileTx(tx *store.Tx, id, country, region string, fields map[string]any, now time.Time) error {
	fieldsJSON, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("contactstate: encode fields: %w", err)
	}
	email := ErasedEmail(id)
	return tx.ExecLater(store.Prefix("contactstate: erase profile"), `UPDATE contacts SET email = $2, email_key = $2, first_name = '',
		last_name = '', phone = '', country = $3, region = $4, language = '', stage = '', owner = '', fields = $5, updated_at = $6,
		erased_at = COALESCE(erased_at, $6) WHERE id = $1`, id, email, country, region, string(fieldsJSON), store.Micros(now))
}

// SetPreviouslyErasedTx notes that the contact's address was erased
// before, at at, and came back with a new explicit consent.
func SetPreviouslyErasedTx(tx *store.Tx, id string, at time.Time) error {
	return tx.ExecLater(store.Prefix("contactstate: note earlier erasure"),
		`UPDATE contacts SET previously_erased_at = $2 WHERE id = $1`, id, store.Micros(at))
}
