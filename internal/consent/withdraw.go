package consent

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// Which granted consents a contact's choice withdraws.
type withdrawal int

const (
	// marketingConsents: the purposes that govern marketing email
	// (Purpose.MarketingEmail), withdrawn by the contact's own opt-out.
	marketingConsents withdrawal = iota
	// everyConsent: every consent granted on the legal basis of consent,
	// withdrawn when the contact stops processing.
	everyConsent
	// onePurpose: the consent to one purpose, withdrawn when the contact
	// unsubscribes from a list bound to it (WithdrawPurposeTx).
	onePurpose
)

// withdrawGrantedTx writes a withdrawn consent record for each purpose of
// which the contact has a granted consent, with the actor and evidence of
// the choice that causes it, and returns the records written (none when
// nothing was granted). The source follows the evidence: an unsubscribe
// link (or the system, applying an opt-out made by one before) is the
// Email source, an API client the API source, anything else the
// Preferences page.
func (s *Service) withdrawGrantedTx(tx *store.Tx, k contactstate.State, which withdrawal, actor Actor, ev Evidence, now time.Time) ([]*Record, error) {
	return s.withdrawTx(tx, k, which, "", actor, ev, now)
}

// WithdrawPurposeTx writes a withdrawn consent record for the purpose, in
// the caller's transaction, with the actor and evidence of the choice
// that causes it (an unsubscribe from a list bound to the purpose), and
// returns it; nil when the contact's consent to it is not granted.
func (s *Service) WithdrawPurposeTx(tx *store.Tx, k contactstate.State, purposeID string, actor Actor, ev Evidence, now time.Time) (*Record, error) {
	recs, err := s.withdrawTx(tx, k, onePurpose, purposeID, actor, ev, now)
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	return recs[0], nil
}

// PurposeWithdrawal returns what withdraws a contact's consent to a
// purpose inside a transaction (WithdrawPurposeTx), with actor and
// evidence, for a choice made elsewhere: an unsubscribe from a list bound
// to the purpose (lists.Withdrawal). A contact actor without an id is the
// contact concerned; a contact deleted meanwhile is skipped.
func (s *Service) PurposeWithdrawal(actor Actor, ev Evidence) func(tx *store.Tx, contactID, purposeID string, now time.Time) error {
	return func(tx *store.Tx, contactID, purposeID string, now time.Time) error {
		k, err := contactstate.Load(tx, contactID)
		if errs.Is(err, errs.KindNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		a := actor
		if a.Kind == ActorContact && a.ID == "" {
			a.ID = contactID
		}
		_, err = s.WithdrawPurposeTx(tx, k, purposeID, a, ev, now)
		return err
	}
}

func (s *Service) withdrawTx(tx *store.Tx, k contactstate.State, which withdrawal, purposeID string, actor Actor, ev Evidence, now time.Time) ([]*Record, error) {
	cond := "p.marketing_email"
	switch which {
	case everyConsent:
		cond = "r.legal_basis = '" + BasisConsent + "'"
	case onePurpose:
		cond = "p.id = $4"
	}
	sourceID := SourcePreferencesPage
	switch ev.Method {
	case MethodUnsubscribeLink, MethodSystem:
		sourceID = SourceEmail
	case MethodAPI:
		sourceID = SourceAPI
	}
	type granted struct {
		purpose Purpose
		source  string
	}
	// Query: on PostgreSQL, changes queued earlier in the transaction (a
	// consent just recorded) are sent first, so this sees them.
	rows, err := tx.Query(`SELECT p.id, p.name, r.legal_basis, r.text_version, (SELECT name FROM sources WHERE id = $2)
		FROM consent_current cc JOIN purposes p ON p.id = cc.purpose_id JOIN consent_records r ON r.id = cc.record_id
		WHERE cc.contact_id = $1 AND cc.state = $3 AND `+cond+` ORDER BY p.name_key`, append([]any{k.ID, sourceID, StateGranted}, purposeArg(which, purposeID)...)...)
	if err != nil {
		return nil, fmt.Errorf("consent: read granted consents: %w", err)
	}
	var list []granted
	for rows.Next() {
		var g granted
		if err := rows.Scan(&g.purpose.ID, &g.purpose.Name, &g.purpose.LegalBasis, &g.purpose.TextVersion, &g.source); err != nil {
			rows.Close()
			return nil, fmt.Errorf("consent: read granted consents: %w", err)
		}
		list = append(list, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("consent: read granted consents: %w", err)
	}
	out := make([]*Record, 0, len(list))
	for _, g := range list {
		p := &Prepared{purpose: &g.purpose, sourceID: sourceID, hooks: s.afterRecord, in: RecordInput{Purpose: g.purpose.ID,
			State: StateWithdrawn, Source: g.source, LegalBasis: g.purpose.LegalBasis, TextVersion: g.purpose.TextVersion,
			Actor: actor, Evidence: ev}}
		r, err := p.Apply(tx, k, now)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// WithdrawMarketingOfOptedOut writes, for each contact who opted out
// themselves yet still has a granted consent to a purpose that governs
// marketing email (an opt-out recorded before opt-outs withdrew consent),
// the withdrawal the opt-out implies, by the system. It returns how many
// contacts it changed: run at every start, it finds none once done. Each
// contact is one transaction, checked again inside it.
func (s *Service) WithdrawMarketingOfOptedOut(ctx context.Context) (int, error) {
	ids, err := store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (string, error) {
		var id string
		return id, row.Scan(&id)
	}, `SELECT DISTINCT cc.contact_id FROM consent_current cc JOIN purposes p ON p.id = cc.purpose_id
		JOIN contacts c ON c.id = cc.contact_id
		WHERE c.opt_in_status = $1 AND cc.state = $2 AND p.marketing_email`, contactstate.OptOutContact, StateGranted)
	if err != nil {
		return 0, fmt.Errorf("consent: find opted-out contacts with marketing consent: %w", err)
	}
	changed := 0
	for _, id := range ids {
		wrote := false
		err := s.DB.Write(ctx, func(tx *store.Tx) error {
			k, err := contactstate.Load(tx, id)
			if err != nil || k.OptIn != contactstate.OptOutContact {
				return err
			}
			recs, err := s.withdrawGrantedTx(tx, k, marketingConsents, Actor{Kind: ActorSystem}, Evidence{Method: MethodSystem}, s.now())
			wrote = len(recs) > 0
			return err
		})
		if errs.Is(err, errs.KindNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return changed, err
		}
		if wrote {
			changed++
		}
	}
	return changed, nil
}

// StopProcessingTx carries out the contact's request to stop processing
// (R9) in the caller's transaction: an opt-out of all email, a withdrawal
// of every consent they gave on the legal basis of consent, and the lock
// on their record, each recorded with actor and evidence. Asked by the
// contact (their preferences page), the opt-out is their own; carried out
// by an operator for a request received otherwise, it is the user's, and
// a contact opted out already stays as they are.
func (s *Service) StopProcessingTx(tx *store.Tx, k contactstate.State, actor Actor, ev Evidence, now time.Time) error {
	optOut := OptInInput{Status: contactstate.OptOutContact, Channel: ChannelContact, Actor: actor, Evidence: ev}
	if actor.Kind != ActorContact {
		optOut.Status, optOut.Channel = contactstate.OptOutUser, ChannelUser
	}
	if actor.Kind == ActorContact || !contactstate.OptedOut(k.OptIn) {
		if _, err := s.ApplyOptIn(tx, k, optOut, now); err != nil {
			return err
		}
	}
	if _, err := s.withdrawGrantedTx(tx, k, everyConsent, actor, ev, now); err != nil {
		return err
	}
	return contactstate.StopProcessingTx(tx, k.ID, now)
}

// purposeArg is the query argument $4 of withdrawTx: the purpose, for one.
func purposeArg(which withdrawal, purposeID string) []any {
	if which == onePurpose {
		return []any{purposeID}
	}
	return nil
}
