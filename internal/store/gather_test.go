package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestGatherWritesEveryRowAsQueued queues, row by row as a bulk writer
// does, a parent, its children (an upsert) and an UPDATE of the parent, in
// counts that take every merged size and a remainder, and reads every row
// back as queued: children after their parent, the UPDATE after the
// INSERT. A read halfway through a row sees what was queued before it,
// and the rows after it still merge in order.
func TestGatherWritesEveryRowAsQueued(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`CREATE TABLE g_parent (id TEXT PRIMARY KEY, label TEXT NOT NULL, kind TEXT NOT NULL, n BIGINT NOT NULL, m BIGINT NOT NULL)`)
			if err == nil {
				_, err = tx.Exec(`CREATE TABLE g_child (parent TEXT NOT NULL REFERENCES g_parent (id), k INTEGER NOT NULL, note TEXT,
					PRIMARY KEY (parent, k))`)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		const n = 293 // 256 + 32 + 4 + 1
		var seen int
		err := db.Write(ctx, func(tx *store.Tx) error {
			return tx.Gather(n, func(i int) error {
				id := fmt.Sprintf("p%03d", i)
				if err := tx.ExecLater(store.Prefix("parent"), `INSERT INTO g_parent (id, label, kind, n, m) VALUES ($1, $2, 'it''s $1', $3, $3)`,
					id, fmt.Sprintf("label '%d' $2", i), int64(i)); err != nil {
					return err
				}
				if i == 100 { // a read halfway through a row
					if err := tx.Row(`SELECT COUNT(*) FROM g_child`).Scan(&seen); err != nil {
						return err
					}
				}
				for k := range 2 {
					var note any = fmt.Sprintf("note %d/%d", i, k)
					if k == 1 {
						note = nil
					}
					if err := tx.ExecLater(store.Prefix("child"), `INSERT INTO g_child (parent, k, note) VALUES ($1, $2, $3)
						ON CONFLICT (parent, k) DO UPDATE SET note = excluded.note`, id, k, note); err != nil {
						return err
					}
				}
				return tx.ExecLater(nil, `UPDATE g_parent SET m = m + 1 WHERE id = $1`, id)
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if seen != 200 {
			t.Errorf("a read inside Gather saw %d children, want the 200 queued before it", seen)
		}
		var got []string
		got, err = store.QueryAll(ctx, db.Read, func(row store.Scanner) (string, error) {
			var id, label, kind string
			var n, m int64
			err := row.Scan(&id, &label, &kind, &n, &m)
			return fmt.Sprintf("%s|%s|%s|%d|%d", id, label, kind, n, m), err
		}, `SELECT id, label, kind, n, m FROM g_parent ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d parents, want %d", len(got), n)
		}
		for i, g := range got {
			want := fmt.Sprintf("p%03d|label '%d' $2|it's $1|%d|%d", i, i, i, i+1)
			if g != want {
				t.Fatalf("parent %d is %q, want %q", i, g, want)
			}
		}
		var children, notes int
		if err := db.Read.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(note) FROM g_child`).Scan(&children, &notes); err != nil {
			t.Fatal(err)
		}
		if children != 2*n || notes != n {
			t.Errorf("%d children with %d notes, want %d with %d", children, notes, 2*n, n)
		}
	})
}

// TestGatherFailureWritesNothing: a row that breaks a constraint fails
// the write with the statement's own wrapped error, and nothing it queued
// is kept.
func TestGatherFailureWritesNothing(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`CREATE TABLE g_once (id TEXT PRIMARY KEY)`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		err := db.Write(ctx, func(tx *store.Tx) error {
			return tx.Gather(40, func(i int) error {
				return tx.ExecLater(store.Prefix("insert once"), `INSERT INTO g_once (id) VALUES ($1)`, fmt.Sprint(i%39))
			})
		})
		if err == nil || !strings.HasPrefix(err.Error(), "insert once: ") || !store.IsUniqueViolation(err) {
			t.Fatalf("err = %v, want the wrapped unique violation", err)
		}
		var n int
		if err := db.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM g_once`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d rows kept after the failed write", n)
		}
	})
}
