package imports

import (
	"context"
	"fmt"
	"time"

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
// ends an import makes its file unreadable at once, as its key goes
// (letGoTx), and what is left of it is deleted after, a few megabytes a
// transaction (dropFile); Prune deletes an import's rows the same way
// before the import itself.

// piece is a table of rows kept for an import, deleted n rows at a time
// by key, a column that with import_id identifies a row.
type piece struct {
	table, key string
	n          int
}

var (
	// filePieces are an import's file and its addresses' hashes: 4 MiB
	// of file, or 2,000 hashes, a transaction.
	filePieces = []piece{{"import_file_chunks", "n", 4}, {"import_file_addresses", "address_hash", 2000}}
	// recordPieces are an import's report and the contacts it wrote.
	recordPieces = []piece{{"import_rows", "row_number", 2000}, {"import_contacts", "contact_id", 2000}}
)

// deleteInPieces deletes the rows of import id in each of pieces, a piece
// a transaction, until none is left.
func (s *Service) deleteInPieces(ctx context.Context, id string, pieces []piece) error {
	for _, p := range pieces {
		for {
			var n int64
			err := s.DB.Write(ctx, func(tx *store.Tx) error {
				res, err := tx.Exec(`DELETE FROM `+p.table+` WHERE import_id = $1 AND `+p.key+` IN
					(SELECT `+p.key+` FROM `+p.table+` WHERE import_id = $1 LIMIT $2)`, id, p.n)
				if err != nil {
					return err
				}
				n, err = res.RowsAffected()
				return err
			})
			if err != nil {
				return fmt.Errorf("imports: delete %s: %w", p.table, err)
			}
			if n == 0 {
				break
			}
		}
	}
	return nil
}

// letGoTx makes the file of import id unreadable inside tx, for good: its
// key goes, and the chunks left are ciphertext nobody can open. The
// import's status must say, in the same transaction, that it will not be
// read again; dropFile deletes the chunks after.
func letGoTx(tx *store.Tx, id string) error {
	if _, err := tx.Exec(`UPDATE imports SET file_key = '', file_key_id = 0 WHERE id = $1`, id); err != nil {
		return fmt.Errorf("imports: let go of the file: %w", err)
	}
	return nil
}

// ended are the statuses of an import that will not read its file again.
var ended = []string{StatusDone, StatusFailed, StatusCancelled, StatusUndoing, StatusUndone, StatusDiscarded}

// dropFile deletes, in pieces, the file and address hashes of import id
// if it has ended for real (a dry run's file stays for the import that
// follows it). It stops when ctx ends, as the service stops: a file of
// a gigabyte takes minutes, and must not hold up a restart. What is left
// then, or after a failure (logged), Prune deletes.
func (s *Service) dropFile(ctx context.Context, id string) {
	var gone bool
	ph, args := store.In(2, ended)
	err := s.DB.Read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM imports WHERE id = $1 AND NOT dry_run AND status IN (`+ph+`))`,
		append([]any{id}, args...)...).Scan(&gone)
	if err == nil && gone {
		err = s.deleteInPieces(ctx, id, filePieces)
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		s.Log.Info("imports: the deletion of an ended import's file stopped with the service; the prune sweep finishes it", "import", id)
	default:
		s.Log.Error("imports: delete an ended import's file", "import", id, "err", err)
	}
}

// pruneBatch is how many imports one round of Prune looks at.
const pruneBatch = 100

// Prune deletes imports that ended, or were uploaded and never run, more
// than keep ago, with their report and file, and uploads that never
// finished arriving after a day; it finishes deleting the files of
// imports that ended (dropFile) when that was cut short. Each import's
// rows go in pieces before the import itself. It returns how many imports
// it deleted.
func (s *Service) Prune(ctx context.Context, keep time.Duration) (int64, error) {
	now := s.now()
	due := `(finished_at IS NOT NULL AND finished_at < $1 AND status <> $3) OR (status = $4 AND created_at < $2) OR (status = $5 AND created_at < $1)`
	dueArgs := []any{store.Micros(now.Add(-keep)), store.Micros(now.Add(-24 * time.Hour)), StatusUndoing, statusUploading, StatusUploaded}
	var n int64
	for {
		ids, err := store.QueryAll(ctx, s.DB.Read, scanID, `SELECT id FROM imports WHERE `+due+` ORDER BY id LIMIT $6`,
			append(dueArgs, pruneBatch)...)
		if err != nil {
			return n, fmt.Errorf("imports: find imports to prune: %w", err)
		}
		for _, id := range ids {
			if err := s.deleteInPieces(ctx, id, append(recordPieces, filePieces...)); err != nil {
				return n, err
			}
			var gone int64
			if err := s.DB.Write(ctx, func(tx *store.Tx) error {
				res, err := tx.Exec(`DELETE FROM imports WHERE id = $6 AND (`+due+`)`, append(dueArgs, id)...)
				if err != nil {
					return err
				}
				gone, err = res.RowsAffected()
				return err
			}); err != nil {
				return n, fmt.Errorf("imports: prune: %w", err)
			}
			n += gone
		}
		if len(ids) < pruneBatch {
			break
		}
	}
	ph, args := store.In(1, ended)
	left, err := store.QueryAll(ctx, s.DB.Read, scanID, `SELECT i.id FROM imports i WHERE NOT i.dry_run AND i.status IN (`+ph+`)
		AND (EXISTS (SELECT 1 FROM import_file_chunks c WHERE c.import_id = i.id)
			OR EXISTS (SELECT 1 FROM import_file_addresses a WHERE a.import_id = i.id))`, args...)
	if err != nil {
		return n, fmt.Errorf("imports: find files left: %w", err)
	}
	for _, id := range left {
		if err := s.deleteInPieces(ctx, id, filePieces); err != nil {
			return n, err
		}
	}
	return n, nil
}
