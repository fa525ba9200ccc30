package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
)

// SQLitePath is the file an SQLite database URL names: the setting
// without a sqlite:// or file: prefix and without its query.
func SQLitePath(dsn string) string {
	p := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite://"), "file:")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return p
}

// openFile opens an existing SQLite file with one connection, for the
// commands that copy and check a database outside a running service.
// mode=rw never creates the file; busy_timeout lets it wait for a
// running service's writer rather than fail; temp_store keeps any
// temporary copies of rows in memory, as Open does (backing up
// 1,000,000 contacts, the whole process peaked at 31 MB of RSS:
// BenchmarkBackupMillion).
func openFile(ctx context.Context, file string) (*sql.DB, error) {
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("there is no database at %s", file)
	} else if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: file}).EscapedPath()+"?mode=rw&_pragma=busy_timeout(10000)&_pragma=temp_store(MEMORY)")
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", file, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", file, err)
	}
	return db, nil
}

// VacuumInto writes a consistent copy of the SQLite database in file to
// dst, which must not exist or be empty, and syncs it to disk. It runs
// VACUUM INTO, a read transaction: a service writing to the database (in
// WAL mode, as Open sets it) goes on writing meanwhile, and the copy holds
// exactly the changes committed when the copy began. The copy has no free
// pages, so nothing an erasure zeroed or deleted comes along.
func VacuumInto(ctx context.Context, file, dst string) error {
	db, err := openFile(ctx, file)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO $1", dst); err != nil {
		return fmt.Errorf("store: copy %s: %w", file, err)
	}
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// CheckCopy checks an SQLite file that is not in use (a backup, or one
// being restored): PRAGMA integrity_check must find nothing, and the
// migrations applied to it must all be ones this program has. It returns
// the newest migration applied to the file, 0 for a file without any. Its
// errors say what is wrong without naming the file, which the caller does.
func CheckCopy(ctx context.Context, file string) (int64, error) {
	db, err := openFile(ctx, file)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var problems []string
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return 0, fmt.Errorf("not a readable SQLite database: %w", err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return 0, err
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, fmt.Errorf("PRAGMA integrity_check: %w", err)
	}
	if len(problems) > 0 {
		if len(problems) > 5 {
			problems = append(problems[:5], fmt.Sprintf("and %d more", len(problems)-5))
		}
		return 0, fmt.Errorf("damaged: PRAGMA integrity_check found %s", strings.Join(problems, "; "))
	}
	var applied sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT max(version_id) FROM goose_db_version").Scan(&applied); err != nil {
		return 0, fmt.Errorf("not a Consentry database (no migrations table): %w", err)
	}
	latest, err := LatestMigration()
	if err != nil {
		return 0, err
	}
	if applied.Int64 > latest {
		return applied.Int64, fmt.Errorf("at migration %d, newer than this program's latest, %d: use a version of consentry at least as new as the one that wrote it",
			applied.Int64, latest)
	}
	return applied.Int64, nil
}

// LatestMigration is the number of the newest migration this program
// carries: a database at it or below it is one this program can migrate.
func LatestMigration() (int64, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, n := range names {
		num, _, _ := strings.Cut(path.Base(n), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("store: migration %s: the name does not start with its number", n)
		}
		latest = max(latest, v)
	}
	return latest, nil
}
