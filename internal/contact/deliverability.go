package contact

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// Deliverability states of an address.
const (
	DeliverabilityOK          = "ok"
	DeliverabilityBounced     = "bounced"
	DeliverabilityBlocklisted = "blocklisted"
)

// Deliverability is whether email can reach a contact.
type Deliverability struct {
	ContactID      string `json:"contact_id"`
	Deliverability string `json:"deliverability" enum:"ok,bounced,blocklisted"`
	SoftBounces    int    `json:"soft_bounces"`
}

// RecordBounce notes a bounce for the contact with this address (any case):
// a hard bounce marks the address bounced at once, soft bounces once they
// reach the configured limit. A blocklisted address stays blocklisted. It
// returns a not-found error (field "email") for an unknown address.
func (s *Service) RecordBounce(ctx context.Context, email string, hard bool) (*Deliverability, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return nil, errs.Required("email")
	}
	if err := errs.PlainText("email", email); err != nil {
		return nil, err
	}
	var out *Deliverability
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		st, err := settings.InTx(tx)
		if err != nil {
			return err
		}
		d := &Deliverability{}
		err = tx.QueryRow(`SELECT id, deliverability, soft_bounces FROM contacts WHERE email_key = $1`+tx.ForUpdate(), email).
			Scan(&d.ContactID, &d.Deliverability, &d.SoftBounces)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.NotFound("contact", "email")
		}
		if err != nil {
			return fmt.Errorf("contact: read deliverability: %w", err)
		}
		if !hard {
			d.SoftBounces++
		}
		if d.Deliverability == DeliverabilityOK && (hard || d.SoftBounces >= st.SoftBounceLimit) {
			d.Deliverability = DeliverabilityBounced
		}
		if _, err := tx.Exec(`UPDATE contacts SET deliverability = $2, soft_bounces = $3, updated_at = $4 WHERE id = $1`,
			d.ContactID, d.Deliverability, d.SoftBounces, store.Micros(s.now())); err != nil {
			return fmt.Errorf("contact: record bounce: %w", err)
		}
		out = d
		return nil
	})
	return out, err
}

// SetBlocklisted puts the contact's address on the blocklist, or takes it
// off again. Taking it off does not lift a bounce: a bounced address stays
// bounced. It returns a not-found error for an unknown contact.
func (s *Service) SetBlocklisted(ctx context.Context, id string, on bool) (*Deliverability, error) {
	var out *Deliverability
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		d := &Deliverability{ContactID: id}
		err := tx.QueryRow(`SELECT deliverability, soft_bounces FROM contacts WHERE id = $1`+tx.ForUpdate(), id).Scan(&d.Deliverability, &d.SoftBounces)
		if errors.Is(err, sql.ErrNoRows) {
			return errs.NotFound("contact", "")
		}
		if err != nil {
			return fmt.Errorf("contact: read deliverability: %w", err)
		}
		switch {
		case on:
			d.Deliverability = DeliverabilityBlocklisted
		case d.Deliverability == DeliverabilityBlocklisted:
			d.Deliverability = DeliverabilityOK
		}
		if _, err := tx.Exec(`UPDATE contacts SET deliverability = $2, updated_at = $3 WHERE id = $1`,
			id, d.Deliverability, store.Micros(s.now())); err != nil {
			return fmt.Errorf("contact: blocklist: %w", err)
		}
		out = d
		return nil
	})
	return out, err
}

// MatchingIDs returns the ids of the contacts matching the condition, in
// creation order, at most limit of them.
func (s *Service) MatchingIDs(ctx context.Context, condition string, limit int) ([]string, error) {
	cond, err := s.Condition(ctx, condition, false)
	if err != nil {
		return nil, err
	}
	where, args := cond.SQL(s.DB.Dialect, 1)
	ids, err := store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (string, error) {
		var id string
		return id, row.Scan(&id)
	}, "SELECT c.id FROM contacts c WHERE "+where+" ORDER BY c.id LIMIT "+strconv.Itoa(limit), args...)
	if err != nil {
		return nil, fmt.Errorf("contact: select by condition: %w", err)
	}
	return ids, nil
}
