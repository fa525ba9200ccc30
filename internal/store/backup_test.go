package store_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/consentry/consentry/internal/store"
)

// TestBackupHoldsTheLogAndLiveWrites: a copy made while the database
// is open holds what is committed but still only in the write-ahead log
// (a copy of the database file alone would not), and one made while a
// writer goes on holds every row committed before it began, passes the
// checks a restore makes.
func TestBackupHoldsTheLogAndLiveWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "consentry.db")
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if err := db.Write(ctx, func(tx *store.Tx) error { _, err := tx.Exec(q, args...); return err }); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE TABLE backup_rows (n INTEGER NOT NULL)`)
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	for n := range 100 {
		exec(`INSERT INTO backup_rows (n) VALUES ($1)`, n)
	}
	if wal, err := os.Stat(path + "-wal"); err != nil || wal.Size() == 0 {
		t.Fatalf("the rows are not in the log: %v", err)
	}
	count := func(file string) int64 {
		t.Helper()
		latest, _ := store.LatestMigration()
		if m, err := store.CheckCopy(ctx, file); err != nil || m != latest {
			t.Fatalf("the copy: migration %d of %d, %v", m, latest, err)
		}
		copyDB, err := store.Open(ctx, file, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer copyDB.Close()
		var n int64
		if err := copyDB.Read.QueryRow(`SELECT count(*) FROM backup_rows`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	first := filepath.Join(dir, "first.db")
	if err := store.VacuumInto(ctx, path, first); err != nil {
		t.Fatal(err)
	}
	if n := count(first); n != 100 {
		t.Fatalf("the copy holds %d rows, want the 100 in the log", n)
	}

	// A writer goes on through the copy.
	var committed atomic.Int64
	committed.Store(100)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := db.Write(ctx, func(tx *store.Tx) error {
				_, err := tx.Exec(`INSERT INTO backup_rows (n) VALUES ($1)`, committed.Load())
				return err
			}); err != nil {
				t.Error(err)
				return
			}
			committed.Add(1)
		}
	}()
	before := committed.Load()
	second := filepath.Join(dir, "second.db")
	err = store.VacuumInto(ctx, path, second)
	after := committed.Load()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if n := count(second); n < before || n > after+1 {
		t.Fatalf("the copy holds %d rows; %d were committed when it began and %d when it ended", n, before, after)
	}
	t.Logf("%d rows committed while the copy was made", after-before)

	if err := store.VacuumInto(ctx, filepath.Join(dir, "missing.db"), filepath.Join(dir, "third.db")); err == nil {
		t.Fatal("a copy of no database")
	}
}
