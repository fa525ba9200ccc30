package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/backup"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/store"
)

// BenchmarkBackupMillion backs up and restores an SQLite database of
// 1,000,000 contacts with their consents (CONSENTRY_BENCH_CONTACTS sets
// another count), and reports the database's size and how long each
// took: backup-s is `consentry backup`'s work, restore-s the copy and
// PRAGMA integrity_check of `consentry restore`.
func BenchmarkBackupMillion(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("CONSENTRY_BENCH_CONTACTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	dir := b.TempDir()
	path := filepath.Join(dir, "data", "consentry.db")
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	contacttest.SeedMillion(b, db, n)
	if err := db.Checkpoint(ctx); err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var took, restoring time.Duration
	var size int64
	b.ResetTimer()
	for i := range b.N {
		file := filepath.Join(dir, "backup-"+strconv.Itoa(i)+".db")
		start := time.Now()
		if _, err := backup.Make(ctx, path, "", file, false); err != nil {
			b.Fatal(err)
		}
		took += time.Since(start)
		st, err := os.Stat(file)
		if err != nil {
			b.Fatal(err)
		}
		size = st.Size()
		start = time.Now()
		if _, err := backup.Restore(ctx, file, filepath.Join(dir, "restored-"+strconv.Itoa(i), "consentry.db"), ""); err != nil {
			b.Fatal(err)
		}
		restoring += time.Since(start)
		os.Remove(file)
	}
	b.ReportMetric(float64(size)/1e6, "backup-MB")
	b.ReportMetric(took.Seconds()/float64(b.N), "backup-s")
	b.ReportMetric(restoring.Seconds()/float64(b.N), "restore-s")
}
