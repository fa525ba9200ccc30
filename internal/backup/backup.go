// Package backup copies the embedded SQLite database while the service
// runs, with the keyset file beside the copy, and restores such a copy
// into an empty data directory. The master key is never copied: a backup
// together with its master key would open every encrypted field, so the
// two are kept apart (docs/operations.md). PostgreSQL has tools of its
// own for this (pg_dump, point-in-time recovery), which the errors name.
package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/consentry/consentry/internal/store"
)

// KeysetSuffix follows a backup's file name in the name of the keyset
// file copied beside it: consentry.db and consentry.db.keyset.
const KeysetSuffix = ".keyset"

// ErrPostgres is returned for a PostgreSQL database, which these copies
// do not cover.
var ErrPostgres = errors.New("the database is PostgreSQL: back it up with pg_dump, or with point-in-time recovery " +
	"(WAL archiving), and restore with pg_restore or your recovery tooling; keep the keyset file and the master key " +
	"apart from the dump. See docs/operations.md (Backups)")

// Made is what Make wrote.
type Made struct {
	// File is the copy of the database; Keyset the copy of the keyset
	// file beside it, "" when the installation has no keyset.
	File, Keyset string
}

// Make writes a consistent copy of the SQLite database that databaseURL
// names to file (store.VacuumInto: a service using the database goes on
// writing meanwhile), and a copy of keyset, the keyset file in use ("" or
// a missing file for none), to file+KeysetSuffix. Each is written aside
// and moved into place whole, so a file by that name is always a complete
// copy. Without replace, Make refuses when either file exists.
//
// The keyset is copied after the database, so that it holds every
// keyset key the copied data keys are wrapped under; a `keys retire` run
// during the copy could remove one, and is not to be run meanwhile.
func Make(ctx context.Context, databaseURL, keyset, file string, replace bool) (*Made, error) {
	if store.IsPostgresURL(databaseURL) {
		return nil, ErrPostgres
	}
	if keyset != "" {
		if _, err := os.Stat(keyset); errors.Is(err, os.ErrNotExist) {
			keyset = ""
		}
	}
	made := &Made{File: file}
	keysetCopy := file + KeysetSuffix
	if !replace {
		for _, f := range []string{file, keysetCopy} {
			if _, err := os.Lstat(f); err == nil {
				return nil, fmt.Errorf("%s exists; choose another name, or give --force to replace it", f)
			}
		}
	}
	dbTmp, err := tempFile(filepath.Dir(file), filepath.Base(file))
	if err != nil {
		return nil, err
	}
	defer os.Remove(dbTmp)
	if err := store.VacuumInto(ctx, store.SQLitePath(databaseURL), dbTmp); err != nil {
		return nil, err
	}
	var keysetTmp string
	if keyset != "" {
		if keysetTmp, err = copyAside(keyset, filepath.Dir(keysetCopy)); err != nil {
			return nil, fmt.Errorf("copy the keyset file: %w", err)
		}
		defer os.Remove(keysetTmp)
	}
	if err := place(dbTmp, file, replace); err != nil {
		return nil, err
	}
	if keysetTmp == "" {
		// A keyset from an earlier backup by this name belongs to
		// another database.
		if err := os.Remove(keysetCopy); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return made, nil
	}
	if err := place(keysetTmp, keysetCopy, replace); err != nil {
		return nil, err
	}
	made.Keyset = keysetCopy
	return made, nil
}

// Restored is what Restore did.
type Restored struct {
	// Database is the restored database file.
	Database string
	// Keyset is where the backup's keyset file now is, "" when the backup
	// had none beside it. KeysetThere is set when that file was already
	// there, the same, and was left as it was.
	Keyset      string
	KeysetThere bool
	// Migration is the newest migration applied in the backup; Latest is
	// this program's, which the next start brings it to.
	Migration, Latest int64
}

// Restore copies the backup file into place as the SQLite database that
// databaseURL names, and the keyset beside the backup (file+KeysetSuffix),
// when there is one, to keyset. It refuses when a database is there
// already, and when a different keyset file is at keyset. The copy is
// checked (store.CheckCopy: integrity, and migrations this program
// knows) before it is moved into place, so a refused restore leaves
// nothing behind. Migrations the backup lacks run at the next start.
func Restore(ctx context.Context, file, databaseURL, keyset string) (*Restored, error) {
	if store.IsPostgresURL(databaseURL) {
		return nil, ErrPostgres
	}
	db := store.SQLitePath(databaseURL)
	for _, f := range []string{db, db + "-wal"} {
		if _, err := os.Lstat(f); err == nil {
			return nil, fmt.Errorf("the data directory already holds a database, %s: restore only into an empty data directory "+
				"(stop the service, move the database and its -wal and -shm files away, or point CONSENTRY_DATABASE_URL elsewhere)", f)
		}
	}
	if _, err := os.Stat(file); err != nil {
		return nil, err
	}
	out := &Restored{Database: db}
	keysetSrc := file + KeysetSuffix
	var keysetData []byte
	if b, err := os.ReadFile(keysetSrc); err == nil {
		keysetData = b
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if keysetData != nil {
		if keyset == "" {
			return nil, fmt.Errorf("%s has a keyset beside it, but no keyset file is configured: set CONSENTRY_KEYSET_FILE (and CONSENTRY_MASTER_KEY)", file)
		}
		if have, err := os.ReadFile(keyset); err == nil {
			if !bytes.Equal(have, keysetData) {
				return nil, fmt.Errorf("%s exists and is not the keyset of the backup (%s): move it away, or point CONSENTRY_KEYSET_FILE elsewhere", keyset, keysetSrc)
			}
			out.KeysetThere = true
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		out.Keyset = keyset
	}
	if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
		return nil, fmt.Errorf("create the data directory: %w", err)
	}
	tmp, err := copyAside(file, filepath.Dir(db))
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	if out.Migration, err = store.CheckCopy(ctx, tmp); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if out.Latest, err = store.LatestMigration(); err != nil {
		return nil, err
	}
	var keysetTmp string
	if keysetData != nil && !out.KeysetThere {
		if err := os.MkdirAll(filepath.Dir(keyset), 0o700); err != nil {
			return nil, err
		}
		if keysetTmp, err = copyAside(keysetSrc, filepath.Dir(keyset)); err != nil {
			return nil, err
		}
		defer os.Remove(keysetTmp)
	}
	if err := place(tmp, db, false); err != nil {
		return nil, err
	}
	if keysetTmp != "" {
		if err := place(keysetTmp, keyset, false); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// tempFile makes an empty file, readable by this user only, in dir, to
// be written and then moved into place as name.
func tempFile(dir, name string) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}

// copyAside copies src to a new temporary file in dir, synced to disk,
// and returns its name.
func copyAside(src, dir string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, "."+filepath.Base(src)+".*.tmp")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if err = errors.Join(err, out.Close()); err != nil {
		os.Remove(out.Name())
		return "", err
	}
	return out.Name(), nil
}

// place moves the finished file tmp to dst and syncs the directory, so
// that the name survives a crash. Without replace it links rather than
// renames: a link never replaces a file, so a file another command put at
// dst meanwhile is not lost.
func place(tmp, dst string, replace bool) error {
	if replace {
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
	} else {
		if err := os.Link(tmp, dst); err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s exists; it was made while this command ran", dst)
			}
			return err
		}
		os.Remove(tmp)
	}
	d, err := os.Open(filepath.Dir(dst))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
