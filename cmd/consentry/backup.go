package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/backup"
	"github.com/consentry/consentry/internal/config"
)

// backupCmd copies the SQLite database and its keyset file (package
// backup) without stopping the service, and says where the master key is
// not: in the backup.
func backupCmd(ctx context.Context, cfg *config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	force := fs.Bool("force", false, "replace FILE and FILE.keyset if they exist")
	files, ok := parseArgs(fs, args)
	if !ok || len(files) != 1 {
		fmt.Fprint(stderr, "usage: consentry backup [--force] FILE\n")
		return 2
	}
	start := time.Now()
	made, err := backup.Make(ctx, cfg.DatabaseURL, app.KeysetFile(cfg), files[0], *force)
	if err != nil {
		fmt.Fprintf(stderr, "consentry: backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Wrote %s: the database as it was at %s.\n", made.File, start.UTC().Format(time.RFC3339))
	if made.Keyset == "" {
		fmt.Fprintln(stdout, "No keyset is configured, so there is no keyset file to copy.")
		return 0
	}
	fmt.Fprintf(stdout, "Wrote %s: the keyset file that encrypts sensitive fields.\n\n", made.Keyset)
	where := "CONSENTRY_MASTER_KEY"
	if cfg.KeysetFile == "" {
		_, master := app.DefaultKeyFiles(cfg.DatabaseURL)
		where = master
	}
	fmt.Fprintf(stdout, "THE MASTER KEY IS NOT IN THIS BACKUP. Without it the keyset does not open and the sensitive fields\n"+
		"cannot be read; with it, anyone holding the backup can read them. Keep a copy of the master key (%s)\n"+
		"separately from the backup, for example in a password manager or secret store.\n", where)
	return 0
}

// restoreCmd puts a backup in place of a missing SQLite database and says
// what the next start needs.
func restoreCmd(ctx context.Context, cfg *config.Config, args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "" || args[0][0] == '-' {
		fmt.Fprint(stderr, "usage: consentry restore FILE\n")
		return 2
	}
	r, err := backup.Restore(ctx, args[0], cfg.DatabaseURL, app.KeysetFile(cfg))
	if err != nil {
		fmt.Fprintf(stderr, "consentry: restore: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Restored %s to %s; PRAGMA integrity_check found nothing wrong. It is at migration %d; this version's latest is %d,\n"+
		"and consentry serve or consentry migrate applies the rest.\n", args[0], r.Database, r.Migration, r.Latest)
	switch {
	case r.Keyset == "":
		fmt.Fprintf(stdout, "There was no keyset file beside the backup (%s).\n", args[0]+backup.KeysetSuffix)
	case r.KeysetThere:
		fmt.Fprintf(stdout, "The keyset file %s is already the backup's.\n", r.Keyset)
	default:
		fmt.Fprintf(stdout, "Restored the keyset file to %s.\n", r.Keyset)
	}
	if r.Keyset != "" {
		where := "set CONSENTRY_MASTER_KEY to it"
		if cfg.KeysetFile == "" {
			_, master := app.DefaultKeyFiles(cfg.DatabaseURL)
			where = "put it in " + master + " (or set CONSENTRY_KEYSET_FILE and CONSENTRY_MASTER_KEY)"
		}
		fmt.Fprintf(stdout, "The master key is not in the backup: %s before starting.\n", where)
	}
	fmt.Fprintf(stdout, "Contacts erased since the backup was taken are in it again: erase them again (docs/erasure.md, What reaches backups).\n")
	return 0
}
