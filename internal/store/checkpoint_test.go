package store_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store"
)

// walRestarts reads the checkpoint sequence number from the header of the
// database's write-ahead log: SQLite adds one each time the log starts
// again from its beginning.
func walRestarts(t *testing.T, path string) uint32 {
	t.Helper()
	f, err := os.Open(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := make([]byte, 32)
	if _, err := f.ReadAt(h, 0); err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint32(h[12:16])
}

func openSQLiteAt(t *testing.T) (*store.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "consentry.db")
	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Write(context.Background(), func(tx *store.Tx) error {
		_, err := tx.Exec(`CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB NOT NULL)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return db, path
}

func writeBlobs(t *testing.T, db *store.DB, n int) {
	t.Helper()
	if err := db.Write(context.Background(), func(tx *store.Tx) error {
		for range n {
			if _, err := tx.Exec(`INSERT INTO blobs (b) VALUES ($1)`, rand.Text()+strings.Repeat("x", 3900)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestWriteAheadLogStartsAgainUnderSteadyWrites writes far more pages than
// the checkpointer lets the log hold, calling no checkpoint: the log must
// start again from its beginning on its own, as it did when the writer
// checkpointed inside its commits.
func TestWriteAheadLogStartsAgainUnderSteadyWrites(t *testing.T) {
	db, path := openSQLiteAt(t)
	before := walRestarts(t, path)
	// 5,000 pages of about 4 KiB: past the 4,096 at which the log must
	// start again. Then small writes, each of which gives the writer its
	// turn to finish the copy, until the log has started again; a writer
	// that never checkpoints would go on for ever, so the test stops it.
	for range 50 {
		writeBlobs(t, db, 100)
	}
	for i := 0; walRestarts(t, path) == before; i++ {
		if i == 20000 {
			t.Fatal("the write-ahead log never started again: it grows without end")
		}
		writeBlobs(t, db, 1)
	}
	var n int
	if err := db.Read.QueryRow(`SELECT count(*) FROM blobs`).Scan(&n); err != nil || n < 5000 {
		t.Fatalf("rows after the log started again: %d, %v", n, err)
	}
}

// TestCheckpointFailsWhileAReaderNeedsTheLog: an erasure empties the log so
// that erased values do not linger in it; when a reader's snapshot still
// needs the log, that cannot be done, and Checkpoint says so rather than
// pretending. Once the reader is done, it empties the log.
func TestCheckpointFailsWhileAReaderNeedsTheLog(t *testing.T) {
	db, path := openSQLiteAt(t)
	ctx := context.Background()
	writeBlobs(t, db, 10)
	reading, done, ended := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() {
		ended <- db.Snapshot(ctx, func(q store.Querier) error {
			var n int
			err := q.QueryRowContext(ctx, `SELECT count(*) FROM blobs`).Scan(&n)
			close(reading)
			<-done
			return err
		})
	}()
	<-reading
	writeBlobs(t, db, 10)
	if err := db.Checkpoint(ctx); err == nil {
		t.Error("Checkpoint succeeded while a reader needed the log")
	}
	close(done)
	if err := <-ended; err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatalf("Checkpoint after the reader ended: %v", err)
	}
	st, statErr := os.Stat(path + "-wal")
	if statErr != nil || st.Size() != 0 {
		t.Fatalf("the log after Checkpoint: %v, %v", st, statErr)
	}
}
