package consent

import (
	"context"
	"fmt"

	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
)

// EraseEvidenceTx blanks, inside tx, the personal evidence of the consent
// records and opt-in changes of the contacts in ids: IP address, user
// agent and the confirmation token that linked to the contact. The rows
// keep purpose, state, legal basis, source, text version and language,
// method, actor and times: the proof that consent was given, by no one
// anyone can name. It returns, by contact, what each row keeps of its
// evidence, for the ledger event of the erasure to commit to
// (ledger.CommitRemainder); a contact without rows is absent.
func EraseEvidenceTx(tx *store.Tx, ids []string) (map[string][]ledger.ErasedRow, error) {
	out := map[string][]ledger.ErasedRow{}
	if len(ids) == 0 {
		return out, nil
	}
	ph, args := store.In(1, ids)
	for _, table := range []string{"consent_records", "opt_in_changes"} {
		if err := tx.ExecLater(store.Prefix("consent: erase evidence"), `UPDATE `+table+` SET ip = '', user_agent = '', token_id = ''
			WHERE contact_id IN (`+ph+`) AND (ip <> '' OR user_agent <> '' OR token_id <> '')`, args...); err != nil {
			return nil, err
		}
	}
	type row struct {
		contact string
		ledger.ErasedRow
	}
	rows, err := store.QueryAll(context.Background(), tx, func(s store.Scanner) (row, error) {
		var r row
		return r, s.Scan(&r.contact, &r.Kind, &r.RecordID, &r.TextLanguage)
	}, `SELECT contact_id, 'consent', id, text_language FROM consent_records WHERE contact_id IN (`+ph+`)
		UNION ALL SELECT contact_id, 'opt_in', id, '' FROM opt_in_changes WHERE contact_id IN (`+ph+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("consent: read erased evidence: %w", err)
	}
	for _, r := range rows {
		out[r.contact] = append(out[r.contact], r.ErasedRow)
	}
	return out, nil
}

// ExplicitConsent reports whether p grants a consent on the legal basis
// consent: the new, explicit consent an erased address needs to come back.
func (p *Prepared) ExplicitConsent() bool {
	return p.in.State == StateGranted && p.in.LegalBasis == BasisConsent
}
