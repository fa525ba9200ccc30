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
		insert := probe(t, db)
		write := func(n int) error { return insert(n, true) }
		count := func(q store.Querier) int {
			t.Helper()
			var n int
			if err := q.QueryRowContext(ctx, `SELECT count(*) FROM fence_probe`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}

		committed := make(chan error, 1)
		err := db.HoldFence(ctx, func(q store.Querier, _ context.Context) error {
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
		if err := db.HoldFence(ctx, func(q store.Querier, _ context.Context) error {
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

// TestFenceHolderIsAskedToLetGo: a holder's wanted context is done once a
// fenced write of this instance waits for the fence, and not before; a
// holder that takes the fence while such a write waits is asked at once.
func TestFenceHolderIsAskedToLetGo(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		insert := probe(t, db)
		committed := make(chan error, 1)
		err := db.HoldFence(ctx, func(q store.Querier, wanted context.Context) error {
			if wanted.Err() != nil {
				t.Fatal("wanted is done with no fenced write waiting")
			}
			// An unfenced write does not ask.
			if err := insert(0, false); err != nil {
				t.Fatal(err)
			}
			if wanted.Err() != nil {
				t.Fatal("wanted is done after an unfenced write")
			}
			go func() { committed <- insert(1, true) }()
			<-wanted.Done()
			if cause := context.Cause(wanted); cause != store.ErrFenceWanted {
				t.Fatalf("cause %v, want ErrFenceWanted", cause)
			}
			select {
			case err := <-committed:
				t.Fatalf("the fenced write returned while the fence was held: %v", err)
			default:
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := <-committed; err != nil {
			t.Fatal(err)
		}
		// Once the write has committed, a new holder is not asked.
		if err := db.HoldFence(ctx, func(q store.Querier, wanted context.Context) error {
			if wanted.Err() != nil {
				t.Fatal("wanted is done after the fenced write committed")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}

// probe creates the table fence_probe and returns a function that inserts
// a row into it, in a fenced write or not.
func probe(t testing.TB, db *store.DB) func(n int, fenced bool) error {
	t.Helper()
	ctx := context.Background()
	if err := db.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`CREATE TABLE fence_probe (n integer NOT NULL)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return func(n int, fenced bool) error {
		return db.Write(ctx, func(tx *store.Tx) error {
			if fenced {
				tx.Fence()
			}
			_, err := tx.Exec(`INSERT INTO fence_probe (n) VALUES ($1)`, n)
			return err
		})
	}
}

// TestShortTransactionsRunWithoutJIT: on PostgreSQL, write transactions
// and the send fence's reads run with JIT compilation off, which would
// add its compile time to a statement the planner overestimates; other
// reads keep the server's setting.
func TestShortTransactionsRunWithoutJIT(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	jit := func(q store.Querier) string {
		t.Helper()
		var v string
		if err := q.QueryRowContext(ctx, `SELECT current_setting('jit')`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	var inWrite, inFence string
	if err := db.Write(ctx, func(tx *store.Tx) error { inWrite = jit(tx); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.HoldFence(ctx, func(q store.Querier, _ context.Context) error { inFence = jit(q); return nil }); err != nil {
		t.Fatal(err)
	}
	var server string
	if err := db.Read.QueryRowContext(ctx, `SELECT reset_val FROM pg_settings WHERE name = 'jit'`).Scan(&server); err != nil {
		t.Fatal(err)
	}
	if inWrite != "off" || inFence != "off" {
		t.Errorf("jit in a write %q, under the fence %q; want off", inWrite, inFence)
	}
	if got := jit(db.Read); got != server {
		t.Errorf("jit outside them %q, want the server's %q", got, server)
	}
}
