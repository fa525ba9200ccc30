// Package storetest opens fresh, migrated databases for tests: SQLite always,
// and PostgreSQL when CONSENTRY_TEST_POSTGRES holds a URL. Each PostgreSQL
// test gets its own schema, dropped when the test ends.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// PostgresURL returns the URL in CONSENTRY_TEST_POSTGRES, or "" when the
// PostgreSQL tests are not asked for.
func PostgresURL() string { return os.Getenv("CONSENTRY_TEST_POSTGRES") }

// Each runs fn as a subtest named "sqlite" on a fresh SQLite database and,
// when CONSENTRY_TEST_POSTGRES is set, as "postgres" on a fresh schema there.
// Without it the PostgreSQL subtest is skipped with the reason. When it is
// set and the server cannot be reached, the test fails.
func Each(t testing.TB, fn func(t testing.TB, db *store.DB)) {
	run := func(name string, open func(testing.TB) *store.DB) {
		switch tt := t.(type) {
		case *testing.T:
			tt.Run(name, func(t *testing.T) { fn(t, open(t)) })
		case *testing.B:
			tt.Run(name, func(b *testing.B) { fn(b, open(b)) })
		}
	}
	run("sqlite", OpenSQLite)
	run("postgres", OpenPostgres)
}

// OpenSQLite returns a migrated SQLite database in a temporary directory.
func OpenSQLite(t testing.TB) *store.DB {
	t.Helper()
	return OpenSQLiteAt(t, filepath.Join(t.TempDir(), "consentry.db"))
}

// OpenSQLiteAt returns a migrated SQLite database in the file at path, for
// a test that opens the file again, from a Child say.
func OpenSQLiteAt(t testing.TB, path string) *store.DB {
	t.Helper()
	return open(t, path, store.Options{})
}

// OpenPostgres returns a migrated database in a fresh PostgreSQL schema, or
// skips the test when CONSENTRY_TEST_POSTGRES is not set.
func OpenPostgres(t testing.TB) *store.DB {
	t.Helper()
	url := PostgresURL()
	if url == "" {
		t.Skip("PostgreSQL tests skipped: set CONSENTRY_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run them")
	}
	b := make([]byte, 6)
	rand.Read(b)
	return open(t, url, store.Options{Schema: "t_" + hex.EncodeToString(b)})
}

func open(t testing.TB, dsn string, opt store.Options) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dsn, opt)
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() {
		if err := db.DropSchema(context.Background()); err != nil {
			t.Errorf("drop schema: %v", err)
		}
		db.Close()
	})
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// Series returns the SQL that numbers rows 1 to $1 for set-based inserts
// in test set-ups: a prefix to put before the INSERT and the FROM clause
// that gives the column i (a recursive CTE on SQLite, generate_series on
// PostgreSQL).
func Series(db *store.DB) (prefix, from string) {
	if db.Dialect == store.Postgres {
		return "", "FROM generate_series(1, $1) AS s(i)"
	}
	return "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1) ", "FROM s"
}

// OpenPostgresTwice returns two handles on one fresh PostgreSQL schema, as
// two Consentry instances sharing a database would have, or skips the test
// when CONSENTRY_TEST_POSTGRES is not set.
func OpenPostgresTwice(t testing.TB) (*store.DB, *store.DB) {
	t.Helper()
	first := OpenPostgres(t)
	second, err := store.Open(context.Background(), PostgresURL(), store.Options{Schema: first.Schema()})
	if err != nil {
		t.Fatalf("open second handle: %v", err)
	}
	t.Cleanup(func() { second.Close() })
	return first, second
}

// Concurrently calls fn(0) ... fn(n-1) from workers goroutines, each
// taking the next i, and returns how long they took and the first error;
// after an error no new call starts. Benchmarks of many callers use it.
func Concurrently(n int64, workers int, fn func(i int64) error) (time.Duration, error) {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= n || failed.Load() != nil {
					return
				}
				if err := fn(i); err != nil {
					err = fmt.Errorf("call %d: %w", i, err)
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if p := failed.Load(); p != nil {
		return elapsed, *p
	}
	return elapsed, nil
}

// Dump returns what a copy of db would hold, as bytes, for a test that a
// value is stored nowhere in the clear: on SQLite the database file and
// its write-ahead log after a checkpoint, on PostgreSQL pg_dump's output
// of the test's schema (live rows only, so VACUUM is not needed). The
// test is skipped when pg_dump is not installed.
func Dump(t testing.TB, db *store.DB) []byte {
	t.Helper()
	if db.Dialect == store.Postgres {
		if _, err := exec.LookPath("pg_dump"); err != nil {
			t.Skip("pg_dump is not installed (it comes with the PostgreSQL client): cannot read the database as a dump")
		}
		out, err := exec.Command("pg_dump", "--no-owner", "--schema="+db.Schema(), PostgresURL()).Output()
		if err != nil {
			t.Fatalf("pg_dump: %v", err)
		}
		return out
	}
	if err := db.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	var path string
	if err := db.Read.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path); err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if len(all) == 0 {
		t.Fatal("no database bytes read")
	}
	return all
}
