package imports

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/consentry/consentry/internal/cells"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/store"
)

// UndoJobKind is the kind of the job that undoes an import.
const UndoJobKind = "import_undo"

// StatusUndoing is an import whose undo job is removing its contacts.
const StatusUndoing = "undoing"

type undoPayload struct {
	ImportID string        `json:"import_id"`
	Actor    consent.Actor `json:"actor"`
}

// Undo queues the removal of the contacts the import created that
// nobody has changed since (their fields, consents, opt-in status and
// lists are as the import left them). Each removal is in the ledger and
// the erasure log, as any deletion is, under actor; contacts the import
// only changed are left as they are. An import that wrote nothing (a dry
// run), is still running or was undone already is refused.
func (s *Service) Undo(ctx context.Context, id string, actor consent.Actor) (*Import, error) {
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(`UPDATE imports SET status = $2 WHERE id = $1 AND NOT dry_run AND status IN ($3, $4, $5)`,
			id, StatusUndoing, StatusDone, StatusCancelled, StatusFailed)
		if err != nil {
			return fmt.Errorf("imports: undo: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errs.Conflict("import_not_undoable", "status", "only an import that has ended, and wrote contacts, can be undone, once")
		}
		return jobs.Enqueue(tx, jobs.Spec{Kind: UndoJobKind, Payload: undoPayload{ImportID: id, Actor: actor}, UniqueKey: "import_undo/" + id}, s.now())
	})
	if err != nil {
		if _, gerr := s.Get(ctx, id); gerr != nil {
			return nil, gerr
		}
		return nil, err
	}
	return s.Get(ctx, id)
}

// HandleUndo is the undo job's handler: it removes the import's
// untouched contacts a batch per transaction, then marks it undone with
// the import.undone event. Each removal writes contact.deleted with the
// reason import_undone and the import's id.
func (s *Service) HandleUndo(ctx context.Context, j *jobs.Job) error {
	var p undoPayload
	if err := j.Decode(&p); err != nil {
		return err
	}
	for {
		n, err := s.undoBatch(ctx, p.ImportID, p.Actor, 200)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		now := s.now()
		res, err := tx.Exec(`UPDATE imports SET status = $2, undone_at = $3 WHERE id = $1 AND status = $4`, p.ImportID, StatusUndone,
			store.Micros(now), StatusUndoing)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil // undone already, by a run before this one
		}
		var removed int64
		if err := tx.Row(`SELECT removed FROM imports WHERE id = $1`, p.ImportID).Scan(&removed); err != nil {
			return fmt.Errorf("imports: read removed: %w", err)
		}
		return events.Emit(tx, events.ImportUndone, "", events.ImportUndoneData{ImportID: p.ImportID, Removed: removed, ActorKind: p.Actor.Kind}, now)
	})
}

// untouchedSQL selects the contacts an import created that nothing has
// changed since it wrote them.
const untouchedSQL = `SELECT ic.contact_id FROM import_contacts ic JOIN contacts c ON c.id = ic.contact_id
	WHERE ic.import_id = $1 AND ic.created = 1 AND c.updated_at <= ic.written_at
	AND NOT EXISTS (SELECT 1 FROM consent_records r WHERE r.contact_id = c.id AND r.recorded_at > ic.written_at)
	AND NOT EXISTS (SELECT 1 FROM opt_in_changes o WHERE o.contact_id = c.id AND o.recorded_at > ic.written_at)
	AND NOT EXISTS (SELECT 1 FROM list_subscriptions l WHERE l.contact_id = c.id AND l.changed_at > ic.written_at)
	ORDER BY ic.contact_id LIMIT $2`

// undoBatch removes up to n untouched contacts of the import in one
// transaction, and returns how many it took up: removed, or kept by a
// legal hold. Their links to the import go with them, so the next batch
// moves on; 0 means none is left.
func (s *Service) undoBatch(ctx context.Context, id string, actor consent.Actor, n int) (int, error) {
	taken := 0
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		ids, err := store.QueryAll(ctx, tx, func(row store.Scanner) (string, error) {
			var id string
			return id, row.Scan(&id)
		}, untouchedSQL, id, n)
		if err != nil {
			return fmt.Errorf("imports: find contacts to remove: %w", err)
		}
		taken = len(ids)
		if taken == 0 {
			return nil
		}
		now, removed := s.now(), 0
		events.SetImport(tx, id) // what the removals write says whose undo it was
		defer events.SetImport(tx, "")
		for _, cid := range ids {
			err := contact.RemoveImportedTx(tx, cid, id, actor, now)
			if errs.Is(err, errs.KindRefused) {
				continue // a legal hold keeps the contact
			}
			if err != nil {
				return err
			}
			removed++
		}
		ph, args := store.In(2, ids)
		if _, err := tx.Exec(`DELETE FROM import_contacts WHERE import_id = $1 AND contact_id IN (`+ph+`)`, append([]any{id}, args...)...); err != nil {
			return fmt.Errorf("imports: forget removed contacts: %w", err)
		}
		_, err = tx.Exec(`UPDATE imports SET removed = removed + $2 WHERE id = $1`, id, removed)
		return err
	})
	return taken, err
}

// ReportRow is a row of an import that failed or was skipped, with why.
type ReportRow struct {
	Row     int64    `json:"row" doc:"the row's number in the file, the header being row 1"`
	Outcome string   `json:"outcome" enum:"failed,skipped"`
	Code    string   `json:"code"`
	Field   string   `json:"field,omitempty"`
	Reason  string   `json:"reason"`
	Cells   []string `json:"cells"`
}

// WriteReport writes the import's failed and skipped rows as CSV, in file
// order: row number, outcome, code, field, reason, then the row's own
// cells under the file's header, so the file can be fixed and imported
// again. Cells that a spreadsheet would run as formulas are defused, the
// file's header's too. What the report keeps of the cells is
// resolved.reportCells': sensitive values masked, none of erased or
// locked contacts' rows.
func (s *Service) WriteReport(ctx context.Context, id string, w io.Writer) error {
	imp, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	cw, err := cells.NewCSV(w)
	if err != nil {
		return err
	}
	header := []string{"row", "outcome", "code", "field", "reason"}
	for _, h := range imp.Header {
		header = append(header, cells.Defuse(h))
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	after := int64(0)
	for {
		rows, err := s.ReportRows(ctx, id, after, 1000)
		if err != nil {
			return err
		}
		for _, r := range rows {
			rec := []string{strconv.FormatInt(r.Row, 10), r.Outcome, r.Code, r.Field, cells.Defuse(r.Reason)}
			for _, c := range r.Cells {
				rec = append(rec, cells.Defuse(c))
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
			after = r.Row
		}
		if len(rows) < 1000 {
			break
		}
	}
	cw.Flush()
	return cw.Error()
}

// ReportRows returns up to limit of the import's failed and skipped rows
// after row number after, in file order; none is an empty list.
func (s *Service) ReportRows(ctx context.Context, id string, after int64, limit int) ([]ReportRow, error) {
	return store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (ReportRow, error) {
		var r ReportRow
		var cells string
		if err := row.Scan(&r.Row, &r.Outcome, &r.Code, &r.Field, &r.Reason, &cells); err != nil {
			return r, err
		}
		return r, json.Unmarshal([]byte(cells), &r.Cells)
	}, `SELECT row_number, outcome, code, field, reason, cells FROM import_rows WHERE import_id = $1 AND row_number > $2
		ORDER BY row_number LIMIT $3`, id, after, limit)
}

// The prune sweep: imports and their reports are kept KeepFor after they
// end.
const (
	PruneJob      = "imports.prune"
	PruneInterval = 6 * time.Hour
	KeepFor       = 30 * 24 * time.Hour
)
