package contact

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// Deliverability is whether email can reach a contact.
type Deliverability struct {
	ContactID      string `json:"contact_id"`
	Deliverability string `json:"deliverability" enum:"@deliverability"`
	SoftBounces    int    `json:"soft_bounces"`
}

func deliverabilityOf(st contactstate.State) *Deliverability {
	return &Deliverability{ContactID: st.ID, Deliverability: st.Deliverability, SoftBounces: st.SoftBounces}
}

// RecordBounce notes a bounce for the contact with this address (any case)
// (see contactstate.RecordBounceTx). It returns a not-found error (field
// "email") for an unknown address.
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
		cs, err := contactstate.LoadByEmail(tx, email)
		if err != nil {
			return err
		}
		if err := contactstate.RecordBounceTx(tx, &cs, hard, st.SoftBounceLimit, s.now()); err != nil {
			return err
		}
		out = deliverabilityOf(cs)
		return nil
	})
	return out, err
}

// SetBlocklisted puts the contact's address on the blocklist, or takes it
// off again (see contactstate.SetBlocklistedTx). It returns a not-found
// error for an unknown contact.
func (s *Service) SetBlocklisted(ctx context.Context, id string, on bool) (*Deliverability, error) {
	var out *Deliverability
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		cs, err := contactstate.Load(tx, id)
		if err != nil {
			return err
		}
		if err := contactstate.SetBlocklistedTx(tx, &cs, on, s.now()); err != nil {
			return err
		}
		out = deliverabilityOf(cs)
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
