package consent

import (
	"context"
	"fmt"
	"strings"

	"github.com/consentry/consentry/internal/store"
)

// Coverage is how many contacts have granted a purpose, against all.
type Coverage struct {
	PurposeID string
	Purpose   string
	Granted   int64
	Withdrawn int64
	Contacts  int64
}

// CoverageByPurpose returns, for every purpose by name, how many contacts
// have a current grant (an expired one counts as none) and how many
// withdrew, with the number of contacts. No purposes is an empty slice.
func (s *Service) CoverageByPurpose(ctx context.Context) ([]Coverage, error) {
	var total int64
	if err := s.DB.Read.QueryRowContext(ctx, `SELECT count(*) FROM contacts`).Scan(&total); err != nil {
		return nil, fmt.Errorf("consent: count contacts: %w", err)
	}
	now := store.Micros(s.Now())
	return store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (Coverage, error) {
		c := Coverage{Contacts: total}
		return c, row.Scan(&c.PurposeID, &c.Purpose, &c.Granted, &c.Withdrawn)
	}, `SELECT p.id, p.name,
		(SELECT count(*) FROM consent_current cc WHERE cc.purpose_id = p.id AND cc.state = 'granted' AND (cc.expires_at IS NULL OR cc.expires_at > $1)),
		(SELECT count(*) FROM consent_current cc WHERE cc.purpose_id = p.id AND cc.state = 'withdrawn')
		FROM purposes p ORDER BY p.name_key`, now)
}

// OptInCounts returns how many contacts have each opt-in status; a status
// no contact has is absent.
func (s *Service) OptInCounts(ctx context.Context) (map[string]int64, error) {
	out, err := store.CountBy(ctx, s.DB.Read, `SELECT opt_in_status, count(*) FROM contacts GROUP BY opt_in_status`)
	if err != nil {
		return nil, fmt.Errorf("consent: count opt-in statuses: %w", err)
	}
	return out, nil
}

// StatesOf returns the current consent states of the given contacts, by
// contact id and then purpose id ("granted" or "withdrawn"; an expired grant
// and no record are absent), in one query, for a page of a list.
func (s *Service) StatesOf(ctx context.Context, contactIDs []string) (map[string]map[string]string, error) {
	if len(contactIDs) == 0 {
		return map[string]map[string]string{}, nil
	}
	ph := make([]string, len(contactIDs))
	args := make([]any, 0, len(contactIDs)+1)
	args = append(args, store.Micros(s.Now()))
	for i, id := range contactIDs {
		ph[i] = fmt.Sprintf("$%d", i+2)
		args = append(args, id)
	}
	return s.states(ctx, "contact_id IN ("+strings.Join(ph, ", ")+")", args)
}

// StatesBetween is StatesOf for every contact whose id is after after
// ("" from the first) and at most last, in id order: a page read by key,
// in a query whose cost does not grow with the page as a list of ids
// does. Contacts in the range that the page left out are in it too; its
// reader looks up its own.
func (s *Service) StatesBetween(ctx context.Context, after, last string) (map[string]map[string]string, error) {
	return s.states(ctx, "contact_id > $2 AND contact_id <= $3", []any{store.Micros(s.Now()), after, last})
}

// states reads the current states of the contacts where selects, whose
// arguments start with now ($1).
func (s *Service) states(ctx context.Context, where string, args []any) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	rows, err := s.DB.Read.QueryContext(ctx, `SELECT contact_id, purpose_id, state FROM consent_current
		WHERE `+where+` AND (state = 'withdrawn' OR expires_at IS NULL OR expires_at > $1)`, args...)
	if err != nil {
		return nil, fmt.Errorf("consent: read states: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c, p, st string
		if err := rows.Scan(&c, &p, &st); err != nil {
			return nil, err
		}
		if out[c] == nil {
			out[c] = map[string]string{}
		}
		out[c][p] = st
	}
	return out, rows.Err()
}
