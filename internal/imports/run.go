package imports

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/suppression"
	"github.com/consentry/consentry/internal/tabular"
)

// KeptNewerConsent is the key under which the imports table's skipped_by
// column keeps Import.KeptConsents: the consents a file had for a contact
// who gave a later one since, which the import leaves.
const KeptNewerConsent = "kept_newer_consent"

// ConsentBeforeErasure is the key under which the imports table's
// skipped_by column keeps Import.ConsentsBeforeErasure: the consents of
// rows about an address erased before that were collected on or before
// the erasure, which the import leaves out.
const ConsentBeforeErasure = "consent_before_erasure"

type jobPayload struct {
	ImportID string `json:"import_id"`
}

// errStop ends a run that another instance, a cancel or an end has
// overtaken; nothing is wrong.
var errStop = errors.New("imports: stop")

// Handle is the job handler: it reads the import's rows from where it
// stands, a chunk per transaction, for at most Slice, then hands over to a
// new job so that no run outlives its lease. A run finds the import
// cancelled, or ended, and stops.
func (s *Service) Handle(ctx context.Context, j *jobs.Job) error {
	var p jobPayload
	if err := j.Decode(&p); err != nil {
		return err
	}
	imp, err := s.Get(ctx, p.ImportID)
	if errs.Is(err, errs.KindNotFound) {
		return nil // deleted since
	}
	if err != nil {
		return err
	}
	if imp.Status != StatusQueued && imp.Status != StatusRunning {
		return nil
	}
	err = s.run(ctx, imp)
	switch {
	case errors.Is(err, errStop):
		return nil
	case err != nil && (j.Attempt >= j.MaxAttempts || errs.As(err) != nil):
		// A definition that no longer holds (a purpose deleted since) fails
		// at once; anything else runs again with backoff, from the position
		// the last chunk committed, so a database restarting fails no import.
		s.Log.Error("imports: an import stopped", "import", imp.ID, "err", err)
		return s.end(context.WithoutCancel(ctx), imp.ID, StatusFailed, err.Error())
	}
	return err
}

// run is one run of an import's job.
func (s *Service) run(ctx context.Context, imp *Import) error {
	if err := s.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`UPDATE imports SET status = $2 WHERE id = $1 AND status = $3`, imp.ID, StatusRunning, StatusQueued)
		return err
	}); err != nil {
		return err
	}
	r, err := s.check(ctx, *imp.Definition, imp.Header)
	if err != nil {
		return fmt.Errorf("the definition no longer holds: %w", err)
	}
	if imp.DryRun && imp.Position > 0 {
		// A dry run keeps the addresses it met in memory only: after a
		// restart it reads the file again from the start.
		if err := s.DB.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`UPDATE imports SET position = 0, created = 0, updated = 0, unchanged = 0, skipped = 0, failed = 0,
				skipped_by = '{}' WHERE id = $1`, imp.ID)
			if err == nil {
				err = clearReportTx(tx, imp.ID)
			}
			return err
		}); err != nil {
			return err
		}
		imp.Position = 0
	}
	tr, err := s.open(ctx, imp.ID)
	if err != nil {
		return err
	}
	defer tr.Close()
	for i := int64(0); i < imp.Position; i++ {
		if _, err := tr.Next(); err != nil && !rowFailure(err) {
			return fmt.Errorf("imports: skip to row %d: %w", imp.Position, err)
		}
	}
	w := &writer{s: s, imp: imp, r: r, tr: tr, pos: imp.Position, seen: map[uint64]uint8{}, seed: maphash.MakeSeed(), size: s.Chunk}
	if w.size <= 0 {
		w.size = 50
	}
	if w.armed, err = suppression.Armed(ctx, s.DB); err != nil {
		return err
	}
	slice := s.Slice
	if slice <= 0 {
		slice = time.Minute
	}
	until := time.Now().Add(slice)
	for {
		rows, end, err := w.read(w.size)
		if err != nil {
			return err
		}
		if len(rows) > 0 {
			w.writing = 0
			if err := w.write(ctx, rows); err != nil {
				return err
			}
			w.resize(w.writing)
			if err := w.restat(ctx); err != nil {
				return err
			}
		}
		if end {
			return s.end(ctx, imp.ID, StatusDone, "")
		}
		if !imp.DryRun && time.Now().After(until) { // a dry run keeps what it met in memory: it runs in one go
			return s.DB.Write(ctx, func(tx *store.Tx) error {
				return jobs.Enqueue(tx, jobs.Spec{Kind: JobKind, Payload: jobPayload{ImportID: imp.ID}}, s.now())
			})
		}
	}
}

// rowFailure reports whether err is one row's, after which reading goes on.
func rowFailure(err error) bool {
	var re *tabular.RowError
	return errors.As(err, &re) && !re.Fatal
}

// end marks the import ended with status, and lets its file go.
func (s *Service) end(ctx context.Context, id, status, why string) error {
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(`UPDATE imports SET status = $2, error = $3, finished_at = $4 WHERE id = $1 AND status IN ($5, $6)`,
			id, status, why, store.Micros(s.now()), StatusQueued, StatusRunning); err != nil {
			return fmt.Errorf("imports: end: %w", err)
		}
		return s.dropFileUnlessDryRunTx(tx, id)
	})
}

// dropFileUnlessDryRunTx lets go of the file of an import that will not
// be read again (letGoTx; HandleDrop deletes it after). A dry run, however
// it ended, keeps it and goes back to uploaded, for the import (or
// another dry run) that follows; one that failed or was cancelled says
// so in its error. One an erasure discarded meanwhile stays discarded.
func (s *Service) dropFileUnlessDryRunTx(tx *store.Tx, id string) error {
	var dry bool
	err := tx.Row(`SELECT dry_run FROM imports WHERE id = $1`, id).Scan(&dry)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // deleted meanwhile, with its file
	}
	if err != nil {
		return fmt.Errorf("imports: drop file: %w", err)
	}
	if !dry {
		return s.letGoTx(tx, id) // HandleDrop deletes it after
	}
	_, err = tx.Exec(`UPDATE imports SET status = $2, cancel_requested = FALSE,
		error = CASE WHEN status = $3 THEN 'the dry run was cancelled' ELSE error END
		WHERE id = $1 AND status IN ($4, $3, $5)`, id, StatusUploaded, StatusCancelled, StatusDone, StatusFailed)
	return err
}

// writer carries one run through the file.
type writer struct {
	s     *Service
	imp   *Import
	r     *resolved
	tr    *tabular.Reader
	pos   int64 // data rows taken so far
	armed bool
	held  *readRow // a row read but left for the next chunk
	// writing is how long the last chunk's transactions held the writer,
	// from the start of its write function to its commit: what the
	// budget is about. Waiting for the writer, behind others, is not the
	// chunk's doing, and must not shrink it.
	writing time.Duration
	size    int // rows in the next chunk
	// seen holds what a dry run's rows so far would have done to their
	// addresses (met...), by the addresses' 64-bit hashes under seed: a
	// million addresses in a few tens of megabytes.
	seen map[uint64]uint8
	seed maphash.Seed
	// created counts the contacts this run created; statsAt is the count
	// at which restat next refreshes the planner's statistics.
	created, statsAt int64
}

// restat refreshes the database's statistics of the contacts table each
// time the run has quadrupled the contacts it created, from a thousand
// on (store.DB.Analyze): the address lookup of every chunk must go on
// using the address index as the table grows. Six refreshes cover a
// million rows.
func (w *writer) restat(ctx context.Context) error {
	if w.statsAt == 0 {
		w.statsAt = 1000
	}
	if w.created < w.statsAt {
		return nil
	}
	for w.statsAt <= w.created {
		w.statsAt *= 4
	}
	if err := w.s.DB.Analyze(ctx, "contacts"); err != nil {
		return fmt.Errorf("imports: refresh statistics: %w", err)
	}
	return nil
}

// Bounds of the chunk size the budget moves between.
const minChunk, maxChunk = 10, 1000

// resize sets the next chunk's size from how long the last one took, so
// that a chunk holds the writer about Budget: other changes wait for it,
// and an import should not make a contact's click wait. A size set in
// Service.Chunk stays.
func (w *writer) resize(took time.Duration) {
	if w.s.Chunk > 0 || took <= 0 {
		return
	}
	n := int(float64(w.size) * float64(w.s.budget()) / float64(took))
	n = max(min(n, 2*w.size, maxChunk), minChunk, w.size/2)
	w.size = n
}

// readRow is a data row as read, or why it could not be.
type readRow struct {
	number int
	cells  []string
	plan   *rowPlan
	fail   *rowError
	// erased says the row's address was erased: the report keeps none
	// of its cells (markErased).
	erased bool
	// ragged says the row has more or fewer cells than the header, so
	// its cells may not sit in their columns (reportCells).
	ragged bool
}

// read takes up to n rows, planned. A chunk ends before a row whose
// address an earlier row of the chunk has, so that the earlier one is
// written, and the later one meets it as a contact, as it would in a
// file written row by row. end reports the end of the file.
func (w *writer) read(n int) (rows []*readRow, end bool, err error) {
	keys := map[string]bool{}
	now := w.s.now()
	for len(rows) < n {
		row := w.held
		w.held = nil
		if row == nil {
			r, err := w.tr.Next()
			switch {
			case err == io.EOF:
				return rows, true, nil
			case rowFailure(err):
				var re *tabular.RowError
				errors.As(err, &re)
				// A row of the wrong width comes with its cells, which the
				// report keeps for the operator to correct it.
				row = &readRow{number: re.Row, cells: append([]string(nil), r.Cells...), fail: &rowError{reason: re.Reason}, ragged: true}
			case err != nil:
				return nil, false, err
			default:
				row = &readRow{number: r.Number, cells: append([]string(nil), r.Cells...)}
				plan, fail := w.r.plan(w.s, w.imp.ID, w.imp.Actor, r.Number, row.cells, now)
				row.plan, row.fail = plan, fail
			}
		}
		if row.plan != nil {
			k := row.plan.emailKey()
			if keys[k] {
				w.held = row
				return rows, false, nil
			}
			keys[k] = true
		}
		rows = append(rows, row)
	}
	return rows, false, nil
}

// tally is what a chunk did, added to the import's counts as it commits.
type tally struct {
	created, updated, unchanged, skipped, failed int64
	skippedBy                                    map[string]int64
	kept                                         int64   // consents left for the contact's later one
	beforeErasure                                int64   // consents collected on or before the address's erasure, left out
	report                                       [][]any // import_rows
	// addresses holds the hash of every address in the cells the report
	// keeps (import_row_addresses), so that an erasure finds the row
	// whichever column holds the address.
	addresses [][]any
	touched   [][]any // import_contacts
	// keep is what the report keeps of a row's cells (resolved.reportCells).
	keep func(row *readRow, code string) []string
}

func (t *tally) skip(row *readRow, importID, code, reason string) {
	t.skipped++
	t.skippedBy[code]++
	t.report = append(t.report, t.reportRow(importID, row, t.keep(row, code), OutcomeSkipped, code, "", reason))
}

func (t *tally) fail(row *readRow, importID string, e *rowError) {
	t.failed++
	t.report = append(t.report, t.reportRow(importID, row, t.keep(row, "invalid"), OutcomeFailed, "invalid", e.field, e.reason))
}

func (t *tally) reportRow(importID string, row *readRow, kept []string, outcome, code, field, reason string) []any {
	cells, _ := json.Marshal(kept)
	if kept == nil {
		cells = []byte("[]")
	}
	seen := map[int64]bool{}
	addressesIn(kept, func(a string) {
		if h := addressHash(a); !seen[h] {
			seen[h] = true
			t.addresses = append(t.addresses, []any{importID, int64(row.number), h})
		}
	})
	return []any{importID, int64(row.number), outcome, code, field, reason, string(cells)}
}

// write writes a chunk in one transaction with the import's new position
// and counts. Should that fail for one row's sake, the chunk is written
// again a row per transaction, and the row that fails alone is reported
// failed with its reason.
func (w *writer) write(ctx context.Context, rows []*readRow) error {
	err := w.commit(ctx, rows)
	if err != nil && len(rows) > 1 && !errors.Is(err, errStop) && ctx.Err() == nil {
		// Worth knowing: the rows now go one per transaction, which is
		// slower, until the one at fault is found.
		w.s.Log.Warn("imports: a chunk failed; writing its rows one by one", "import", w.imp.ID, "rows", len(rows), "err", err)
	}
	switch {
	case err == nil, errors.Is(err, errStop), ctx.Err() != nil:
		return err
	case len(rows) == 1: // the row fails alone: it is reported failed
		row := rows[0]
		return w.commit(ctx, []*readRow{{number: row.number, cells: row.cells, fail: asRowError(err)}})
	}
	for _, row := range rows {
		if err := w.write(ctx, []*readRow{row}); err != nil {
			return err
		}
	}
	return nil
}

// commit writes rows, moving the position past them, in one transaction.
// A dry run writes only the counts and the report.
func (w *writer) commit(ctx context.Context, rows []*readRow) error {
	var t tally
	from, cancelled := w.pos, false
	var began time.Time
	defer func() {
		if !began.IsZero() {
			w.writing += time.Since(began)
		}
	}()
	err := w.s.DB.Write(ctx, func(tx *store.Tx) error {
		began = time.Now()
		// Every event the rows write names the import (docs/events.md);
		// other changes may share the transaction, so only until this
		// function ends.
		events.SetImport(tx, w.imp.ID)
		defer events.SetImport(tx, "")
		t, cancelled = tally{skippedBy: map[string]int64{}, keep: w.r.reportCells}, false
		var pos int64
		var status string
		var cancel bool
		if err := tx.Row(`SELECT position, status, cancel_requested FROM imports WHERE id = $1`, w.imp.ID).Scan(&pos, &status, &cancel); err != nil {
			return fmt.Errorf("imports: read position: %w", err)
		}
		if cancel {
			if _, err := tx.Exec(`UPDATE imports SET status = $2, finished_at = $3 WHERE id = $1`, w.imp.ID, StatusCancelled,
				store.Micros(w.s.now())); err != nil {
				return err
			}
			cancelled = true
			return w.s.dropFileUnlessDryRunTx(tx, w.imp.ID)
		}
		if status != StatusRunning || pos != from {
			return errStop // another run has it
		}
		if err := w.rows(tx, &t, rows, w.s.now()); err != nil {
			return err
		}
		if err := tx.InsertRows(store.Prefix("imports: report rows"), `INSERT INTO import_rows (import_id, row_number, outcome, code, field, reason, cells)`,
			[]string{"text", "bigint", "text", "text", "text", "text", "text"}, t.report); err != nil {
			return err
		}
		if err := tx.InsertRows(store.Prefix("imports: report rows' addresses"), `INSERT INTO import_row_addresses (import_id, row_number, address_hash)`,
			[]string{"text", "bigint", "bigint"}, t.addresses); err != nil {
			return err
		}
		// A contact the import created and a later row changed stays
		// created, as of the later write (undo compares with it).
		if err := tx.ExecRows(store.Prefix("imports: note contacts"), `INSERT INTO import_contacts (import_id, contact_id, created, written_at)
			`+store.RowsHere+` ON CONFLICT (import_id, contact_id) DO UPDATE SET written_at = excluded.written_at`,
			[]string{"text", "text", "integer", "bigint"}, t.touched); err != nil {
			return err
		}
		return w.moveTx(tx, from+int64(len(rows)), &t)
	})
	if err != nil {
		return err
	}
	if cancelled {
		return errStop
	}
	w.pos = from + int64(len(rows))
	w.created += t.created
	return nil
}

// moveTx moves the import's position to pos and adds t to its counts.
func (w *writer) moveTx(tx *store.Tx, pos int64, t *tally) error {
	var raw string
	if err := tx.Row(`SELECT skipped_by FROM imports WHERE id = $1`, w.imp.ID).Scan(&raw); err != nil {
		return err
	}
	by := map[string]int64{}
	if err := json.Unmarshal([]byte(raw), &by); err != nil {
		return fmt.Errorf("imports: decode counts: %w", err)
	}
	for k, v := range t.skippedBy {
		by[k] += v
	}
	if t.kept > 0 {
		by[KeptNewerConsent] += t.kept
	}
	if t.beforeErasure > 0 {
		by[ConsentBeforeErasure] += t.beforeErasure
	}
	enc, _ := json.Marshal(by)
	_, err := tx.Exec(`UPDATE imports SET position = $2, created = created + $3, updated = updated + $4, unchanged = unchanged + $5,
		skipped = skipped + $6, failed = failed + $7, skipped_by = $8 WHERE id = $1`,
		w.imp.ID, pos, t.created, t.updated, t.unchanged, t.skipped, t.failed, string(enc))
	if err != nil {
		return fmt.Errorf("imports: move position: %w", err)
	}
	return nil
}

// rows writes a chunk's rows inside tx and counts them in t; a dry run
// counts them as they would be written, reading only.
//
// The chunk's addresses are looked up first, together. The rows of new
// addresses then read nothing, and are written gathered (store.Tx.Gather):
// each table's rows go as multi-row inserts, which is most of an import's
// speed. The rows of known contacts follow, one at a time, as each reads
// what it changes. A chunk never holds an address twice (read), so the two
// kinds never meet.
func (w *writer) rows(tx *store.Tx, t *tally, rows []*readRow, now time.Time) error {
	if err := w.markErased(tx, rows); err != nil {
		return err
	}
	var ins []*contact.Incoming
	var planned []*readRow
	for _, row := range rows {
		switch {
		case row.fail != nil:
			t.fail(row, w.imp.ID, row.fail)
		case w.imp.DryRun && w.metBefore(t, row):
		default:
			ins = append(ins, &row.plan.incoming)
			planned = append(planned, row)
		}
	}
	if len(ins) == 0 {
		return nil
	}
	look, err := contact.LookupTx(tx, ins, w.armed)
	if err != nil {
		return err
	}
	if w.imp.DryRun {
		for _, row := range planned {
			if err := w.row(tx, t, row, look, now); err != nil {
				e := errs.As(err)
				if e == nil {
					return err
				}
				t.fail(row, w.imp.ID, asRowError(err))
			}
		}
		return nil
	}
	var fresh, known []*readRow
	for _, row := range planned {
		if look.Known(&row.plan.incoming) {
			known = append(known, row)
		} else {
			fresh = append(fresh, row)
		}
	}
	if err := tx.Gather(len(fresh), func(i int) error { return w.row(tx, t, fresh[i], look, now) }); err != nil {
		return err
	}
	for _, row := range known {
		if err := w.row(tx, t, row, look, now); err != nil {
			return err
		}
	}
	return nil
}

// markErased marks, inside tx, the failed rows that hold an erased
// address in any cell: the report keeps none of their cells, as it keeps
// none of the rows skipped for one. An import under way when the address
// is erased meets it here, after the erasure removed the cells reported
// before it.
func (w *writer) markErased(tx *store.Tx, rows []*readRow) error {
	var addresses []string
	for _, row := range rows {
		if row.fail != nil {
			addressesIn(row.cells, func(a string) { addresses = append(addresses, a) })
		}
	}
	if len(addresses) == 0 {
		return nil
	}
	erased, err := suppression.CheckManyTx(tx, addresses)
	if err != nil || len(erased) == 0 {
		return err
	}
	for _, row := range rows {
		if row.fail != nil {
			addressesIn(row.cells, func(a string) {
				if _, ok := erased[a]; ok {
					row.erased = true
				}
			})
		}
	}
	return nil
}

// row writes one planned row inside tx and counts it in t. In a dry run
// it writes nothing and counts the row as the import would: the same
// decisions, made by reading (contact.Service.PlanImportTx,
// lists.WouldJoinTx), so that a dry run's counts and report are the
// import's.
func (w *writer) row(tx *store.Tx, t *tally, row *readRow, look *contact.Lookup, now time.Time) error {
	id, dry := w.imp.ID, w.imp.DryRun
	p := row.plan
	var out contact.ImportOutcome
	var err error
	if dry {
		out, err = w.s.Contacts.PlanImportTx(tx, &p.incoming, look, w.r.defs, w.r.def.Duplicates)
	} else {
		ev := consent.Evidence{Method: consent.MethodImport, ImportID: id}
		out, err = w.s.Contacts.ImportTx(tx, &p.incoming, look, w.r.defs, w.r.def.Duplicates, w.armed, w.imp.Actor, ev, now)
	}
	if err != nil {
		return err
	}
	stopsOnly := out.Skipped == contact.SkipDuplicate
	var withdrew bool
	if stopsOnly {
		// The skip policy leaves the contact's fields, not the person's
		// choice to stop: the row's opt-out (applied by ImportTx) and its
		// withdrawals are written all the same.
		if withdrew, err = w.consents(tx, t, p, out, dry, true, now); err != nil {
			return err
		}
		if out.Updated || withdrew {
			out.Skipped = ""
		}
	}
	switch out.Skipped {
	case "":
	case contact.SkipDuplicate:
		code, why := contact.SkipDuplicate, "the address is a contact's already, and duplicates are skipped"
		var mine bool
		if dry {
			mine = w.seen[w.hash(row)]&metChanged != 0 // an earlier row would have changed the contact, as import_contacts then says
		} else {
			if err := tx.Row(`SELECT EXISTS (SELECT 1 FROM import_contacts WHERE import_id = $1 AND contact_id = $2)`, id, out.Key.ID).Scan(&mine); err != nil {
				return err
			}
		}
		if mine {
			code, why = SkipDuplicateInFile, "an earlier row of the file has the address"
		}
		t.skip(row, id, code, why)
		return nil
	case contact.SkipErasedAddress:
		t.skip(row, id, out.Skipped, "the address was erased; it comes back only with an explicit consent in the row collected after the erasure")
		return nil
	default:
		t.skip(row, id, out.Skipped, "the contact asked to stop processing, or was erased: their record is locked")
		return nil
	}
	changed := out.Created || out.Updated || withdrew
	k := out.Key
	if !stopsOnly {
		wrote, err := w.consents(tx, t, p, out, dry, false, now)
		if err != nil {
			return err
		}
		changed = changed || wrote
	}
	for _, l := range p.lists {
		if stopsOnly {
			break // joining a list is no stop
		}
		var joined bool
		switch {
		case out.Created && dry:
		case out.Created:
			if err := lists.JoinNewTx(tx, k.ID, l, "import", now); err != nil {
				return err
			}
		case dry:
			joined, err = lists.WouldJoinTx(tx, k.ID, l.ID)
		default:
			joined, err = lists.JoinLater(tx, k.ID, l.ID, "import", now)
		}
		if err != nil {
			return err
		}
		changed = changed || joined
	}
	switch {
	case out.Created:
		t.created++
	case changed:
		t.updated++
	default:
		t.unchanged++
	}
	if dry {
		w.met(row, out.Created, changed)
	}
	if changed && !dry {
		created := 0
		if out.Created {
			created = 1
		}
		t.touched = append(t.touched, []any{id, k.ID, created, store.Micros(now)})
	}
	return nil
}

// consents writes the row's consents for the contact of out (only its
// withdrawals when withdrawalsOnly) and reports whether any was written;
// a dry run writes nothing and reports whether any would be. The import,
// its dry run and its preview all decide here which of a row's consents
// are written. Left out are: a consent collected on or before the
// erasure of the contact's address (out.Admits; counted in
// t.beforeErasure), as the address came back with the new consent only;
// a consent the contact's record says already; and one the contact gave
// or withdrew after the row's collection date (counted in t.kept).
func (w *writer) consents(tx *store.Tx, t *tally, p *rowPlan, out contact.ImportOutcome, dry, withdrawalsOnly bool, now time.Time) (bool, error) {
	wrote := false
	for _, c := range p.consents {
		if withdrawalsOnly && c.state != consent.StateWithdrawn {
			continue
		}
		if !out.Admits(c.collected) {
			t.beforeErasure++
			continue
		}
		if !out.Created {
			state, given, ok, err := consent.CurrentTx(tx, out.Key.ID, c.purposeID)
			if err != nil {
				return false, err
			}
			if ok && state == c.state {
				continue // the record says so already
			}
			if ok && given.After(c.collected) {
				t.kept++
				continue
			}
		}
		if !dry {
			if _, err := c.prepared.Apply(tx, out.Key, now); err != nil {
				return false, err
			}
		}
		wrote = true
	}
	return wrote, nil
}

// What a dry run's earlier rows would have done to an address (writer.seen).
const (
	metCreated  uint8 = 1 << iota // an earlier row would have created the contact
	metChanged                    // an earlier row would have created or changed the contact (import_contacts)
	metOptedOut                   // the contact would be opted out by an earlier row
)

func (w *writer) hash(row *readRow) uint64 { return maphash.String(w.seed, row.plan.emailKey()) }

// met notes, in a dry run, what row would do to its address's contact, for
// the later rows of the file that have the address. A row skipped, or
// failed, leaves nothing: a later row meets the address as the database
// has it, as in the import.
func (w *writer) met(row *readRow, created, changed bool) {
	h := w.hash(row)
	if created {
		w.seen[h] |= metCreated
	}
	if changed || created {
		w.seen[h] |= metChanged
		if row.plan.incoming.OptInStatus == contactstate.OptOutUser {
			w.seen[h] |= metOptedOut
		}
	}
}

// metBefore counts, in a dry run, a row whose address an earlier row of the
// file would have made a new contact, and reports whether it did: nothing
// was written for the earlier row, so the database does not know the
// contact, and the row is counted as the import would meet it, a contact's
// already, created by this import (a dry run does not tell whether its
// fields would change the earlier row's). Under the skip policy the row
// is counted updated when it would opt the contact out or withdraw a
// consent, and skipped as duplicate_in_file otherwise. A row whose
// address an earlier row skipped, failed or met as a known contact is
// decided against the database, as the import decides it.
func (w *writer) metBefore(t *tally, row *readRow) bool {
	h := w.hash(row)
	if w.seen[h]&metCreated == 0 {
		return false
	}
	if w.r.def.Duplicates != contact.DuplicateSkip {
		t.updated++
		return true
	}
	stops := row.plan.incoming.OptInStatus == contactstate.OptOutUser && w.seen[h]&metOptedOut == 0
	for _, c := range row.plan.consents {
		stops = stops || c.state == consent.StateWithdrawn
	}
	if !stops {
		t.skip(row, w.imp.ID, SkipDuplicateInFile, "an earlier row of the file has the address")
		return true
	}
	if row.plan.incoming.OptInStatus == contactstate.OptOutUser {
		w.seen[h] |= metOptedOut
	}
	t.updated++
	return true
}
