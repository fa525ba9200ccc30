package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestInsertRowsWritesEveryRowAsGiven inserts more rows than one SQLite
// statement takes, with NULLs, integers and text that needs quoting, and
// reads each back as it was given; Among then finds exactly the rows named.
func TestInsertRowsWritesEveryRowAsGiven(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		const n = 1234
		rows := make([][]any, n)
		for i := range rows {
			var note any = fmt.Sprintf("it's \"%d\" & <b>", i)
			if i%7 == 0 {
				note = nil
			}
			rows[i] = []any{fmt.Sprintf("r%04d", i), note, int64(i) * 1_000_000_007, i % 3}
		}
		err := db.Write(ctx, func(tx *store.Tx) error {
			if _, err := tx.Exec(`CREATE TABLE insert_rows (id TEXT PRIMARY KEY, note TEXT, big BIGINT NOT NULL, small INTEGER NOT NULL)`); err != nil {
				return err
			}
			if err := tx.InsertRows(nil, `INSERT INTO insert_rows (id, note, big, small)`, []string{"text", "text", "bigint", "integer"}, nil); err != nil {
				return err
			}
			return tx.InsertRows(store.Prefix("insert"), `INSERT INTO insert_rows (id, note, big, small)`, []string{"text", "text", "bigint", "integer"}, rows)
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := store.QueryAll(ctx, db.Read, func(row store.Scanner) ([]any, error) {
			var id string
			var note sql.NullString
			var big int64
			var small int
			err := row.Scan(&id, &note, &big, &small)
			var v any
			if note.Valid {
				v = note.String
			}
			return []any{id, v, big, small}, err
		}, `SELECT id, note, big, small FROM insert_rows ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d rows, want %d", len(got), n)
		}
		for i := range rows {
			if fmt.Sprint(got[i]) != fmt.Sprint(rows[i]) {
				t.Fatalf("row %d: %v, want %v", i, got[i], rows[i])
			}
		}

		named := []string{"r0001", "r0500", "r1233", "no-such-row"}
		cond, args := store.Among(db.Dialect, 2, named)
		ids, err := store.QueryAll(ctx, db.Read, func(row store.Scanner) (string, error) {
			var id string
			return id, row.Scan(&id)
		}, `SELECT id FROM insert_rows WHERE small >= $1 AND id `+cond+` ORDER BY id`, append([]any{0}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(ids, ",") != "r0001,r0500,r1233" {
			t.Fatalf("Among found %v", ids)
		}
	})
}

// TestInsertRowsRefusesARowOfTheWrongShape: a row with a value too few,
// or a value of a type the column cannot take, is an error and writes
// nothing.
func TestInsertRowsRefusesARowOfTheWrongShape(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`CREATE TABLE insert_shape (id TEXT PRIMARY KEY, n BIGINT)`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, row := range [][]any{{"a"}, {"a", 1.5}, {7, int64(1)}} {
			err := db.Write(ctx, func(tx *store.Tx) error {
				return tx.InsertRows(nil, `INSERT INTO insert_shape (id, n)`, []string{"text", "bigint"}, [][]any{{"ok", int64(1)}, row})
			})
			if err == nil || !strings.HasPrefix(err.Error(), "store: insert: ") {
				t.Fatalf("row %v: %v, want the row refused", row, err)
			}
		}
		var n int
		if err := db.Read.QueryRow(`SELECT count(*) FROM insert_shape`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d rows written, %v", n, err)
		}
	})
}
