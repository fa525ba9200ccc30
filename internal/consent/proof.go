package consent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/ledger"
)

// RecordOf returns the consent record recordID of contactID. It returns a
// not-found error when the contact has no such record, which includes a
// record of another contact: a proof is always read under the contact it
// belongs to.
func (s *Service) RecordOf(ctx context.Context, contactID, recordID string) (*Record, error) {
	r, err := scanRecord(s.DB.Read.QueryRowContext(ctx, recordSelect+` WHERE r.id = $1 AND r.contact_id = $2`, recordID, contactID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &errs.Error{Kind: errs.KindNotFound, Code: "consent_record_not_found", Message: "this contact has no consent record " + recordID}
	}
	if err != nil {
		return nil, fmt.Errorf("consent: read record: %w", err)
	}
	return &r, nil
}

// ShownTextOf returns the consent text record r names, in the language it
// was shown in: the version's translation into r.TextLanguage, or its own
// text when it has none or the record does not know the language. It
// returns a not-found error (field "text_version") when the purpose has
// no such version.
func (s *Service) ShownTextOf(ctx context.Context, r *Record) (ShownText, error) {
	return s.TextIn(ctx, r.PurposeID, r.TextVersion, r.TextLanguage)
}

// PurposeText returns one version of a purpose's consent text with its
// translations, and the purpose. It returns a not-found error (field
// "purpose" or "text_version") when either does not exist.
func (s *Service) PurposeText(ctx context.Context, purposeID string, version int) (*Purpose, *PurposeText, error) {
	p, err := s.Purpose(ctx, purposeID)
	if err != nil {
		return nil, nil, err
	}
	texts, err := s.PurposeTexts(ctx, p.ID)
	if err != nil {
		return nil, nil, err
	}
	for i := range texts {
		if texts[i].Version == version {
			return p, &texts[i], nil
		}
	}
	return nil, nil, errs.NotFound("text_version", "text_version")
}

// VerifyEntry checks the ledger from its first event up to position seq,
// and the consent record or opt-in change written with it (see
// ledger.VerifyUpTo). Nothing is kept: the ledger page's last
// verification stays that of the whole ledger.
func (s *Service) VerifyEntry(ctx context.Context, seq int64) (*ledger.Position, error) {
	return ledger.VerifyUpTo(ctx, s.DB, ledgerState{}, seq, s.Now())
}

// RecordByID returns the consent record id, whoever's it is, for what
// names a record by its id alone (its receipt). It returns a not-found
// error (code consent_record_not_found) when there is no such record.
func (s *Service) RecordByID(ctx context.Context, id string) (*Record, error) {
	r, err := scanRecord(s.DB.Read.QueryRowContext(ctx, recordSelect+` WHERE r.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &errs.Error{Kind: errs.KindNotFound, Code: "consent_record_not_found", Message: "there is no consent record " + id}
	}
	if err != nil {
		return nil, fmt.Errorf("consent: read record: %w", err)
	}
	return &r, nil
}
