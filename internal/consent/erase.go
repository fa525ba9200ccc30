package consent

import (
	"context"
	"fmt"

	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
)

// EraseEvidenceTx blanks, inside tx, the personal evidence of the
// contact's consent records and opt-in changes: IP address, user agent and
// the confirmation token that linked to the contact. The rows keep
// purpose, state, legal basis, source, text version and language, method,
// actor and times: the proof that consent was given, by no one anyone can
// name. It returns what each row keeps of its evidence, for the ledger
// event of the erasure to commit to (ledger.CommitRemainder); none is an
// empty slice.
func EraseEvidenceTx(tx *store.Tx, contactID string) ([]ledger.ErasedRow, error) {
	for _, table := range []string{"consent_records", "opt_in_changes"} {
		if _, err := tx.Exec(`UPDATE `+table+` SET ip = '', user_agent = '', token_id = ''
			WHERE contact_id = $1 AND (ip <> '' OR user_agent <> '' OR token_id <> '')`, contactID); err != nil {
			return nil, fmt.Errorf("consent: erase evidence: %w", err)
		}
	}
	rows, err := store.QueryAll(context.Background(), tx, func(row store.Scanner) (ledger.ErasedRow, error) {
		var r ledger.ErasedRow
		return r, row.Scan(&r.Kind, &r.RecordID, &r.TextLanguage)
	}, `SELECT 'consent', id, text_language FROM consent_records WHERE contact_id = $1
		UNION ALL SELECT 'opt_in', id, '' FROM opt_in_changes WHERE contact_id = $1`, contactID)
	if err != nil {
		return nil, fmt.Errorf("consent: read erased evidence: %w", err)
	}
	return rows, nil
}

// ExplicitConsent reports whether p grants a consent on the legal basis
// consent: the new, explicit consent an erased address needs to come back.
func (p *Prepared) ExplicitConsent() bool {
	return p.in.State == StateGranted && p.in.LegalBasis == BasisConsent
}
