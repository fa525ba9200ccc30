package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
)

// privateFiles keeps the SQLite database at path, and the write-ahead log
// and shared memory beside it, to the service's own user: they hold every
// contact's address, names and consent evidence in clear, as the keyset
// and backups (0600) hold what protects the rest.
//
// A missing database file is created empty with mode 0600 before SQLite
// opens it: SQLite gives the -wal and -shm files it creates the database
// file's permissions, so all three are 0600 whatever the umask.
//
// An existing file that lets anyone else in (any group or other bit) is
// tightened to its owner's bits alone, with a warning that names it and
// the mode it had: a looser mode is no choice an operator needs to keep
// (a copy for someone else is what `consentry backup` makes), and leaving
// it would leave every contact's data readable to every local user. A
// file the service cannot change (another user's) is left as it is, with
// a warning saying so.
func privateFiles(path string, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("store: create database file: %w", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm()&0o077 == 0 {
			continue // absent (SQLite makes it from the database's mode), or private
		}
		was, now := st.Mode().Perm(), st.Mode().Perm()&0o700
		if err := os.Chmod(p, now); err != nil {
			log.Warn("database file is readable by other users and could not be restricted to its owner", "path", p,
				"mode", fmt.Sprintf("%04o", was), "err", err)
			continue
		}
		log.Warn("database file was readable by other users: restricted to its owner", "path", p,
			"mode", fmt.Sprintf("%04o", was), "now", fmt.Sprintf("%04o", now))
	}
	return nil
}
