package contact

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/vault"
)

// ErrNoEncryption is returned when a sensitive value must be stored but no
// keyset is configured.
var ErrNoEncryption = errs.Conflict("encryption_not_configured", "",
	"field encryption is not configured: set CONSENTRY_KEYSET_FILE and CONSENTRY_MASTER_KEY")

// valueText is the text a sensitive value is encrypted as.
func valueText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// dataKey returns the contact's data key inside tx, making and storing one
// on first use.
func (s *Service) dataKey(tx *store.Tx, contactID string, now time.Time) ([]byte, error) {
	var wrapped string
	err := tx.QueryRow(`SELECT wrapped FROM contact_keys WHERE contact_id = $1`, contactID).Scan(&wrapped)
	if err == nil {
		return s.Vault.Unwrap(contactID, wrapped)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("contact: read data key: %w", err)
	}
	if err := s.CheckPrimaryTx(tx); err != nil {
		return nil, err
	}
	key, wrapped, keyID, err := s.Vault.NewDataKey(contactID)
	if err != nil {
		return nil, fmt.Errorf("contact: make data key: %w", err)
	}
	if _, err := tx.Exec(`INSERT INTO contact_keys (contact_id, wrapped, key_id, created_at) VALUES ($1, $2, $3, $4)`,
		contactID, wrapped, int64(keyID), store.Micros(now)); err != nil {
		return nil, fmt.Errorf("contact: store data key: %w", err)
	}
	return key, nil
}

// CheckPrimaryTx makes sure, inside tx, that new data keys are wrapped
// with the keyset key the database says is current: after a rotation on
// another machine, this instance's keyset file may be old, and a data key
// wrapped with a key about to be retired would be lost with it. Every
// maker of data keys (an import's file key too) calls it in the
// transaction that stores the key.
func (s *Service) CheckPrimaryTx(tx *store.Tx) error {
	var want int64
	err := tx.QueryRow(`SELECT primary_key_id FROM vault_state WHERE id = 1`).Scan(&want)
	if errors.Is(err, sql.ErrNoRows) {
		_, err = tx.Exec(`INSERT INTO vault_state (id, primary_key_id) VALUES (1, $1)`, int64(s.Vault.PrimaryKeyID()))
		return err
	}
	if err != nil {
		return fmt.Errorf("contact: read the current keyset key: %w", err)
	}
	if int64(s.Vault.PrimaryKeyID()) == want {
		return nil
	}
	if err := s.Vault.Reload(); err == nil && int64(s.Vault.PrimaryKeyID()) == want {
		return nil
	}
	return fmt.Errorf("contact: this instance's keyset is not the current one (the database expects key %d); install the rotated keyset file and restart", want)
}

// storeSecrets encrypts the sensitive values of a contact inside tx, with
// their masks and blind indexes; a nil value removes the field's value.
func (s *Service) storeSecrets(tx *store.Tx, contactID string, secrets map[string]*string, defs map[string]*FieldDefinition, now time.Time) error {
	if len(secrets) == 0 {
		return nil
	}
	var key []byte
	for field, v := range secrets {
		if v == nil {
			if _, err := tx.Exec(`DELETE FROM sensitive_values WHERE contact_id = $1 AND field = $2`, contactID, field); err != nil {
				return fmt.Errorf("contact: remove sensitive value: %w", err)
			}
			continue
		}
		if s.Vault == nil {
			return ErrNoEncryption
		}
		if key == nil {
			var err error
			if key, err = s.dataKey(tx, contactID, now); err != nil {
				return err
			}
		}
		sealed, err := vault.Seal(key, contactID, field, *v)
		if err != nil {
			return fmt.Errorf("contact: encrypt %s: %w", field, err)
		}
		_, err = tx.Exec(`INSERT INTO sensitive_values (contact_id, field, ciphertext, blind_index, masked, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (contact_id, field) DO UPDATE SET ciphertext = excluded.ciphertext,
			blind_index = excluded.blind_index, masked = excluded.masked, updated_at = excluded.updated_at`,
			contactID, field, sealed, s.Vault.BlindIndex(field, *v), defs[field].MaskValue(*v), store.Micros(now))
		if err != nil {
			return fmt.Errorf("contact: store sensitive value: %w", err)
		}
	}
	return nil
}

// attachMasked puts the masked sensitive values into the contacts' fields,
// with one query for the whole page.
func (s *Service) attachMasked(ctx context.Context, cs []*Contact) error {
	return attachMaskedIn(ctx, s.DB.Read, cs)
}

// attachMaskedIn is attachMasked reading through q.
func attachMaskedIn(ctx context.Context, q store.Querier, cs []*Contact) error {
	if len(cs) == 0 {
		return nil
	}
	args := make([]any, len(cs))
	ph := make([]string, len(cs))
	for i, c := range cs {
		args[i] = c.ID
		ph[i] = "$" + strconv.Itoa(i+1)
	}
	return attachMaskedWhere(ctx, q, cs, "contact_id IN ("+strings.Join(ph, ", ")+")", args)
}

// attachMaskedBetween is attachMasked for a page read by key: cs are in id
// order, the first after the id after. It reads the range of ids the page
// spans rather than a list of them, whose cost grows faster than the page
// (each placeholder is looked up by name); values of contacts in the
// range that the page left out are read and passed over.
func attachMaskedBetween(ctx context.Context, q store.Querier, cs []*Contact, after string) error {
	if len(cs) == 0 {
		return nil
	}
	return attachMaskedWhere(ctx, q, cs, "contact_id > $1 AND contact_id <= $2", []any{after, cs[len(cs)-1].ID})
}

// attachMaskedWhere puts the masked values where selects into those of cs
// they belong to.
func attachMaskedWhere(ctx context.Context, q store.Querier, cs []*Contact, where string, args []any) error {
	byID := make(map[string]*Contact, len(cs))
	for _, c := range cs {
		byID[c.ID] = c
	}
	rows, err := q.QueryContext(ctx, `SELECT contact_id, field, masked FROM sensitive_values WHERE `+where, args...)
	if err != nil {
		return fmt.Errorf("contact: read masked values: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, field, masked string
		if err := rows.Scan(&id, &field, &masked); err != nil {
			return err
		}
		if c := byID[id]; c != nil {
			c.Fields[field] = masked
		}
	}
	return rows.Err()
}

// checkStorageTx refuses to set a field tied to a purpose whose consent the
// contact withdrew: the field is locked until consent is granted again (R8).
func checkStorageTx(tx *store.Tx, contactID string, fields map[string]any, defs map[string]*FieldDefinition) error {
	for name, v := range fields {
		d := defs[name]
		if v == nil || d == nil || d.StoragePurpose == "" {
			continue
		}
		var state string
		err := tx.QueryRow(`SELECT state FROM consent_current WHERE contact_id = $1 AND purpose_id = $2`, contactID, d.StoragePurpose).Scan(&state)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("contact: read storage consent: %w", err)
		}
		if locksStorage(state) {
			return &errs.Error{Kind: errs.KindLocked, Code: "field_locked", Field: "fields." + name,
				Message: "is locked: the contact withdrew consent to storing it; it can be set again once they grant it"}
		}
	}
	return nil
}

// locksStorage reports whether a storage purpose's consent state locks
// the fields tied to it: withdrawn (R8). None recorded does not: a field
// may be filled before its consent is asked for.
func locksStorage(state string) bool { return state == consent.StateWithdrawn }

// StorageLocks returns the fields locked for a contact because they
// withdrew consent to storing them (R8), by name, each with when the
// consent was withdrawn: the same rule that refuses a value on save, for a
// page to show the field as erased and locked rather than empty. current
// is the contact's current consents (consent.Service.CurrentConsents);
// none locked is an empty map.
func StorageLocks(defs []*FieldDefinition, current []consent.Current) map[string]time.Time {
	withdrawn := map[string]time.Time{}
	for _, c := range current {
		if locksStorage(c.State) && c.RecordedAt != nil {
			withdrawn[c.PurposeID] = *c.RecordedAt
		}
	}
	out := map[string]time.Time{}
	for _, d := range defs {
		if at, ok := withdrawn[d.StoragePurpose]; ok && d.StoragePurpose != "" {
			out[d.Name] = at
		}
	}
	return out
}

// EraseWithdrawnStorage is a consent hook: when consent for a purpose is
// withdrawn, the values of the fields tied to that purpose are erased in
// the same transaction (R8).
func EraseWithdrawnStorage(tx *store.Tx, r *consent.Record) error {
	if r.State != consent.StateWithdrawn {
		return nil
	}
	names, err := storageFields(tx, r.PurposeID)
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := tx.Exec(`DELETE FROM sensitive_values WHERE contact_id = $1 AND field = $2`, r.ContactID, n); err != nil {
			return fmt.Errorf("contact: erase %s: %w", n, err)
		}
		if err := contactstate.RemoveFieldTx(tx, r.ContactID, n); err != nil {
			return err
		}
	}
	return nil
}

// storageFieldsMemo keys, among a transaction's values (store.Tx.Local),
// the names of the fields tied to each purpose, as read in it: a
// transaction that withdraws many consents, such as an import's chunk,
// reads them once rather than once a consent, and its gathered writes are
// not cut short by a read between every two of them. CreateField and
// UpdateField, the only writes of those ties, drop it.
type storageFieldsMemo struct{}

// storageFields returns the names of the fields whose values are kept on
// the consent for purposeID; none when no field is tied to it.
func storageFields(tx *store.Tx, purposeID string) ([]string, error) {
	byPurpose, ok := tx.Local(storageFieldsMemo{}).(map[string][]string)
	if !ok {
		rows, err := tx.Query(`SELECT storage_purpose_id, name FROM field_definitions WHERE storage_purpose_id IS NOT NULL ORDER BY name`)
		if err != nil {
			return nil, fmt.Errorf("contact: read fields tied to a purpose: %w", err)
		}
		defer rows.Close()
		byPurpose = map[string][]string{}
		for rows.Next() {
			var purpose, name string
			if err := rows.Scan(&purpose, &name); err != nil {
				return nil, fmt.Errorf("contact: read fields tied to a purpose: %w", err)
			}
			byPurpose[purpose] = append(byPurpose[purpose], name)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("contact: read fields tied to a purpose: %w", err)
		}
		tx.SetLocal(storageFieldsMemo{}, byPurpose)
	}
	return byPurpose[purposeID], nil
}

// Reveal returns the clear value of a contact's sensitive field and writes
// the access-log entry in the same transaction: if the entry cannot be
// written, nothing is revealed. It returns a not-found error when the
// contact has no value for the field.
func (s *Service) Reveal(ctx context.Context, contactID, field string, actor consent.Actor, ip string) (string, error) {
	return s.RevealFor(ctx, RevealRequest{ContactID: contactID, Field: field, Actor: actor, IP: ip})
}

// RevealRequest asks for the clear value of a contact's sensitive field.
type RevealRequest struct {
	ContactID, Field string
	Actor            consent.Actor
	IP               string
	// Reason is why the value is revealed, kept with the access-log entry;
	// empty when none was given. RevealFor trims it and refuses one that
	// is longer than MaxRevealReason or not a single line.
	Reason string
	// Claim, when set, runs first inside the reveal's transaction and
	// returns the reason, replacing Reason: the admin UI claims its
	// one-time grant there, so that the grant is used up exactly when the
	// reveal is logged, and an error from it (a grant used already)
	// reveals and logs nothing.
	Claim func(tx *store.Tx) (reason string, err error)
}

// MaxRevealReason bounds the reason given for a reveal: a sentence.
const MaxRevealReason = 200

// CheckRevealReason trims *reason and checks it as the reason for a
// reveal: one line of at most MaxRevealReason characters, without control
// or invisible formatting characters. Empty is allowed (the API asks for
// no reason); the error names the field "reason".
func CheckRevealReason(reason *string) error {
	return errs.OptionalLine("reason", reason, MaxRevealReason)
}

// CheckRevealable returns nil when field is a sensitive field, whose
// value can be revealed; a not-found error for an unknown field and an
// invalid one for a field that is not sensitive.
func (s *Service) CheckRevealable(ctx context.Context, field string) error {
	def, err := s.Field(ctx, field)
	if err != nil {
		return errs.NotFound("field", "")
	}
	if !def.Sensitive {
		return errs.Invalid("field", "%s is not a sensitive field; its value is in the contact", field)
	}
	return nil
}

// RevealFor is Reveal with a reason, or a claim to make first (see
// RevealRequest).
func (s *Service) RevealFor(ctx context.Context, r RevealRequest) (string, error) {
	if err := CheckRevealReason(&r.Reason); err != nil {
		return "", err
	}
	if err := s.CheckRevealable(ctx, r.Field); err != nil {
		return "", err
	}
	contactID, field := r.ContactID, r.Field
	var value string
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		reason := r.Reason
		if r.Claim != nil {
			var err error
			if reason, err = r.Claim(tx); err != nil {
				return err
			}
		}
		var sealed, wrapped string
		err := tx.QueryRow(`SELECT v.ciphertext, k.wrapped FROM sensitive_values v JOIN contact_keys k ON k.contact_id = v.contact_id
			WHERE v.contact_id = $1 AND v.field = $2`, contactID, field).Scan(&sealed, &wrapped)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// A value from before the field was encrypted may still be in the
			// clear, waiting for the encryption job.
			var raw sql.NullString
			q := `SELECT json_extract(fields, $2) FROM contacts WHERE id = $1`
			arg := "$." + field
			if tx.Dialect() == store.Postgres {
				q, arg = `SELECT fields->>$2::text FROM contacts WHERE id = $1`, field
			}
			if err := tx.QueryRow(q, contactID, arg).Scan(&raw); err != nil || !raw.Valid {
				return errs.NotFound("value", "")
			}
			value = raw.String
		case err != nil:
			return fmt.Errorf("contact: read sensitive value: %w", err)
		default:
			if s.Vault == nil {
				return ErrNoEncryption
			}
			key, err := s.Vault.Unwrap(contactID, wrapped)
			if err != nil {
				return fmt.Errorf("contact: open data key of %s: %w", contactID, err)
			}
			if value, err = vault.Unseal(key, contactID, field, sealed); err != nil {
				return fmt.Errorf("contact: decrypt %s of %s: %w", field, contactID, err)
			}
		}
		return LogAccessTx(tx, AccessEntry{At: s.now(), Actor: r.Actor, ContactID: contactID, Field: field, IP: r.IP, Reason: reason})
	})
	if err != nil {
		return "", err
	}
	return value, nil
}

// AccessEntry is one reveal in the access log.
type AccessEntry struct {
	ID        string        `json:"id"`
	At        time.Time     `json:"at"`
	Actor     consent.Actor `json:"actor"`
	ContactID string        `json:"contact_id"`
	Field     string        `json:"field"`
	IP        string        `json:"ip,omitempty"`
	// Reason is why the value was revealed, as the user typed it in the
	// admin UI or the API client sent it; empty when an API client gave
	// none, and for a contact's exports and look-ups. For an export of
	// the contact list (field "(contact list)") it says what was
	// exported: the format, how many contacts, the columns and the
	// condition.
	Reason string `json:"reason,omitempty" doc:"why the value was revealed, as given by the user or API client; absent when none was given. For an export of the contact list (field (contact list)): what was exported"`
}

// LogAccessTx writes an access-log entry inside tx, with a new id. Whoever
// shows a clear value writes its entry in the transaction that reads it,
// or before showing it: if the entry cannot be written, nothing is shown.
func LogAccessTx(tx *store.Tx, e AccessEntry) error {
	_, err := tx.Exec(`INSERT INTO access_log (id, at, actor_kind, actor_id, contact_id, field, ip, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		uuid.Must(uuid.NewV7()).String(), store.Micros(e.At), e.Actor.Kind, e.Actor.ID, e.ContactID, e.Field, e.IP, e.Reason)
	if err != nil {
		return fmt.Errorf("contact: write access log: %w", err)
	}
	return nil
}

// AccessQuery selects access-log entries; empty fields match everything.
type AccessQuery struct {
	Actor, Contact, Field string
	From, To              time.Time
	Limit                 int
	After                 string // the id of the last entry of the previous page
}

// AccessLogCount counts the entries q selects, on every page: the total
// the access log page shows.
func (s *Service) AccessLogCount(ctx context.Context, q AccessQuery) (int64, error) {
	where, args := q.where(false)
	var n int64
	if err := s.DB.Read.QueryRowContext(ctx, `SELECT count(*) FROM access_log`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("contact: count access log: %w", err)
	}
	return n, nil
}

// where is the WHERE clause q selects entries by ("" for all), with its
// arguments; page adds the start of the page (After).
func (q AccessQuery) where(page bool) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if q.Actor != "" {
		add("actor_id = ?", q.Actor)
	}
	if q.Contact != "" {
		add("contact_id = ?", q.Contact)
	}
	if q.Field != "" {
		add("field = ?", q.Field)
	}
	if !q.From.IsZero() {
		add("at >= ?", store.Micros(q.From))
	}
	if !q.To.IsZero() {
		add("at < ?", store.Micros(q.To))
	}
	if page && q.After != "" {
		add("id < ?", q.After)
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// AccessLog returns matching entries, newest first, and the cursor of the
// next page, empty on the last.
func (s *Service) AccessLog(ctx context.Context, q AccessQuery) ([]AccessEntry, string, error) {
	if q.Limit == 0 {
		q.Limit = 100
	}
	if err := errs.IDCursor("after", q.After); err != nil {
		return nil, "", err
	}
	where, args := q.where(true)
	query := accessSelect + where
	args = append(args, q.Limit+1)
	query += " ORDER BY id DESC LIMIT $" + strconv.Itoa(len(args))
	out, err := store.QueryAll(ctx, s.DB.Read, scanAccess, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("contact: read access log: %w", err)
	}
	next := ""
	if len(out) > q.Limit {
		out = out[:q.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

const accessSelect = `SELECT id, at, actor_kind, actor_id, contact_id, field, ip, reason FROM access_log`

func scanAccess(row store.Scanner) (AccessEntry, error) {
	var e AccessEntry
	var at int64
	err := row.Scan(&e.ID, &at, &e.Actor.Kind, &e.Actor.ID, &e.ContactID, &e.Field, &e.IP, &e.Reason)
	e.At = store.FromMicros(at)
	return e, err
}

// AccessLogOf returns every access-log entry about the contact, oldest
// first, read through q; none is an empty slice.
func AccessLogOf(ctx context.Context, q store.Querier, contactID string) ([]AccessEntry, error) {
	out, err := store.QueryAll(ctx, q, scanAccess, accessSelect+` WHERE contact_id = $1 ORDER BY at, id`, contactID)
	if err != nil {
		return nil, fmt.Errorf("contact: read access log: %w", err)
	}
	return out, nil
}

// idAndText is a row of an id and one text column.
type idAndText struct{ id, text string }

func scanIDAndText(row store.Scanner) (idAndText, error) {
	var r idAndText
	return r, row.Scan(&r.id, &r.text)
}

// EncryptExisting moves the values a field held in the clear, from before it
// was marked sensitive, into encrypted storage: a batch per transaction,
// until none is left. It can stop anywhere and start again (it runs as a
// job), and returns how many values it encrypted.
func (s *Service) EncryptExisting(ctx context.Context, field string) (int, error) {
	def, err := s.Field(ctx, field)
	if err != nil {
		return 0, err
	}
	if !def.Sensitive {
		return 0, nil
	}
	if s.Vault == nil {
		return 0, ErrNoEncryption // the job waits, and tries again, until a keyset is configured
	}
	defs := map[string]*FieldDefinition{field: def}
	// Batches page by id, so each reads on from where the last stopped
	// instead of scanning the table from the start again.
	has := `SELECT id, fields FROM contacts WHERE id > $2 AND json_type(fields, $1) IS NOT NULL ORDER BY id LIMIT 200`
	arg := "$." + field
	if s.DB.Dialect == store.Postgres {
		has, arg = `SELECT id, fields::text FROM contacts WHERE id > $2 AND fields ? $1 ORDER BY id LIMIT 200`, field
	}
	total, last := 0, ""
	for {
		// A write function may run more than once: the cursor moves only
		// once the batch has committed.
		n, from, next := 0, last, last
		err := s.DB.Write(ctx, func(tx *store.Tx) error {
			n = 0
			batch, err := store.QueryAll(ctx, tx, scanIDAndText, has, arg, from)
			if err != nil {
				return fmt.Errorf("contact: find clear values: %w", err)
			}
			if len(batch) > 0 {
				next = batch[len(batch)-1].id
			}
			now := s.now()
			for _, r := range batch {
				c := &Contact{Fields: map[string]any{}}
				if err := json.Unmarshal([]byte(r.text), &c.Fields); err != nil {
					return err
				}
				v := valueText(c.Fields[field])
				if err := s.storeSecrets(tx, r.id, map[string]*string{field: &v}, defs, now); err != nil {
					return err
				}
				if err := contactstate.RemoveFieldTx(tx, r.id, field); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total, last = total+n, next
		if n > 0 {
			continue
		}
		// The clear values' old row versions go from the log as well; only
		// then is the field marked done.
		if err := s.DB.Checkpoint(ctx); err != nil {
			return total, fmt.Errorf("contact: checkpoint: %w", err)
		}
		return total, s.DB.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`UPDATE field_definitions SET encrypted_at = $2 WHERE name = $1`, field, store.Micros(s.now()))
			return err
		})
	}
}

// RotateKeys adds a new keyset key, makes it the one the database expects
// for new data keys, and wraps every contact's data key anew under it. The
// values themselves stay as they are. The old keys stay in the keyset until
// RetireKeys, so that instances still on the old keyset file keep working
// until they have the new one.
//
// It can be stopped and run again: a run that finds data keys still under
// an older key finishes that rotation instead of starting another. The
// service keeps running meanwhile. It returns how many data keys it moved.
func (s *Service) RotateKeys(ctx context.Context) (int, error) {
	if s.Vault == nil {
		return 0, ErrNoEncryption
	}
	pending := func() (int, error) {
		var n int
		err := s.DB.Read.QueryRowContext(ctx, `SELECT count(*) FROM contact_keys WHERE key_id <> $1`, int64(s.Vault.PrimaryKeyID())).Scan(&n)
		return n, err
	}
	n, err := pending()
	if err != nil {
		return 0, fmt.Errorf("contact: count data keys: %w", err)
	}
	if n == 0 {
		if _, err := s.Vault.Rotate(); err != nil {
			return 0, fmt.Errorf("contact: add a keyset key: %w", err)
		}
	}
	if err := s.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`INSERT INTO vault_state (id, primary_key_id) VALUES (1, $1)
			ON CONFLICT (id) DO UPDATE SET primary_key_id = excluded.primary_key_id`, int64(s.Vault.PrimaryKeyID()))
		return err
	}); err != nil {
		return 0, fmt.Errorf("contact: record the current keyset key: %w", err)
	}
	moved, last := 0, ""
	for {
		done, from, next := 0, last, last // the cursor moves only once a batch has committed
		err := s.DB.Write(ctx, func(tx *store.Tx) error {
			done = 0
			primary := s.Vault.PrimaryKeyID()
			batch, err := store.QueryAll(ctx, tx, scanIDAndText, `SELECT contact_id, wrapped FROM contact_keys
				WHERE contact_id > $2 AND key_id <> $1 ORDER BY contact_id LIMIT 500`, int64(primary), from)
			if err != nil {
				return fmt.Errorf("contact: read data keys: %w", err)
			}
			if len(batch) > 0 {
				next = batch[len(batch)-1].id
			}
			for _, r := range batch {
				key, err := s.Vault.Unwrap(r.id, r.text)
				if err != nil {
					return fmt.Errorf("contact: open data key of %s: %w", r.id, err)
				}
				wrapped, keyID, err := s.Vault.Wrap(r.id, key)
				if err != nil {
					return err
				}
				if _, err := tx.Exec(`UPDATE contact_keys SET wrapped = $2, key_id = $3 WHERE contact_id = $1`, r.id, wrapped, int64(keyID)); err != nil {
					return fmt.Errorf("contact: store data key: %w", err)
				}
				done++
			}
			return nil
		})
		if err != nil {
			return moved, err
		}
		moved, last = moved+done, next
		if done == 0 {
			break
		}
	}
	return moved, nil
}

// RetireKeys destroys every keyset key but the current one, once no data
// key is wrapped under them: copies of the database taken before the
// rotation then no longer open. It checks inside a write, so no data key
// can be wrapped under an old key meanwhile, and refuses otherwise.
func (s *Service) RetireKeys(ctx context.Context) error {
	if s.Vault == nil {
		return ErrNoEncryption
	}
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		var old int
		primary := int64(s.Vault.PrimaryKeyID())
		if err := tx.QueryRow(`SELECT count(*) FROM contact_keys WHERE key_id <> $1`, primary).Scan(&old); err != nil {
			return fmt.Errorf("contact: count data keys: %w", err)
		}
		var want int64
		if err := tx.QueryRow(`SELECT primary_key_id FROM vault_state WHERE id = 1`).Scan(&want); err == nil && want != primary {
			return fmt.Errorf("contact: this keyset's current key is not the database's (%d); retire with the rotated keyset", want)
		}
		if old > 0 {
			return fmt.Errorf("contact: %d data keys are still under an older key; run keys rotate again first", old)
		}
		return s.Vault.Retire()
	})
}
