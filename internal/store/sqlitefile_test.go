//go:build unix

package store_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/consentry/consentry/internal/store"
)

// TestSQLiteFilesArePrivate (SQLite only: PostgreSQL keeps no files of
// ours): a new database is created in a directory of mode 0700, and the
// database, its write-ahead log and its shared memory are 0600, whatever
// the umask leaves; a database found readable by others is restricted to
// its owner on opening, with a warning that names it and its mode.
func TestSQLiteFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o002) // a permissive umask: the modes must not depend on it
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "consentry-data")
	path := filepath.Join(dir, "consentry.db")
	var logged bytes.Buffer
	open := func() *store.DB {
		t.Helper()
		db, err := store.Open(context.Background(), path, store.Options{Log: slog.New(slog.NewTextHandler(&logged, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		return db
	}
	modes := func() map[string]os.FileMode {
		t.Helper()
		out := map[string]os.FileMode{}
		for _, p := range []string{dir, path, path + "-wal", path + "-shm"} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(p)] = st.Mode().Perm()
		}
		return out
	}
	want := map[string]os.FileMode{"consentry-data": 0o700, "consentry.db": 0o600, "consentry.db-wal": 0o600, "consentry.db-shm": 0o600}

	db := open()
	for name, m := range modes() {
		if m != want[name] {
			t.Errorf("new database: %s is %04o, want %04o", name, m, want[name])
		}
	}
	if logged.Len() != 0 {
		t.Errorf("a new database logged %s", logged.String())
	}
	db.Close()

	// An operator's copy, or an older installation, left it readable.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	db = open()
	defer db.Close()
	for name, m := range modes() {
		if m != want[name] {
			t.Errorf("reopened database: %s is %04o, want %04o", name, m, want[name])
		}
	}
	if got := logged.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "path="+path) || !strings.Contains(got, "mode=0644") {
		t.Errorf("the restriction was not logged with the path and the mode it had: %q", got)
	}
}
