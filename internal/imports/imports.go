// Package imports brings contacts in from a CSV or Excel file (R24): each
// row becomes a contact, or meets the one that has its address, with the
// consents the file records written as consent records whose provenance
// (the source, the legal basis, when the consent was collected and what
// the person was shown) the import's definition gives. An import without
// that provenance is refused.
//
// A file is uploaded first: it is read through once (package tabular) to
// find its format, encoding, header and number of rows, and kept in the
// database, so that any instance can run it. It then runs as a job, in
// chunks of rows, each chunk one transaction that also moves the import's
// position: a restart resumes at the first row not written, a cancel stops
// between chunks, and undo removes the contacts the import created that
// nobody has changed since. A dry run reads every row as the import would
// and reports the rows that would fail, writing no contact.
package imports

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/tabular"
)

// Import statuses.
const (
	StatusUploaded  = "uploaded"  // the file is kept; no definition yet, or a dry run finished
	StatusQueued    = "queued"    // waiting for its job
	StatusRunning   = "running"   // its job is reading rows
	StatusDone      = "done"      // every row was read
	StatusFailed    = "failed"    // stopped by an error that is not a row's (Error says it)
	StatusCancelled = "cancelled" // stopped by a user between chunks
	StatusUndone    = "undone"    // done, then undone
)

// Outcomes of a row in the report (import_rows).
const (
	OutcomeFailed  = "failed"
	OutcomeSkipped = "skipped"
)

// Skip reasons beyond contact's (contact.Skip...): a row about an
// address met earlier in the same file under the skip policy.
const SkipDuplicateInFile = "duplicate_in_file"

// MaxFileBytes is the largest file an upload takes.
const MaxFileBytes = 1 << 30

// chunkBytes is how much of a file one row of import_file_chunks holds.
const chunkBytes = 1 << 20

// JobKind is the kind of the job that runs an import.
const JobKind = "import"

// Import is one file brought in, and what became of its rows.
type Import struct {
	ID        string   `json:"id"`
	FileName  string   `json:"file_name"`
	Format    string   `json:"format" enum:"csv,xlsx"`
	Encoding  string   `json:"encoding,omitempty" enum:"@text_encoding" doc:"the text encoding the whole file was read in (CSV; plain ASCII is utf-8, Latin-1 windows-1252, which read it the same); absent for a workbook"`
	Delimiter string   `json:"delimiter,omitempty" doc:"the CSV delimiter: ; , or a tab"`
	Header    []string `json:"header"`
	FileSize  int64    `json:"file_size"`
	TotalRows int64    `json:"total_rows" doc:"data rows in the file, the header not counted"`
	// Definition is what the import runs, or ran, with; nil before.
	Definition *Definition `json:"definition,omitempty"`
	DryRun     bool        `json:"dry_run" doc:"the last run wrote nothing; its counts say what an import would do"`
	Status     string      `json:"status" enum:"uploaded,queued,running,done,failed,cancelled,undoing,undone,discarded" doc:"discarded: its file held the address of a contact whose personal data was erased, and was removed"`
	// CancelRequested says a cancel was asked for: a queued or running
	// import stops at the end of the chunk it is writing.
	CancelRequested bool             `json:"cancel_requested,omitempty" doc:"a cancel was asked for; the import stops at the end of the chunk it is writing, and is then cancelled"`
	Position        int64            `json:"position" doc:"data rows read so far"`
	Created         int64            `json:"created"`
	Updated         int64            `json:"updated"`
	Unchanged       int64            `json:"unchanged"`
	Skipped         int64            `json:"skipped"`
	SkippedBy       map[string]int64 `json:"skipped_by" doc:"skipped rows by reason; the counts add up to skipped"`
	Failed          int64            `json:"failed"`
	// KeptConsents counts the consents of rows written (counted updated or
	// unchanged) that were left out because the contact gave or withdrew
	// that consent later: not rows, so neither a skip nor in SkippedBy.
	KeptConsents int64 `json:"kept_consents" doc:"the consents of the rows written that were left out because the contact's own is later (kept_newer_consent); consents, not rows, so not in skipped"`
	// ConsentsBeforeErasure counts the consents of rows written that were
	// left out because they were collected on or before the erasure of
	// the contact's address: an erased address comes back with the new
	// consent collected since, never with older ones. Consents, not rows.
	ConsentsBeforeErasure int64         `json:"consents_before_erasure" doc:"the consents of the rows written that were left out because they were collected on or before the erasure of the contact's address, which came back with a consent collected since; consents, not rows, so not in skipped"`
	Removed               int64         `json:"removed" doc:"contacts removed by undo"`
	Actor                 consent.Actor `json:"actor"`
	Error                 string        `json:"error,omitempty"`
	CreatedAt             time.Time     `json:"created_at"`
	StartedAt             *time.Time    `json:"started_at,omitempty"`
	FinishedAt            *time.Time    `json:"finished_at,omitempty"`
	UndoneAt              *time.Time    `json:"undone_at,omitempty"`
}

// Service uploads, runs, reports on and undoes imports.
type Service struct {
	DB       *store.DB
	Contacts *contact.Service
	Consent  *consent.Service
	Lists    *lists.Service
	Log      *slog.Logger
	Now      func() time.Time
	// Chunk is how many rows one transaction writes; 0 lets the import
	// size its chunks so that each holds the writer about Budget.
	Chunk int
	// Budget is how long a chunk's transaction should hold the writer,
	// which every other change waits for; 0 means 25 ms.
	Budget time.Duration
	// Slice is how long one run of the job reads before it hands over to
	// a new one (the job's lease bounds a run); 0 means one minute.
	Slice time.Duration
}

func (s *Service) now() time.Time { return store.Now(s.Now) }

func (s *Service) budget() time.Duration {
	if s.Budget > 0 {
		return s.Budget
	}
	return 25 * time.Millisecond
}

// Upload keeps the file r holds, under name, as a new import, and returns
// it with its format, encoding, header and number of rows. The file is
// read through once as it arrives; one that cannot be read (an unknown
// encoding, a line too long, a damaged workbook, no header) is refused
// with the reason and the row, and nothing is kept.
func (s *Service) Upload(ctx context.Context, name string, r io.Reader, actor consent.Actor) (*Import, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "upload"
	}
	if len(name) > 255 {
		name = strings.ToValidUTF8(name[:255], "")
	}
	now := s.now()
	imp := &Import{ID: uuid.Must(uuid.NewV7()).String(), FileName: name, Status: StatusUploaded, Actor: actor, CreatedAt: now,
		SkippedBy: map[string]int64{}}
	var key []byte
	if err := s.DB.Write(ctx, func(tx *store.Tx) error {
		k, wrapped, keyID, err := s.newFileKeyTx(tx, imp.ID)
		if err != nil {
			return err
		}
		key = k
		_, err = tx.Exec(`INSERT INTO imports (id, file_name, format, header, file_size, status, actor_kind, actor_id, created_at, file_key, file_key_id)
			VALUES ($1, $2, '', '[]', 0, $3, $4, $5, $6, $7, $8)`, imp.ID, imp.FileName, statusUploading, actor.Kind, actor.ID, store.Micros(now),
			wrapped, keyID)
		return err
	}); err != nil {
		return nil, fmt.Errorf("imports: create: %w", err)
	}
	err := s.receive(ctx, imp, key, r)
	if err != nil {
		s.Discard(ctx, imp.ID) // nothing half-kept
		return nil, err
	}
	return imp, nil
}

// Discard removes an upload that was never started, with its file, for a
// request refused after its file was kept (a multipart upload whose
// definition is refused, say): a refused request keeps nothing. An import
// that has started, or is gone, is left alone; one an erasure discarded
// while it arrived (StatusDiscarded) goes too. A large file kept
// encrypted goes out of sight and out of use at once (statusPruning),
// with its key, so that nobody can open it any more; its chunks and
// address hashes go in pieces (HandleDrop), and the import with the next
// Prune. A failure is logged, and the upload then goes with the uploads
// never started.
func (s *Service) Discard(ctx context.Context, id string) {
	if err := s.DB.Write(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		var key string
		err := tx.Row(`SELECT file_key FROM imports WHERE id = $1 AND status IN ($2, $3, $4) AND NOT dry_run AND position = 0`,
			id, statusUploading, StatusUploaded, StatusDiscarded).Scan(&key)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // started, or gone
		}
		if err != nil {
			return err
		}
		if small, err := smallFileTx(tx, id); err != nil || small || key == "" {
			if err == nil {
				_, err = tx.Exec(`DELETE FROM imports WHERE id = $1`, id)
			}
			return err
		}
		if _, err := tx.Exec(`UPDATE imports SET status = $2, file_key = '', file_key_id = 0 WHERE id = $1`, id, statusPruning); err != nil {
			return err
		}
		return jobs.Enqueue(tx, jobs.Spec{Kind: DropJobKind, Payload: jobPayload{ImportID: id}}, s.now())
	}); err != nil {
		s.Log.Error("imports: remove a refused upload", "import", id, "err", err)
	}
}

// receive stores r in chunks, sealed with key (none: as they come),
// while a reader counts its rows and notes its addresses, then writes
// what the reading found.
func (s *Service) receive(ctx context.Context, imp *Import, key []byte, r io.Reader) error {
	pr, pw := io.Pipe()
	type counted struct {
		info fileInfo
		err  error
	}
	done := make(chan counted, 1)
	var found addressSet
	go func() {
		info, err := readInfo(pr, found.add)
		pr.CloseWithError(err) // the writer stops at once if reading failed
		io.Copy(io.Discard, pr)
		done <- counted{info, err}
	}()
	size, n := int64(0), 0
	buf := make([]byte, chunkBytes)
	var werr error
	for werr == nil {
		k, rerr := io.ReadFull(r, buf)
		if k > 0 {
			size += int64(k)
			if size > MaxFileBytes {
				werr = errs.Invalid("file", "is larger than %d MiB", MaxFileBytes>>20)
				break
			}
			if _, err := pw.Write(buf[:k]); err != nil {
				break // the reader has refused the file: its error says why
			}
			stored, err := sealChunk(key, imp.ID, n, buf[:k])
			if err != nil {
				werr = fmt.Errorf("imports: encrypt upload: %w", err)
				break
			}
			stored, i := append([]byte(nil), stored...), n
			addresses, err := s.keepAddresses(ctx, imp, found.take())
			if err != nil {
				werr = err
				break
			}
			werr = s.DB.Write(ctx, func(tx *store.Tx) error { return s.keepTx(tx, imp, i, stored, addresses) })
			n++
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			werr = fmt.Errorf("imports: read upload: %w", rerr)
		}
	}
	pw.CloseWithError(werr)
	c := <-done
	switch {
	case werr != nil:
		return werr
	case c.err != nil:
		return c.err
	case size == 0:
		return errs.Invalid("file", "is empty")
	}
	imp.Format, imp.Encoding, imp.Delimiter, imp.Header, imp.TotalRows, imp.FileSize = c.info.format, c.info.encoding, c.info.delimiter,
		c.info.header, c.info.rows, size
	header, _ := json.Marshal(imp.Header)
	addresses, err := s.keepAddresses(ctx, imp, found.take())
	if err != nil {
		return err
	}
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		if err := s.keepTx(tx, imp, 0, nil, addresses); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE imports SET format = $2, encoding = $3, delimiter = $4, header = $5, file_size = $6, total_rows = $7,
			status = $8 WHERE id = $1`, imp.ID, imp.Format, imp.Encoding, imp.Delimiter, string(header), size, imp.TotalRows, StatusUploaded)
		return err
	})
}

// fileInfo is what reading a file through finds.
type fileInfo struct {
	format, encoding, delimiter string
	header                      []string
	rows                        int64
}

// readInfo reads a whole file, counting its data rows (ragged ones too:
// they fail one by one when the import runs), and gives note the
// addresses in its rows (addressesIn). A file that cannot be read to its
// end is refused, with the row where reading stopped; so is one with a
// header and no rows. The encoding is the one the whole file was read
// in: a file whose first 64 KiB are plain ASCII is told by a later row.
func readInfo(r io.Reader, note func(address string)) (fileInfo, error) {
	tr, err := tabular.Open(r, tabular.Options{})
	if err != nil {
		return fileInfo{}, fileError(err)
	}
	defer tr.Close()
	info := fileInfo{format: tr.Format(), header: tr.Header()}
	if d := tr.Delimiter(); d != 0 {
		info.delimiter = string(d)
	}
	for {
		row, err := tr.Next()
		if err == io.EOF {
			break
		}
		addressesIn(row.Cells, note) // a ragged row's cells come with its error
		var re *tabular.RowError
		if errors.As(err, &re) && !re.Fatal {
			info.rows++
			continue
		}
		if err != nil {
			return info, fileError(err)
		}
		info.rows++
	}
	if info.rows == 0 {
		e := errs.Invalid("file", "row %d: the file has a header and no rows of data after it", tr.HeaderRow())
		e.Row = tr.HeaderRow()
		return info, e
	}
	info.encoding = tr.Encoding()
	return info, nil
}

// fileError is a reading error as the field "file" of a refusal, with
// the row where reading stopped when there is one.
func fileError(err error) error {
	err = tabular.FileError(err)
	if e := errs.As(err); e != nil {
		return err
	}
	return errs.Invalid("file", "%s", err)
}

// chunkReader reads an import's file back from its chunks, one query per
// chunk, so that a run never holds the whole file, and opens each with
// the file's key (nil: kept as it came).
type chunkReader struct {
	ctx  context.Context
	q    store.Querier
	id   string
	key  []byte
	next int
	buf  []byte
	done bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.done {
			return 0, io.EOF
		}
		err := c.q.QueryRowContext(c.ctx, `SELECT data FROM import_file_chunks WHERE import_id = $1 AND n = $2`, c.id, c.next).Scan(&c.buf)
		if errors.Is(err, sql.ErrNoRows) {
			c.done = true
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("imports: read file: %w", err)
		}
		if c.buf, err = openChunk(c.key, c.id, c.next, c.buf); err != nil {
			return 0, err
		}
		c.next++
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// open reads the import's file from the start.
func (s *Service) open(ctx context.Context, id string) (*tabular.Reader, error) {
	key, err := s.fileKey(ctx, id)
	if err != nil {
		return nil, err
	}
	tr, err := tabular.Open(&chunkReader{ctx: ctx, q: s.DB.Read, id: id, key: key}, tabular.Options{})
	if err != nil {
		return nil, fileError(err)
	}
	return tr, nil
}

const importSelect = `SELECT id, file_name, format, encoding, delimiter, header, file_size, total_rows, definition, dry_run, status,
	cancel_requested, position, created, updated, unchanged, skipped, failed, skipped_by, removed, actor_kind, actor_id, error, created_at, started_at,
	finished_at, undone_at FROM imports`

func scanImport(row store.Scanner) (*Import, error) {
	var imp Import
	var header, def, skippedBy string
	var created int64
	var started, finished, undone sql.NullInt64
	err := row.Scan(&imp.ID, &imp.FileName, &imp.Format, &imp.Encoding, &imp.Delimiter, &header, &imp.FileSize, &imp.TotalRows, &def,
		&imp.DryRun, &imp.Status, &imp.CancelRequested, &imp.Position, &imp.Created, &imp.Updated, &imp.Unchanged, &imp.Skipped, &imp.Failed, &skippedBy,
		&imp.Removed, &imp.Actor.Kind, &imp.Actor.ID, &imp.Error, &created, &started, &finished, &undone)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("import", "")
	}
	if err != nil {
		return nil, fmt.Errorf("imports: read: %w", err)
	}
	if err := json.Unmarshal([]byte(header), &imp.Header); err != nil {
		return nil, fmt.Errorf("imports: decode header of %s: %w", imp.ID, err)
	}
	if def != "" {
		imp.Definition = new(Definition)
		if err := json.Unmarshal([]byte(def), imp.Definition); err != nil {
			return nil, fmt.Errorf("imports: decode definition of %s: %w", imp.ID, err)
		}
	}
	imp.SkippedBy = map[string]int64{}
	if err := json.Unmarshal([]byte(skippedBy), &imp.SkippedBy); err != nil {
		return nil, fmt.Errorf("imports: decode counts of %s: %w", imp.ID, err)
	}
	// The consents left out are stored with the skips (column
	// skipped_by), and shown apart: they are no rows.
	imp.KeptConsents, imp.ConsentsBeforeErasure = imp.SkippedBy[KeptNewerConsent], imp.SkippedBy[ConsentBeforeErasure]
	delete(imp.SkippedBy, KeptNewerConsent)
	delete(imp.SkippedBy, ConsentBeforeErasure)
	imp.CreatedAt = store.FromMicros(created)
	imp.StartedAt, imp.FinishedAt, imp.UndoneAt = optional(started), optional(finished), optional(undone)
	return &imp, nil
}

func optional(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := store.FromMicros(v.Int64)
	return &t
}

// Get returns one import, or a not-found error. An upload still arriving
// is not found.
func (s *Service) Get(ctx context.Context, id string) (*Import, error) {
	return scanImport(s.DB.Read.QueryRowContext(ctx, importSelect+` WHERE id = $1 AND status NOT IN ($2, $3)`, id, statusUploading, statusPruning))
}

// List returns the imports, newest first, at most limit (1 to 200).
func (s *Service) List(ctx context.Context, limit int) ([]*Import, error) {
	if limit < 1 || limit > 200 {
		limit = 50
	}
	return store.QueryAll(ctx, s.DB.Read, scanImport, importSelect+` WHERE status NOT IN ($2, $3) ORDER BY created_at DESC, id DESC LIMIT $1`,
		limit, statusUploading, statusPruning)
}

// Start checks d against the import's file and queues the import's job:
// a dry run that writes no contact, or the import itself. An import runs
// once; a dry run may be repeated, and followed by the import. Errors name
// the field of d at fault; nothing changes on error.
func (s *Service) Start(ctx context.Context, id string, d Definition, dryRun bool) (*Import, error) {
	imp, r, err := s.resolve(ctx, id, d)
	if err != nil {
		return nil, err
	}
	def, _ := json.Marshal(r.def)
	now := s.now()
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(`UPDATE imports SET definition = $2, dry_run = $3, status = $4, cancel_requested = FALSE, position = 0, created = 0, updated = 0,
			unchanged = 0, skipped = 0, failed = 0, skipped_by = '{}', error = '', started_at = $5, finished_at = NULL
			WHERE id = $1 AND status = $6`, id, string(def), dryRun, StatusQueued, store.Micros(now), StatusUploaded)
		if err != nil {
			return fmt.Errorf("imports: start: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errs.Conflict("import_started", "status", "the import has run already (%s); upload the file again to import it again", imp.Status)
		}
		if err := clearReportTx(tx, id); err != nil {
			return err
		}
		return jobs.Enqueue(tx, jobs.Spec{Kind: JobKind, Payload: jobPayload{ImportID: id}, UniqueKey: "import/" + id}, now)
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// Cancel asks a queued or running import to stop; it stops between
// chunks, keeping what it wrote (undo removes that). An import that has
// ended is refused.
func (s *Service) Cancel(ctx context.Context, id string) (*Import, error) {
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(`UPDATE imports SET cancel_requested = TRUE WHERE id = $1 AND status IN ($2, $3)`, id, StatusQueued, StatusRunning)
		if err != nil {
			return fmt.Errorf("imports: cancel: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errs.Conflict("import_not_running", "status", "only a queued or running import can be cancelled")
		}
		return nil
	})
	if err != nil {
		if _, gerr := s.Get(ctx, id); gerr != nil {
			return nil, gerr
		}
		return nil, err
	}
	return s.Get(ctx, id)
}

// Written returns the import with the ids of the contacts it created or
// changed (import_contacts), in id order, for a re-permission email to
// them (package repermission). An import that does not exist is a
// not-found error; one that wrote nothing, or a dry run, an empty list.
func (s *Service) Written(ctx context.Context, id string) (*Import, []string, error) {
	imp, err := s.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	ids, err := store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (string, error) {
		var id string
		return id, row.Scan(&id)
	}, `SELECT contact_id FROM import_contacts WHERE import_id = $1 ORDER BY contact_id`, id)
	if err != nil {
		return nil, nil, fmt.Errorf("imports: read written contacts: %w", err)
	}
	return imp, ids, nil
}
