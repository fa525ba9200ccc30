package imports

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/suppression"
	"github.com/consentry/consentry/internal/vault"
)

// How what an import keeps of a file is protected.
//
// A file is kept in the database from its upload until its import ends
// (a dry run keeps it for the import that follows). With a keyset
// configured (always with the embedded database) it is kept encrypted, as
// sensitive values are (R11): each import has a data key of its own,
// wrapped by the keyset with the import's id as associated data
// (imports.file_key), and each chunk is sealed with it and the chunk's
// number as associated data, so that a chunk put in another place does
// not open. The key goes with the file; keys rotate wraps it anew
// (Rewrap).
//
// An erasure reaches what imports keep of the erased address in its own
// transaction (ForgetAddressesTx), without reading any file: a kept file
// is indexed as it arrives by a hash of every address in it
// (import_file_addresses), and a reported row by the hash of every
// address in the cells the report keeps of it (import_row_addresses).

// StatusDiscarded is an import whose kept file an erasure removed, as it
// held the address of a contact whose personal data was erased; Error
// says so. It cannot be started: the file is gone.
const StatusDiscarded = "discarded"

// discardedWhy is the Error of a discarded import.
const discardedWhy = "its file was removed, as it held the address of a contact whose personal data was erased; " +
	"upload the file again to import it (rows with that address are then skipped as an erased address)"

// errErasedWhileUploading refuses an upload that holds an address erased
// while it arrived.
var errErasedWhileUploading = errs.Conflict("upload_discarded", "file",
	"an address in the file was erased while the file was arriving, so the file was not kept; upload it again "+
		"(rows with that address are then skipped as an erased address)")

// statusUploading is an upload still arriving; it is not shown.
const statusUploading = "uploading"

// fileKeyOwner is what an import's file key is wrapped for: an id no
// contact has.
func fileKeyOwner(importID string) string { return "import-file/" + importID }

func chunkAD(importID string, n int) []byte {
	return []byte("import-file|" + importID + "|" + strconv.Itoa(n))
}

// newFileKeyTx makes the key of a new import's file inside tx, under the
// keyset key the database says is current; nil, "" and 0 without a
// keyset, when the file is kept as it comes.
func (s *Service) newFileKeyTx(tx *store.Tx, importID string) (key []byte, wrapped string, keyID int64, err error) {
	v := s.Contacts.Vault
	if v == nil {
		return nil, "", 0, nil
	}
	if err := s.Contacts.CheckPrimaryTx(tx); err != nil {
		return nil, "", 0, err
	}
	key, wrapped, id, err := v.NewDataKey(fileKeyOwner(importID))
	if err != nil {
		return nil, "", 0, fmt.Errorf("imports: make the file's key: %w", err)
	}
	return key, wrapped, int64(id), nil
}

// fileKey returns the key of the import's file, or nil for a file kept as
// it came. The file of an import that has ended for real is gone, its key
// first (letGoTx): it is an error, not a file to read as it came.
func (s *Service) fileKey(ctx context.Context, id string) ([]byte, error) {
	var wrapped string
	var gone bool
	ph, args := store.In(2, ended)
	if err := s.DB.Read.QueryRowContext(ctx, `SELECT file_key, NOT dry_run AND status IN (`+ph+`) FROM imports WHERE id = $1`,
		append([]any{id}, args...)...).Scan(&wrapped, &gone); err != nil {
		return nil, fmt.Errorf("imports: read the file's key: %w", err)
	}
	if gone {
		return nil, errors.New("imports: the import has ended and its file is gone")
	}
	if wrapped == "" {
		return nil, nil
	}
	if s.Contacts.Vault == nil {
		return nil, errors.New("imports: the file is encrypted and no keyset is configured (CONSENTRY_KEYSET_FILE)")
	}
	key, err := s.Contacts.Vault.Unwrap(fileKeyOwner(id), wrapped)
	if err != nil {
		return nil, fmt.Errorf("imports: the file's key does not open with this keyset: %w", err)
	}
	return key, nil
}

// sealChunk is chunk n of the import's file as it is stored: sealed with
// key, or as it is without one.
func sealChunk(key []byte, importID string, n int, data []byte) ([]byte, error) {
	if key == nil {
		return data, nil
	}
	return vault.SealBytes(key, data, chunkAD(importID, n))
}

// openChunk is sealChunk undone.
func openChunk(key []byte, importID string, n int, stored []byte) ([]byte, error) {
	if key == nil {
		return stored, nil
	}
	data, err := vault.OpenBytes(key, stored, chunkAD(importID, n))
	if err != nil {
		return nil, fmt.Errorf("imports: chunk %d of the file does not open: %w", n, err)
	}
	return data, nil
}

// Rewrap wraps the key of every kept file anew under the keyset's current
// key, for consentry keys rotate, and returns how many it wrapped. There
// is nothing to wrap without a keyset.
func (s *Service) Rewrap(ctx context.Context) (int, error) {
	v := s.Contacts.Vault
	if v == nil {
		return 0, nil
	}
	n := 0
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		n = 0
		keys, err := store.QueryAll(ctx, tx, func(row store.Scanner) ([2]string, error) {
			var k [2]string
			return k, row.Scan(&k[0], &k[1])
		}, `SELECT id, file_key FROM imports WHERE file_key <> '' AND file_key_id <> $1`, int64(v.PrimaryKeyID()))
		if err != nil {
			return fmt.Errorf("imports: read file keys: %w", err)
		}
		for _, k := range keys {
			key, err := v.Unwrap(fileKeyOwner(k[0]), k[1])
			if err != nil {
				return fmt.Errorf("imports: open the file key of %s: %w", k[0], err)
			}
			wrapped, keyID, err := v.Wrap(fileKeyOwner(k[0]), key)
			if err != nil {
				return err
			}
			// Only the key read: an import that ended meanwhile let go of it.
			if _, err := tx.Exec(`UPDATE imports SET file_key = $2, file_key_id = $3 WHERE id = $1 AND file_key = $4`,
				k[0], wrapped, int64(keyID), k[1]); err != nil {
				return fmt.Errorf("imports: store file key: %w", err)
			}
			n++
		}
		return nil
	})
	return n, err
}

// Unwrapped counts the kept files whose key is not wrapped under the
// keyset key primary: an older key cannot be retired while one is.
func (s *Service) Unwrapped(ctx context.Context, primary uint32) (int, error) {
	var n int
	err := s.DB.Read.QueryRowContext(ctx, `SELECT count(*) FROM imports WHERE file_key <> '' AND file_key_id <> $1`, int64(primary)).Scan(&n)
	return n, err
}

// addressHash is how imports find an address without keeping it apart
// from the cells: the first 64 bits of SHA-256 over a tag, a zero byte
// and the normalised address (suppression.Normalize). It tells the
// address to no one, but whoever holds the database can test a guessed
// address against it, as they can read contacts' addresses there.
func addressHash(address string) int64 {
	h := sha256.Sum256([]byte("consentry-import-address-v1\x00" + suppression.Normalize(address)))
	return int64(binary.BigEndian.Uint64(h[:8]))
}

// addressesIn calls add with every address in cells, normalised: each
// run of characters an address may hold that has an @ in it, so that
// "Anna <anna@example.com>" and "mailto:anna@example.com" give theirs.
func addressesIn(cells []string, add func(string)) {
	for _, c := range cells {
		if strings.IndexByte(c, '@') < 0 {
			continue
		}
		for _, w := range strings.FieldsFunc(c, func(r rune) bool { return unicode.IsSpace(r) || strings.ContainsRune(`<>()[],;:"`, r) }) {
			if w = strings.TrimRight(w, "."); strings.IndexByte(w, '@') > 0 {
				add(suppression.Normalize(w))
			}
		}
	}
}

// addressSet gathers the addresses the reading of an upload meets, for
// the chunk stored next: the reader and the writer run side by side.
type addressSet struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (a *addressSet) add(address string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen == nil {
		a.seen = map[string]bool{}
	}
	a.seen[address] = true
}

// take returns the addresses gathered since the last take.
func (a *addressSet) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.seen))
	for k := range a.seen {
		out = append(out, k)
	}
	a.seen = nil
	return out
}

// addressPiece is how many address hashes an arriving upload writes in
// a transaction. A chunk of 1 MiB holds some 7,000 addresses, and their
// hashes land all over the index, a page each once the upload holds a
// few hundred thousand: written with the chunk, they held the writer for
// up to a second while other changes waited, and 1,000 at a time still
// did on a busy machine.
const addressPiece = 250

// keepAddresses writes the hashes of addresses (keepTx) a piece a
// transaction, before the chunk they are in, and returns the last piece,
// for the chunk's own transaction. An erasure that commits in between
// finds the upload by the hashes written so far, and those still to come
// are checked against it as they are written.
func (s *Service) keepAddresses(ctx context.Context, imp *Import, addresses []string) ([]string, error) {
	for len(addresses) > addressPiece {
		piece := addresses[:addressPiece]
		if err := s.DB.Write(ctx, func(tx *store.Tx) error { return s.keepTx(tx, imp, 0, nil, piece) }); err != nil {
			return nil, err
		}
		addresses = addresses[addressPiece:]
	}
	return addresses, nil
}

// keepTx stores, inside tx, chunk n of an arriving upload's file (none
// when stored is nil) and the hashes of the addresses its reading met
// since the last chunk. It refuses an upload an erasure discarded
// meanwhile, and one that holds an address erased since the upload
// began, which that erasure could not find yet.
func (s *Service) keepTx(tx *store.Tx, imp *Import, n int, stored []byte, addresses []string) error {
	var status string
	if err := tx.Row(`SELECT status FROM imports WHERE id = $1`, imp.ID).Scan(&status); err != nil {
		return fmt.Errorf("imports: read upload: %w", err)
	}
	if status != statusUploading {
		return errErasedWhileUploading
	}
	if stored != nil {
		if _, err := tx.Exec(`INSERT INTO import_file_chunks (import_id, n, data) VALUES ($1, $2, $3)`, imp.ID, n, stored); err != nil {
			return err
		}
	}
	if len(addresses) == 0 {
		return nil
	}
	erased, err := suppression.CheckManyTx(tx, addresses)
	if err != nil {
		return err
	}
	for _, at := range erased {
		if at.After(imp.CreatedAt) {
			return errErasedWhileUploading
		}
	}
	rows := make([][]any, len(addresses))
	for i, a := range addresses {
		rows[i] = []any{imp.ID, addressHash(a)}
	}
	return tx.ExecRows(store.Prefix("imports: index the file's addresses"), `INSERT INTO import_file_addresses (import_id, address_hash) `+
		store.RowsHere+` ON CONFLICT (import_id, address_hash) DO NOTHING`, []string{"text", "bigint"}, rows)
}

// dropFileTx deletes the kept files of the imports ids, with their keys
// and address hashes.
func dropFileTx(tx *store.Tx, ids ...string) error {
	ph, args := store.In(1, ids)
	for _, q := range []string{
		`DELETE FROM import_file_chunks WHERE import_id IN (` + ph + `)`,
		`DELETE FROM import_file_addresses WHERE import_id IN (` + ph + `)`,
		`UPDATE imports SET file_key = '', file_key_id = 0 WHERE id IN (` + ph + `)`,
	} {
		if _, err := tx.Exec(q, args...); err != nil {
			return fmt.Errorf("imports: drop file: %w", err)
		}
	}
	return nil
}

// ForgetAddressesTx removes, inside tx, what imports keep of addresses,
// those of contacts whose personal data is being erased (package
// erasure), found by their hashes without reading any file:
//
//   - a reported row whose cells hold one, in any column, loses its
//     cells, and the cells its reason quotes; its number, outcome, code
//     and field stay, so the report's counts still add up;
//   - a kept file that holds one, and that no import is reading for real
//     (an upload never started or still arriving, or one that only had
//     dry runs), is discarded: its key goes, and the import's status says
//     so (StatusDiscarded); its chunks and address hashes go too when it
//     is small or was kept without a keyset, and otherwise in pieces
//     after the erasure (HandleDrop). An import under way keeps its file
//     until it ends, and skips the address's rows as an erased address (a
//     row that fails keeps no cells: writer.rows).
func ForgetAddressesTx(tx *store.Tx, addresses []string, now time.Time) error {
	hashes := make([]int64, 0, len(addresses))
	for _, a := range addresses {
		if suppression.Normalize(a) != "" {
			hashes = append(hashes, addressHash(a))
		}
	}
	if len(hashes) == 0 {
		return nil
	}
	if err := forgetRowsTx(tx, hashes); err != nil {
		return err
	}
	cond, args := store.Among(tx.Dialect(), 1, hashes)
	// An ended import whose file is not deleted yet (HandleDrop) loses
	// it now: without a keyset its chunks are the file as it came.
	ph, endedArgs := store.In(len(args)+1, ended)
	leftover, err := store.QueryAll(context.Background(), tx, scanID, `SELECT DISTINCT a.import_id FROM import_file_addresses a
		JOIN imports i ON i.id = a.import_id WHERE a.address_hash `+cond+` AND NOT i.dry_run AND i.status IN (`+ph+`)`,
		append(args, endedArgs...)...)
	if err != nil {
		return fmt.Errorf("imports: find files left: %w", err)
	}
	if len(leftover) > 0 {
		if err := dropFileTx(tx, leftover...); err != nil {
			return err
		}
	}
	ids, err := store.QueryAll(context.Background(), tx, scanID, `SELECT DISTINCT a.import_id FROM import_file_addresses a
		JOIN imports i ON i.id = a.import_id WHERE a.address_hash `+cond+`
		AND (i.status IN ($2, $3) OR (i.dry_run AND i.status IN ($4, $5)))`,
		append(args, statusUploading, StatusUploaded, StatusQueued, StatusRunning)...)
	if err != nil || len(ids) == 0 {
		return err
	}
	// A small file, or one kept without a keyset (the file as it came),
	// goes now. A large one kept encrypted cannot be opened once its key
	// is gone; its chunks and hashes go in pieces (HandleDrop), so that
	// the erasure does not hold the writer while a gigabyte goes.
	var atOnce, later []string
	for _, id := range ids {
		var key string
		if err := tx.Row(`SELECT file_key FROM imports WHERE id = $1`, id).Scan(&key); err != nil {
			return fmt.Errorf("imports: discard files: %w", err)
		}
		small, err := smallFileTx(tx, id)
		if err != nil {
			return err
		}
		if small || key == "" {
			atOnce = append(atOnce, id)
		} else {
			later = append(later, id)
		}
	}
	ph, idArgs := store.In(4, ids)
	if _, err := tx.Exec(`UPDATE imports SET status = $1, error = $2, cancel_requested = FALSE, finished_at = $3, file_key = '', file_key_id = 0
		WHERE id IN (`+ph+`)`, append([]any{StatusDiscarded, discardedWhy, store.Micros(now)}, idArgs...)...); err != nil {
		return fmt.Errorf("imports: discard files: %w", err)
	}
	if len(atOnce) > 0 {
		if err := dropFileTx(tx, atOnce...); err != nil {
			return err
		}
	}
	for _, id := range later {
		if err := jobs.Enqueue(tx, jobs.Spec{Kind: DropJobKind, Payload: jobPayload{ImportID: id}}, now); err != nil {
			return err
		}
	}
	return nil
}

// dropAtOnce is the most chunks (of 1 MiB) of a file deleted in the
// transaction that discards it; a larger one, kept encrypted, goes in
// pieces after it.
const dropAtOnce = 4

// smallFileTx reports whether the kept file of import id has at most
// dropAtOnce chunks.
func smallFileTx(tx *store.Tx, id string) (bool, error) {
	var n int
	if err := tx.Row(`SELECT count(*) FROM import_file_chunks WHERE import_id = $1`, id).Scan(&n); err != nil {
		return false, fmt.Errorf("imports: count the file's chunks: %w", err)
	}
	return n <= dropAtOnce, nil
}

// quotedCell is a cell a row's reason quotes (%q).
var quotedCell = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// forgetRowsTx removes the cells of the reported rows whose address has
// one of hashes, and the cells their reasons quote.
func forgetRowsTx(tx *store.Tx, hashes []int64) error {
	type reported struct {
		importID string
		number   int64
		reason   string
	}
	cond, args := store.Among(tx.Dialect(), 1, hashes)
	rows, err := store.QueryAll(context.Background(), tx, func(row store.Scanner) (reported, error) {
		var r reported
		return r, row.Scan(&r.importID, &r.number, &r.reason)
	}, `SELECT DISTINCT r.import_id, r.row_number, r.reason FROM import_row_addresses a
		JOIN import_rows r ON r.import_id = a.import_id AND r.row_number = a.row_number WHERE a.address_hash `+cond, args...)
	if err != nil {
		return fmt.Errorf("imports: find reported rows: %w", err)
	}
	for _, r := range rows {
		if _, err := tx.Exec(`UPDATE import_rows SET cells = '[]', reason = $3 WHERE import_id = $1 AND row_number = $2`,
			r.importID, r.number, quotedCell.ReplaceAllString(r.reason, `"…"`)); err != nil {
			return fmt.Errorf("imports: forget a reported row: %w", err)
		}
		if _, err := tx.Exec(`DELETE FROM import_row_addresses WHERE import_id = $1 AND row_number = $2`, r.importID, r.number); err != nil {
			return fmt.Errorf("imports: forget a reported row: %w", err)
		}
	}
	return nil
}

// clearReportTx deletes the report of import id, for a run that starts
// again from the first row.
func clearReportTx(tx *store.Tx, id string) error {
	for _, table := range []string{"import_rows", "import_row_addresses"} {
		if _, err := tx.Exec(`DELETE FROM `+table+` WHERE import_id = $1`, id); err != nil {
			return fmt.Errorf("imports: clear report: %w", err)
		}
	}
	return nil
}

func scanID(row store.Scanner) (string, error) {
	var id string
	return id, row.Scan(&id)
}
