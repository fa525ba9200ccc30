package consent

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
)

// ledgerState is what ledger verification checks the ledger against: the
// current consents and opt-in statuses, and the history rows each event was
// written with (ledger.State).
type ledgerState struct{}

// EachContact reads every contact's opt-in status and current consents,
// ordered by ledger reference.
func (ledgerState) EachContact(ctx context.Context, q store.Querier, fn func(ledger.ContactState) error) error {
	rows, err := q.QueryContext(ctx, `SELECT c.ref, c.opt_in_status, cc.purpose_id, cc.state, cc.record_id
		FROM contacts c LEFT JOIN consent_current cc ON cc.contact_id = c.id ORDER BY c.ref`)
	if err != nil {
		return fmt.Errorf("consent: read current state: %w", err)
	}
	defer rows.Close()
	var cur *ledger.ContactState
	for rows.Next() {
		var ref, optIn string
		var purpose, state, record sql.NullString
		if err := rows.Scan(&ref, &optIn, &purpose, &state, &record); err != nil {
			return fmt.Errorf("consent: read current state: %w", err)
		}
		if cur == nil || cur.Ref != ref {
			if cur != nil {
				if err := fn(*cur); err != nil {
					return err
				}
			}
			cur = &ledger.ContactState{Ref: ref, OptIn: optIn, Consents: map[string]ledger.Current{}}
		}
		if purpose.Valid {
			cur.Consents[purpose.String] = ledger.Current{State: state.String, RecordID: record.String}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("consent: read current state: %w", err)
	}
	if cur != nil {
		return fn(*cur)
	}
	return nil
}

// Rows returns the consent records and opt-in changes that claim ledger
// positions in [from, to), each as the event it was written with and the
// evidence its commitment covers.
func (ledgerState) Rows(ctx context.Context, q store.Querier, from, to int64) ([]ledger.Event, error) {
	records, err := store.QueryAll(ctx, q, func(row store.Scanner) (ledger.Event, error) {
		e := ledger.Event{Details: &ledger.Details{}}
		var at int64
		var expires, collected sql.NullInt64
		err := row.Scan(&e.Seq, &e.RecordID, &e.ContactRef, &e.PurposeID, &e.Value, &e.LegalBasis, &e.SourceID,
			&e.TextVersion, &expires, &e.ActorKind, &e.ActorID, &e.Method, &at,
			&e.Details.IP, &e.Details.UserAgent, &e.Details.TokenID, &e.Details.TextLanguage, &e.Details.ImportID, &collected,
			&e.Details.Notice)
		e.Kind, e.RecordedAt, e.ExpiresAt = ledger.KindConsent, at, expires.Int64
		e.Details.CollectedAt = collected.Int64
		return e, err
	}, `SELECT r.ledger_seq, r.id, c.ref, r.purpose_id, r.state, r.legal_basis, r.source_id, r.text_version, r.expires_at,
		r.actor_kind, r.actor_id, r.method, r.recorded_at, r.ip, r.user_agent, r.token_id, r.text_language,
		r.import_id, r.collected_at, r.notice
		FROM consent_records r JOIN contacts c ON c.id = r.contact_id WHERE r.ledger_seq >= $1 AND r.ledger_seq < $2`, from, to)
	if err != nil {
		return nil, fmt.Errorf("consent: read consent records: %w", err)
	}
	changes, err := store.QueryAll(ctx, q, func(row store.Scanner) (ledger.Event, error) {
		e := ledger.Event{Details: &ledger.Details{}}
		var at int64
		err := row.Scan(&e.Seq, &e.RecordID, &e.ContactRef, &e.Value, &e.ActorKind, &e.ActorID, &e.Method, &at,
			&e.Details.IP, &e.Details.UserAgent, &e.Details.TokenID, &e.Details.ImportID)
		e.Kind, e.RecordedAt = ledger.KindOptIn, at
		return e, err
	}, `SELECT o.ledger_seq, o.id, c.ref, o.to_status, o.actor_kind, o.actor_id, o.method, o.recorded_at,
		o.ip, o.user_agent, o.token_id, o.import_id
		FROM opt_in_changes o JOIN contacts c ON c.id = o.contact_id WHERE o.ledger_seq >= $1 AND o.ledger_seq < $2`, from, to)
	if err != nil {
		return nil, fmt.Errorf("consent: read opt-in changes: %w", err)
	}
	return append(records, changes...), nil
}
