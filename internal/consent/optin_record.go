package consent

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
)

// OptInChange is one change of a contact's email opt-in status.
type OptInChange struct {
	ID         string    `json:"id"`
	ContactID  string    `json:"contact_id"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	RecordedAt time.Time `json:"recorded_at"`
	Actor      Actor     `json:"actor"`
	Evidence   Evidence  `json:"evidence"`
	LedgerSeq  int64     `json:"ledger_seq"`
}

// OptInInput asks for a new opt-in status through a channel.
type OptInInput struct {
	Status   string
	Channel  Channel
	Actor    Actor
	Evidence Evidence
	// Stored says that the contact's row, inserted in this transaction,
	// holds Status already (a contact created with it): the change's
	// history entry, ledger event and event are written, and the row is
	// not written a second time.
	Stored bool
}

// ApplyOptIn checks and applies an opt-in change for contact k inside tx,
// with its history entry and ledger event. It returns nil and no error when
// the rules leave the status as it is (see CheckOptIn). The contact's own
// opt-out also withdraws their consent to every purpose that governs
// marketing email, with the same evidence: unsubscribing is saying no to
// marketing, and the consent records must say so too.
func (s *Service) ApplyOptIn(tx *store.Tx, k contactstate.State, in OptInInput, now time.Time) (*OptInChange, error) {
	if k.Erased {
		return nil, contactstate.ErrErased()
	}
	if err := checkActor(in.Actor, in.Evidence); err != nil {
		return nil, err
	}
	changed, err := CheckOptIn(k.OptIn, in.Status, in.Channel)
	if err != nil {
		return nil, err
	}
	confirmed := in.Channel == ChannelConfirmation && in.Status == contactstate.DoubleOptIn
	if !changed {
		if confirmed {
			// A second invitation confirmed: the status stands, the
			// confirmation is still news.
			if err := s.emitConfirmed(tx, k.ID, "", in.Evidence.Method, now); err != nil {
				return nil, err
			}
		}
		// Unsubscribing again withdraws what was granted since (or before
		// opt-outs withdrew consent): the contact's no stands each time.
		if in.Status == contactstate.OptOutContact {
			_, err := s.withdrawGrantedTx(tx, k, marketingConsents, in.Actor, in.Evidence, now)
			return nil, err
		}
		return nil, nil
	}
	to := in.Status
	if k.OptIn == contactstate.OptOutUser && to == contactstate.OptInNone {
		if to, err = statusBeforeUserOptOut(tx, k.ID, now); err != nil {
			return nil, err
		}
	}
	// A locked record takes opt-outs only: the contact stopped processing.
	if k.ProcessingStopped && !contactstate.OptedOut(in.Status) {
		return nil, contactstate.ErrProcessingStopped()
	}
	c := &OptInChange{ID: uuid.Must(uuid.NewV7()).String(), ContactID: k.ID, From: k.OptIn, To: to,
		RecordedAt: now, Actor: in.Actor, Evidence: in.Evidence}
	c.LedgerSeq, err = ledger.Append(tx, &ledger.Event{RecordedAt: store.Micros(now), Kind: ledger.KindOptIn, ContactRef: k.Ref,
		Value: c.To, ActorKind: c.Actor.Kind, ActorID: c.Actor.ID, Method: c.Evidence.Method, RecordID: c.ID,
		Details: &ledger.Details{IP: c.Evidence.IP, UserAgent: c.Evidence.UserAgent, TokenID: c.Evidence.TokenID, ImportID: c.Evidence.ImportID}})
	if err != nil {
		return nil, err
	}
	if !in.Stored || c.To != in.Status {
		if err := contactstate.SetOptInTx(tx, k.ID, c.To, now); err != nil {
			return nil, err
		}
	}
	err = tx.ExecLater(store.Prefix("consent: record opt-in change"), `INSERT INTO opt_in_changes (id, contact_id, from_status, to_status,
		recorded_at, actor_kind, actor_id, method, ip, user_agent, token_id, ledger_seq, import_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		c.ID, c.ContactID, c.From, c.To, store.Micros(now), c.Actor.Kind, c.Actor.ID, c.Evidence.Method,
		c.Evidence.IP, c.Evidence.UserAgent, c.Evidence.TokenID, c.LedgerSeq, c.Evidence.ImportID)
	if err != nil {
		return nil, err
	}
	if err := events.Emit(tx, events.OptInChanged, k.ID, events.OptInChangedData{ContactID: k.ID, ChangeID: c.ID, From: c.From,
		To: c.To, Method: c.Evidence.Method, ActorKind: c.Actor.Kind, ImportID: c.Evidence.ImportID}, now); err != nil {
		return nil, err
	}
	if confirmed {
		if err := s.emitConfirmed(tx, k.ID, c.ID, in.Evidence.Method, now); err != nil {
			return nil, err
		}
	}
	if c.To == contactstate.OptOutContact {
		if _, err := s.withdrawGrantedTx(tx, k, marketingConsents, in.Actor, in.Evidence, now); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// emitConfirmed writes double_opt_in.confirmed: every confirmation of an
// address, by an invitation's link or a webform's, changes the opt-in
// status here, through ChannelConfirmation.
// The confirm hooks run with it.
func (s *Service) emitConfirmed(tx *store.Tx, contactID, changeID, method string, now time.Time) error {
	if err := events.Emit(tx, events.DoubleOptInConfirmed, contactID, events.DoubleOptInConfirmedData{ContactID: contactID,
		ChangeID: changeID, Method: method}, now); err != nil {
		return err
	}
	for _, h := range s.confirmed {
		if err := h(tx, contactID, now); err != nil {
			return err
		}
	}
	return nil
}

// statusBeforeUserOptOut is the status that lifting a user's opt-out
// restores: the double opt-in it replaced, when the contact still has a
// granted consent to a purpose that governs marketing email (their
// confirmation still stands and nothing they did since took it back), and
// none otherwise. A status set by a user or a webform is not restored: it
// would need confirming anew.
func statusBeforeUserOptOut(tx *store.Tx, contactID string, now time.Time) (string, error) {
	var before string
	var backed bool
	err := tx.QueryRow(`SELECT COALESCE((SELECT from_status FROM opt_in_changes WHERE contact_id = $1 AND to_status = $2
			ORDER BY ledger_seq DESC LIMIT 1), ''),
		EXISTS (SELECT 1 FROM consent_current cc JOIN purposes p ON p.id = cc.purpose_id
			WHERE cc.contact_id = $1 AND cc.state = $3 AND p.marketing_email AND (cc.expires_at IS NULL OR cc.expires_at > $4))`,
		contactID, contactstate.OptOutUser, StateGranted, store.Micros(now)).Scan(&before, &backed)
	if err != nil {
		return "", fmt.Errorf("consent: read the status before the opt-out: %w", err)
	}
	if before == contactstate.DoubleOptIn && backed {
		return contactstate.DoubleOptIn, nil
	}
	return contactstate.OptInNone, nil
}

// SetOptIn changes a contact's opt-in status in its own transaction. It
// returns the change, or nil when the status stays as it is.
func (s *Service) SetOptIn(ctx context.Context, contactID string, in OptInInput) (*OptInChange, error) {
	if in.Status == "" {
		return nil, errs.Required("status")
	}
	var out *OptInChange
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		k, err := contactstate.Load(tx, contactID)
		if err != nil {
			return err
		}
		out, err = s.ApplyOptIn(tx, k, in, s.now())
		return err
	})
	return out, err
}

// OptInHistory returns the contact's opt-in changes, oldest first; an empty
// list when there are none.
func (s *Service) OptInHistory(ctx context.Context, contactID string) ([]OptInChange, error) {
	return OptInHistoryIn(ctx, s.DB.Read, contactID)
}

// OptInHistoryIn is OptInHistory reading through q, a snapshot say.
func OptInHistoryIn(ctx context.Context, q store.Querier, contactID string) ([]OptInChange, error) {
	out, err := store.QueryAll(ctx, q, func(row store.Scanner) (OptInChange, error) {
		var c OptInChange
		var at int64
		err := row.Scan(&c.ID, &c.ContactID, &c.From, &c.To, &at, &c.Actor.Kind, &c.Actor.ID, &c.Evidence.Method,
			&c.Evidence.IP, &c.Evidence.UserAgent, &c.Evidence.TokenID, &c.LedgerSeq, &c.Evidence.ImportID)
		c.RecordedAt = store.FromMicros(at)
		return c, err
	}, `SELECT id, contact_id, from_status, to_status, recorded_at, actor_kind, actor_id,
		method, ip, user_agent, token_id, ledger_seq, import_id FROM opt_in_changes WHERE contact_id = $1 ORDER BY recorded_at, ledger_seq`, contactID)
	if err != nil {
		return nil, fmt.Errorf("consent: read opt-in history: %w", err)
	}
	return out, nil
}

// VerifyLedger checks the ledger against the current consent and opt-in
// state (see ledger.Verify), and keeps the report so that the admin UI can
// show the last one.
func (s *Service) VerifyLedger(ctx context.Context) (*ledger.Report, error) {
	rep, err := ledger.Verify(ctx, s.DB, ledgerState{}, s.Now())
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		return nil, err
	}
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(`INSERT INTO ledger_verifications (checked_at, report) VALUES ($1, $2)`, store.Micros(rep.CheckedAt), string(raw)); err != nil {
			return err
		}
		// The last hundred are kept; the admin UI shows the latest.
		_, err := tx.Exec(`DELETE FROM ledger_verifications WHERE checked_at < (SELECT min(checked_at) FROM
			(SELECT checked_at FROM ledger_verifications ORDER BY checked_at DESC LIMIT 100) AS recent)`)
		return err
	})
	return rep, err
}

// LastVerification returns the report of the latest ledger verification,
// and false when the ledger was never verified.
func (s *Service) LastVerification(ctx context.Context) (*ledger.Report, bool, error) {
	var raw string
	err := s.DB.Read.QueryRowContext(ctx, `SELECT report FROM ledger_verifications ORDER BY checked_at DESC LIMIT 1`).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("consent: read last verification: %w", err)
	}
	var rep ledger.Report
	if err := json.Unmarshal([]byte(raw), &rep); err != nil {
		return nil, false, fmt.Errorf("consent: decode last verification: %w", err)
	}
	return &rep, true, nil
}
