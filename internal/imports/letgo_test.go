package imports_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// An upload keeps the hashes of all its addresses, written in pieces.
// An import that ends lets go of its file: the key goes with the end,
// the chunks and the addresses' hashes right after, in pieces (more than
// one here of each). Prune deletes an import 30 days after its end with
// its report and the contacts it noted, in pieces too, leaves a recent
// one, and deletes what a process killed between the end and the
// deletion left of a file.
func TestEndedImportLetsGoOfItsFile(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		count := func(q string, args ...any) int {
			t.Helper()
			var n int
			if err := db.Read.QueryRow(q, args...).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		// 4,000 addresses, the first 2,500 with a note of 2 KiB: a file of
		// five chunks and more, the last holding more addresses than
		// an upload writes in a transaction.
		note := strings.Repeat("n", 2048)
		records := [][]string{{"email", "note"}, {"not an address", note}}
		for i := range 4000 {
			if i == 2500 {
				note = ""
			}
			records = append(records, []string{fmt.Sprintf("p%04d@example.com", i), note})
		}
		d := imports.Definition{Source: "Trade fair 2026", Columns: []imports.Column{{Column: "email", Field: "email"}}}
		first := w.upload("people.csv", csvFile(',', records...))
		chunks := count(`SELECT count(*) FROM import_file_chunks WHERE import_id = $1`, first.ID)
		if chunks < 5 || count(`SELECT count(*) FROM import_file_addresses WHERE import_id = $1`, first.ID) != 4000 {
			t.Fatalf("the upload kept %d chunks and %d addresses", chunks, count(`SELECT count(*) FROM import_file_addresses WHERE import_id = $1`, first.ID))
		}
		// Between the end and the deletion: the key is gone, the chunks
		// are still there, and the file is not read again. Each deletion
		// job takes one piece at least, and hands over (Slice).
		drops := 0
		w.jobs.Handle(imports.DropJobKind, func(ctx context.Context, j *jobs.Job) error {
			if drops++; drops == 1 {
				if count(`SELECT count(*) FROM imports WHERE id = $1 AND file_key = ''`, first.ID) != 1 ||
					count(`SELECT count(*) FROM import_file_chunks WHERE import_id = $1`, first.ID) != chunks {
					t.Error("the import's end did not let go of the key alone")
				}
				if _, err := w.imports.Preview(ctx, first.ID, d, 5); err == nil {
					t.Error("the file of an ended import was read")
				}
			}
			return w.imports.HandleDrop(ctx, j)
		})
		w.imports.Slice = time.Nanosecond
		if got := w.run(first.ID, d, false); got.Status != imports.StatusDone || got.Created != 4000 || got.Failed != 1 {
			t.Fatalf("import: %+v", got)
		}
		if drops < 3 {
			t.Fatalf("the file went in %d deletion jobs, want one a piece", drops)
		}
		kept := func(id string) int {
			t.Helper()
			return count(`SELECT count(*) FROM import_file_chunks WHERE import_id = $1`, id) +
				count(`SELECT count(*) FROM import_file_addresses WHERE import_id = $1`, id) +
				count(`SELECT count(*) FROM imports WHERE id = $1 AND file_key <> ''`, id)
		}
		if n := kept(first.ID); n != 0 {
			t.Fatalf("after the import's end, %d rows of its file or its key are kept", n)
		}
		if count(`SELECT count(*) FROM import_contacts WHERE import_id = $1`, first.ID) != 4000 ||
			count(`SELECT count(*) FROM import_rows WHERE import_id = $1`, first.ID) != 1 {
			t.Fatal("the import's report or its contacts are gone with its file")
		}

		// 31 days on, a second import; then a process killed after its
		// end left its file's chunks and hashes.
		w.now = w.now.Add(31 * 24 * time.Hour)
		second := w.upload("later.csv", csvFile(',', []string{"email"}, []string{"later@example.com"}))
		if got := w.run(second.ID, d, false); got.Status != imports.StatusDone {
			t.Fatalf("second import: %+v", got)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			if _, err := tx.Exec(`INSERT INTO import_file_chunks (import_id, n, data) VALUES ($1, 0, $2)`, second.ID, []byte("sealed")); err != nil {
				return err
			}
			_, err := tx.Exec(`INSERT INTO import_file_addresses (import_id, address_hash) VALUES ($1, 42)`, second.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}

		n, err := w.imports.Prune(ctx, imports.KeepFor)
		if err != nil || n != 1 {
			t.Fatalf("prune: %d deleted (%v), want the first import only", n, err)
		}
		if count(`SELECT count(*) FROM imports WHERE id = $1`, first.ID)+count(`SELECT count(*) FROM import_contacts WHERE import_id = $1`, first.ID)+
			count(`SELECT count(*) FROM import_rows WHERE import_id = $1`, first.ID) != 0 {
			t.Fatal("the pruned import left rows behind")
		}
		if count(`SELECT count(*) FROM imports WHERE id = $1`, second.ID) != 1 || count(`SELECT count(*) FROM import_contacts WHERE import_id = $1`, second.ID) != 1 {
			t.Fatal("prune deleted an import that ended today")
		}
		if n := kept(second.ID); n != 0 {
			t.Fatalf("prune left %d rows of an ended import's file", n)
		}
		if count(`SELECT count(*) FROM contacts`) != 4001 {
			t.Fatal("prune deleted contacts")
		}
	})
}
