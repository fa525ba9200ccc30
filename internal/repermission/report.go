package repermission

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"time"

	"github.com/consentry/consentry/internal/cells"
	"github.com/consentry/consentry/internal/store"
)

// Outcomes of a contact in a run's report.
const (
	OutcomeSkipped   = "skipped"
	OutcomePending   = "pending" // not invited yet: the run is still sending
	OutcomeInvited   = "invited" // invited, their days still running
	OutcomeConfirmed = "confirmed"
	OutcomeLapsed    = "lapsed"
)

// ReportHeader is the first row of the report.
var ReportHeader = []string{"contact_id", "email", "first_name", "last_name", "outcome", "skip_reason", "invited_at", "lapses_at",
	"confirmed_at", "lapsed_at"}

// WriteReport writes the run's report as CSV to w: a row for each
// contact of its audience, in id order, with what became of them and
// when. It holds the contact's address and names only (never a custom
// field, so no sensitive value), each cell defused for spreadsheets
// (cells.Defuse); a contact deleted since has an empty address and names,
// an erased one the remainder's. An unknown run is a not-found error,
// before anything is written.
func (s *Service) WriteReport(ctx context.Context, id string, w io.Writer) error {
	if _, err := s.Get(ctx, id); err != nil {
		return err
	}
	out, err := cells.NewCSV(w)
	if err != nil {
		return err
	}
	if err := out.Write(ReportHeader); err != nil {
		return err
	}
	after := ""
	for {
		n := 0
		rows, err := s.DB.Read.QueryContext(ctx, `SELECT rc.contact_id, COALESCE(c.email, ''), COALESCE(c.first_name, ''), COALESCE(c.last_name, ''),
			rc.skip_reason, rc.invited_at, rc.lapse_due_at, rc.confirmed_at, rc.lapsed_at
			FROM repermission_contacts rc LEFT JOIN contacts c ON c.id = rc.contact_id
			WHERE rc.run_id = $1 AND rc.contact_id > $2 ORDER BY rc.contact_id LIMIT 1000`, id, after)
		if err != nil {
			return fmt.Errorf("repermission: read report: %w", err)
		}
		for rows.Next() {
			var contact, email, first, last, reason string
			var invited, due, confirmed, lapsed sql.NullInt64
			if err := rows.Scan(&contact, &email, &first, &last, &reason, &invited, &due, &confirmed, &lapsed); err != nil {
				rows.Close()
				return fmt.Errorf("repermission: read report: %w", err)
			}
			n++
			after = contact
			rec := []string{contact, email, first, last, outcome(reason, invited, confirmed, lapsed), reason,
				stamp(invited), stamp(due), stamp(confirmed), stamp(lapsed)}
			for i := range rec {
				rec[i] = cells.Defuse(rec[i])
			}
			if err := out.Write(rec); err != nil {
				rows.Close()
				return err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("repermission: read report: %w", err)
		}
		out.Flush()
		if err := out.Error(); err != nil {
			return err
		}
		if n < 1000 {
			return nil
		}
	}
}

// outcome says what became of a contact of a run.
func outcome(reason string, invited, confirmed, lapsed sql.NullInt64) string {
	switch {
	case reason != "":
		return OutcomeSkipped
	case confirmed.Valid:
		return OutcomeConfirmed
	case lapsed.Valid:
		return OutcomeLapsed
	case invited.Valid:
		return OutcomeInvited
	}
	return OutcomePending
}

func stamp(v sql.NullInt64) string {
	if !v.Valid {
		return ""
	}
	return store.FromMicros(v.Int64).Format(time.RFC3339)
}
