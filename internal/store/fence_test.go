package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestFenceOrdersCommitsAndSends: a fenced write that comes while the
// fence is held commits only once the holder lets go, and a holder that
// comes after a fenced commit reads it.
func TestFenceOrdersCommitsAndSends(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		write := func(n int) error {
			return db.Write(ctx, func(tx *store.Tx) error {
				tx.Fence()
				_, err := tx.Exec(`INSERT INTO fence_probe (n) VALUES ($1)`, n)
				return err
			})
		}
		count := func(q store.Querier) int {
			t.Helper()
			var n int
			if err := q.QueryRowContext(ctx, `SELECT count(*) FROM fence_probe`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`CREATE TABLE fence_probe (n integer NOT NULL)`)
			return err
		}); err != nil {
			t.Fatal(err)
		}

		committed := make(chan error, 1)
		err := db.HoldFence(ctx, func(q store.Querier) error {
			go func() { committed <- write(1) }()
			waitFor(t, func() bool {
				w, err := store.FenceWaited(ctx, db)
				if err != nil {
					t.Fatal(err)
				}
				return w
			})
			select {
			case err := <-committed:
				t.Fatalf("a fenced write returned while the fence was held: %v", err)
			default:
			}
			if n := count(db.Read); n != 0 {
				t.Fatalf("a fenced write committed while the fence was held: %d rows", n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := <-committed; err != nil {
			t.Fatal(err)
		}
		if n := count(db.Read); n != 1 {
			t.Fatalf("%d rows once the fence was let go, want 1", n)
		}

		if err := write(2); err != nil {
			t.Fatal(err)
		}
		if err := db.HoldFence(ctx, func(q store.Querier) error {
			if n := count(q); n != 2 {
				t.Fatalf("under the fence after a fenced commit: %d rows, want 2", n)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}

// waitFor returns once cond holds, failing the test if that takes longer
// than a generous limit; it polls the condition, it does not time work.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30s")
		}
		time.Sleep(time.Millisecond)
	}
}
