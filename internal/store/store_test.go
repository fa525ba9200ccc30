package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

func TestMigrationsRenderForBothDatabases(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		fsys, err := store.Migrations(d)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := fs.ReadDir(fsys, ".")
		if err != nil || len(entries) == 0 {
			t.Fatalf("%s: no migrations (%v)", d, err)
		}
		for _, e := range entries {
			b, _ := fs.ReadFile(fsys, e.Name())
			if strings.Contains(string(b), "{{") || strings.Contains(string(b), "<no value>") {
				t.Fatalf("%s: %s is not fully rendered", d, e.Name())
			}
		}
	}
}

func TestMigrateTwiceIsANoOp(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		n, err := db.Migrate(context.Background())
		if err != nil || n != 0 {
			t.Fatalf("second migrate: %d, %v", n, err)
		}
	})
}

func count(t testing.TB, db *store.DB) int {
	t.Helper()
	var n int
	if err := db.Read.QueryRow(`SELECT count(*) FROM sources WHERE id LIKE 's%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWriteIsolatesFailures runs many concurrent writes, some of which fail
// after writing or panic, and checks that exactly the others committed, each
// caller got its own outcome, and no failed write left anything behind.
// TestNewerDatabaseRefused: a database that a newer Consentry migrated
// is refused, by name, rather than used by a binary that does not know
// its tables; nothing is changed.
func TestNewerDatabaseRefused(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, TRUE)`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		n, err := db.Migrate(ctx)
		if err == nil || !strings.Contains(err.Error(), "newer") || !strings.Contains(err.Error(), "99999") {
			t.Fatalf("migrating a newer database: %d, %v", n, err)
		}
		if behind, err := db.MigrationsBehind(ctx); err != nil || behind != 0 {
			t.Fatalf("a newer database is not behind: %d, %v", behind, err)
		}
	})
}

func TestWriteIsolatesFailures(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		const n = 200
		errBoom := errors.New("boom")
		results := writeAll(db, n, func(i int, tx *store.Tx) error {
			if _, err := tx.Exec(`INSERT INTO sources (id, name, name_key, active, created_at) VALUES ($1, $2, $2, TRUE, 0)`,
				fmt.Sprint("s", i), fmt.Sprint("w", i)); err != nil {
				return err
			}
			switch i % 10 {
			case 3:
				return errBoom
			case 7:
				panic("bad write")
			}
			return nil
		})
		ok := 0
		for i, err := range results {
			switch i % 10 {
			case 3:
				if !errors.Is(err, errBoom) {
					t.Fatalf("write %d: got %v, want its own error", i, err)
				}
			case 7:
				if err == nil {
					t.Fatalf("write %d panicked but reported success", i)
				}
			default:
				if err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
				ok++
			}
		}
		if got := count(t, db); got != ok {
			t.Fatalf("%d rows committed, want %d", got, ok)
		}
	})
}

func TestWriteAfterCloseFails(t *testing.T) {
	db := storetest.OpenSQLite(t)
	db.Close()
	if err := db.Write(context.Background(), func(*store.Tx) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

func TestCanceledWriteNeverRuns(t *testing.T) {
	db := storetest.OpenSQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := db.Write(ctx, func(*store.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("err %v, ran %v", err, ran)
	}
}

// TestCanceledWriteIsNeverHalfTrue cancels writes at every moment and checks
// that each Write's answer is the truth: nil only for a committed row, an
// error only for a row that is not there.
func TestCanceledWriteIsNeverHalfTrue(t *testing.T) {
	db := storetest.OpenSQLite(t)
	const n = 300
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		ctx, cancel := context.WithCancel(context.Background())
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Write(ctx, func(tx *store.Tx) error {
				_, err := tx.Exec(`INSERT INTO sources (id, name, name_key, active, created_at) VALUES ($1, $1, $1, TRUE, 0)`, fmt.Sprint("s", i))
				return err
			})
		}()
		if i%2 == 0 {
			cancel()
		} else {
			defer cancel()
		}
	}
	wg.Wait()
	for i, err := range errs {
		var found int
		db.Read.QueryRow(`SELECT count(*) FROM sources WHERE id = $1`, fmt.Sprint("s", i)).Scan(&found)
		if (err == nil) != (found == 1) {
			t.Fatalf("write %d returned %v but the row count is %d", i, err, found)
		}
	}
}

// TestFailuresCostOneRerun has many failing writes in one group and checks
// that the others commit and each failing caller gets its own error.
func TestFailuresCostOneRerun(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		var runs sync.Map
		const n = 64
		results := writeAll(db, n, func(i int, tx *store.Tx) error {
			v, _ := runs.LoadOrStore(i, new(int))
			*v.(*int)++
			if _, err := tx.Exec(`INSERT INTO sources (id, name, name_key, active, created_at) VALUES ($1, $1, $1, TRUE, 0)`, fmt.Sprint("s", i)); err != nil {
				return err
			}
			if i%2 == 1 {
				return fmt.Errorf("fail %d", i)
			}
			return nil
		})
		for i, err := range results {
			if (i%2 == 1) != (err != nil) {
				t.Fatalf("write %d: %v", i, err)
			}
			v, _ := runs.Load(i)
			if *v.(*int) > 2 {
				t.Fatalf("write %d ran %d times; a group runs at most twice", i, *v.(*int))
			}
		}
		if got := count(t, db); got != n/2 {
			t.Fatalf("%d rows, want %d", got, n/2)
		}
	})
}

// TestExecLaterErrorsStayWithTheirWrite queues statements with ExecLater in
// concurrent writes, some of which fail (a duplicate key) only when the
// queue is sent, and checks that each failure reaches its own caller,
// wrapped as asked, even when the function ignored it, while the other
// writes of the group commit.
func TestExecLaterErrorsStayWithTheirWrite(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		insert := takeSource(t, db)
		const n = 60
		errTaken := errors.New("taken")
		wrap := func(error) error { return errTaken }
		results := writeAll(db, n, func(i int, tx *store.Tx) error {
			if err := tx.ExecLater(wrap, insert, fmt.Sprint("s", i)); err != nil {
				return err
			}
			switch i % 3 {
			case 1:
				return tx.ExecLater(wrap, insert, "s-taken")
			case 2:
				_ = tx.ExecLater(wrap, insert, "s-taken") // ignored: on PostgreSQL the outcome still says so
			}
			return nil
		})
		// On SQLite ExecLater runs at once, as Exec does, so an error the
		// function ignores stays ignored; PostgreSQL's aborted transaction
		// makes it the outcome.
		ignoredFails := db.Dialect == store.Postgres
		want := 1
		for i, err := range results {
			fails := i%3 == 1 || (i%3 == 2 && ignoredFails)
			if fails != errors.Is(err, errTaken) {
				t.Fatalf("write %d: %v", i, err)
			}
			if !fails {
				want++
			}
		}
		if got := count(t, db); got != want {
			t.Fatalf("%d rows, want %d", got, want)
		}
	})
}

// TestQueuedFailureFoundLaterStaysWithItsWrite has writes whose queued
// statement fails only when a later write of the group reads (or the group
// commits), and checks that the failure still reaches the write that
// queued it, not the one whose read sent it, and that the reading writes
// commit.
func TestQueuedFailureFoundLaterStaysWithItsWrite(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		insert := takeSource(t, db)
		const n = 90
		errTaken := errors.New("taken")
		wrap := func(error) error { return errTaken }
		results := writeAll(db, n, func(i int, tx *store.Tx) error {
			if i%3 == 0 {
				return tx.ExecLater(wrap, insert, "s-taken") // fails when sent, whoever sends it
			}
			var seen int
			if err := tx.Row(`SELECT count(*) FROM sources WHERE id = $1`, "s-taken").Scan(&seen); err != nil {
				return err
			}
			if seen != 1 {
				return fmt.Errorf("write %d read %d rows", i, seen)
			}
			return tx.ExecLater(nil, insert, fmt.Sprint("s", i))
		})
		want := 1
		for i, err := range results {
			if fails := i%3 == 0; fails != errors.Is(err, errTaken) || (!fails && err != nil) {
				t.Fatalf("write %d: %v", i, err)
			}
			if i%3 != 0 {
				want++
			}
		}
		if got := count(t, db); got != want {
			t.Fatalf("%d rows, want %d", got, want)
		}
	})
}

// takeSource writes the source "s-taken", and returns the statement that
// inserts a source by id, which fails for that one.
func takeSource(t testing.TB, db *store.DB) (insert string) {
	t.Helper()
	insert = `INSERT INTO sources (id, name, name_key, active, created_at) VALUES ($1, $1, $1, TRUE, 0)`
	if err := db.Write(context.Background(), func(tx *store.Tx) error {
		_, err := tx.Exec(insert, "s-taken")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return insert
}

// writeAll runs n writes at once, write i running fn(i, tx), and returns
// their outcomes.
func writeAll(db *store.DB, n int, fn func(i int, tx *store.Tx) error) []error {
	results := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = db.Write(context.Background(), func(tx *store.Tx) error { return fn(i, tx) })
		}()
	}
	wg.Wait()
	return results
}

// Every subscriber of a topic is woken by each wake-up, however many there
// are; Wakes' one channel is woken too.
func TestEverySubscriberIsWoken(t *testing.T) {
	db := storetest.OpenSQLite(t)
	a, b, one := db.Subscribe("t"), db.Subscribe("t"), db.Wakes("t")
	db.Wake("t")
	for name, c := range map[string]<-chan struct{}{"a": a, "b": b, "wakes": one} {
		select {
		case <-c:
		default:
			t.Errorf("%s was not woken", name)
		}
	}
}

// ReadRow reads what was written since its statement was kept, reports no
// row as sql.ErrNoRows, and a query that does not compile as an error.
func TestReadRow(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		const q = `SELECT name FROM sources WHERE name_key = $1`
		var name string
		if err := db.ReadRow(ctx, q, "nobody").Scan(&name); !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("no row: %v", err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`INSERT INTO sources (id, name, name_key, active, created_at) VALUES ('s1', 'Fair', 'fair', TRUE, 0)`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := db.ReadRow(ctx, q, "fair").Scan(&name); err != nil || name != "Fair" {
				t.Fatalf("got %q, %v", name, err)
			}
		}
		if err := db.ReadRow(ctx, `SELECT nothing FROM nowhere`).Scan(&name); err == nil {
			t.Fatal("a query that does not compile scanned")
		}
	})
}
