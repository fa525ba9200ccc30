package imports

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/store"
)

// Letting go of what an import keeps, a piece at a time.
//
// An import's file (up to 1 GiB, in chunks of 1 MiB that SQLite zeroes
// as they are deleted: secure_delete) and the hashes of its addresses
// (one a row), and, once the import is pruned, its report and the list of
// contacts it wrote (one a contact), are too much for one transaction.
// Deleted in the transaction that ended a million-row import, they held
// the database's only writer for over 30 seconds, and every other change,
// a contact's click included, waited that long. So the transaction that
// ends an import deletes the file's key, so that from then on the file
// is not read again (and, with a keyset, cannot be), and queues the job
// that deletes the rest, a few megabytes a transaction (letGoTx,
// HandleDrop); Prune deletes an import's rows the same way, once it has
// taken the import out of use.

// DropJobKind is the kind of the job that deletes an ended import's file.
const DropJobKind = "import_drop_file"

// piece is a table of rows kept for an import, deleted at most n rows at
// a time by key, a column that with import_id identifies a row.
type piece struct {
	table, key string
	n          int
}

var (
	// filePieces are an import's file and its addresses' hashes: 4 MiB
	// of file, or 2,000 hashes, a transaction.
	filePieces = []piece{{"import_file_chunks", "n", 4}, {"import_file_addresses", "address_hash", 2000}}
	// recordPieces are an import's report and the contacts it wrote.
	recordPieces = []piece{{"import_rows", "row_number", 2000}, {"import_row_addresses", "row_number", 2000}, {"import_contacts", "contact_id", 2000}}
)

// pieceTime is how long a piece's DELETE should take. A piece of the
// largest size took about 90 ms on PostgreSQL at the end of a
// million-row import, while each other change waited for it; the size
// halves while a piece takes more than twice this, and doubles back
// while it takes less than half.
const pieceTime = 10 * time.Millisecond

// deleteInPieces deletes the rows of import id in each of pieces, a piece
// a transaction, until none is left or, when until is not zero, until
// passes (after one piece deleted at least, so that every call gets
// on). It reports whether none is left.
func (s *Service) deleteInPieces(ctx context.Context, id string, pieces []piece, until time.Time) (bool, error) {
	first := true
	for _, p := range pieces {
		size := p.n
		for {
			if !first && !until.IsZero() && time.Now().After(until) {
				return false, nil
			}
			var n int64
			var took time.Duration
			err := s.DB.Write(ctx, func(tx *store.Tx) error {
				began := time.Now()
				res, err := tx.Exec(`DELETE FROM `+p.table+` WHERE import_id = $1 AND `+p.key+` IN
					(SELECT `+p.key+` FROM `+p.table+` WHERE import_id = $1 LIMIT $2)`, id, size)
				if err != nil {
					return err
				}
				took = time.Since(began)
				n, err = res.RowsAffected()
				return err
			})
			switch {
			case took > 2*pieceTime && size > 1:
				size /= 2
			case took < pieceTime/2 && size < p.n:
				size = min(p.n, size*2)
			}
			if err != nil {
				return false, fmt.Errorf("imports: delete %s: %w", p.table, err)
			}
			if n == 0 {
				break
			}
			first = false
		}
	}
	return true, nil
}

// letGoTx lets go of the file of import id inside tx: its key goes, so
// that the file is never read again (fileKey refuses an ended import's)
// and, with a keyset, the chunks left are ciphertext nobody can open; the
// job that deletes them is queued. The import's status must say, in the
// same transaction, that it will not be read again.
func (s *Service) letGoTx(tx *store.Tx, id string) error {
	if _, err := tx.Exec(`UPDATE imports SET file_key = '', file_key_id = 0 WHERE id = $1`, id); err != nil {
		return fmt.Errorf("imports: let go of the file: %w", err)
	}
	return jobs.Enqueue(tx, jobs.Spec{Kind: DropJobKind, Payload: jobPayload{ImportID: id}}, s.now())
}

// ended are the statuses of an import that will not read its file again.
var ended = []string{StatusDone, StatusFailed, StatusCancelled, StatusUndoing, StatusUndone, StatusDiscarded, statusPruning}

// HandleDrop is the handler of the job letGoTx queues: it deletes the
// ended import's file and address hashes in pieces for at most Slice,
// then hands over to a new job, as an import's run does, so that a file
// of a gigabyte never outlives a job's lease. An import that was deleted
// since, or is a dry run's (its file stays for the import that follows),
// is left alone, unless an erasure discarded it.
func (s *Service) HandleDrop(ctx context.Context, j *jobs.Job) error {
	var p jobPayload
	if err := j.Decode(&p); err != nil {
		return err
	}
	var gone bool
	ph, args := store.In(3, ended)
	if err := s.DB.Read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM imports WHERE id = $1
		AND (NOT dry_run OR status = $2) AND status IN (`+ph+`))`,
		append([]any{p.ImportID, StatusDiscarded}, args...)...).Scan(&gone); err != nil || !gone {
		return err
	}
	slice := s.Slice
	if slice <= 0 {
		slice = time.Minute
	}
	done, err := s.deleteInPieces(ctx, p.ImportID, filePieces, time.Now().Add(slice))
	if err != nil || done {
		return err
	}
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		return jobs.Enqueue(tx, jobs.Spec{Kind: DropJobKind, Payload: p}, s.now())
	})
}

// statusPruning is an import Prune is deleting: out of use and out of
// sight (Get and List do not show it), its rows going in pieces.
const statusPruning = "pruning"

// pruneBatch is how many imports one round of Prune looks at.
const pruneBatch = 100

// Prune deletes imports that ended, or were uploaded and never run, more
// than keep ago, with their report and file, and uploads that never
// finished arriving after a day; it finishes deleting the files of ended
// imports that a lost job left. Each import is first taken out of use
// (statusPruning), in a transaction that checks it is still due, so that
// no start or undo meets it half deleted; its rows then go in pieces, and
// the import last. It returns how many imports it deleted.
func (s *Service) Prune(ctx context.Context, keep time.Duration) (int64, error) {
	now := s.now()
	due := `(finished_at IS NOT NULL AND finished_at < $1 AND status NOT IN ($3, $6)) OR (status = $4 AND created_at < $2)
		OR (status = $5 AND created_at < $1) OR status = $6`
	dueArgs := []any{store.Micros(now.Add(-keep)), store.Micros(now.Add(-24 * time.Hour)), StatusUndoing, statusUploading, StatusUploaded,
		statusPruning}
	var n int64
	for {
		ids, err := store.QueryAll(ctx, s.DB.Read, scanID, `SELECT id FROM imports WHERE `+due+` ORDER BY id LIMIT $7`,
			append(dueArgs, pruneBatch)...)
		if err != nil {
			return n, fmt.Errorf("imports: find imports to prune: %w", err)
		}
		for _, id := range ids {
			var taken int64
			if err := s.DB.Write(ctx, func(tx *store.Tx) error {
				res, err := tx.Exec(`UPDATE imports SET status = $6, file_key = '', file_key_id = 0 WHERE id = $7 AND (`+due+`)`,
					append(dueArgs, id)...)
				if err != nil {
					return err
				}
				taken, err = res.RowsAffected()
				return err
			}); err != nil {
				return n, fmt.Errorf("imports: prune: %w", err)
			}
			if taken == 0 {
				continue // started, or undone, meanwhile
			}
			if _, err := s.deleteInPieces(ctx, id, append(recordPieces, filePieces...), time.Time{}); err != nil {
				return n, err
			}
			if err := s.DB.Write(ctx, func(tx *store.Tx) error {
				_, err := tx.Exec(`DELETE FROM imports WHERE id = $1 AND status = $2`, id, statusPruning)
				return err
			}); err != nil {
				return n, fmt.Errorf("imports: prune: %w", err)
			}
			n++
		}
		if len(ids) < pruneBatch {
			break
		}
	}
	ph, args := store.In(2, ended)
	left, err := store.QueryAll(ctx, s.DB.Read, scanID, `SELECT i.id FROM imports i WHERE (NOT i.dry_run OR i.status = $1) AND i.status IN (`+ph+`)
		AND (EXISTS (SELECT 1 FROM import_file_chunks c WHERE c.import_id = i.id)
			OR EXISTS (SELECT 1 FROM import_file_addresses a WHERE a.import_id = i.id))`, append([]any{StatusDiscarded}, args...)...)
	if err != nil {
		return n, fmt.Errorf("imports: find files left: %w", err)
	}
	for _, id := range left {
		if _, err := s.deleteInPieces(ctx, id, filePieces, time.Time{}); err != nil {
			return n, err
		}
	}
	return n, nil
}
