package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/consentry/consentry/internal/config"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/vault"
)

// DefaultKeyFiles are the keyset and master key files used with the
// embedded database when neither CONSENTRY_KEYSET_FILE nor
// CONSENTRY_MASTER_KEY is set: keyset.json and master.key in the
// database's directory.
func DefaultKeyFiles(databaseURL string) (keyset, master string) {
	dir := filepath.Dir(store.SQLitePath(databaseURL))
	return filepath.Join(dir, "keyset.json"), filepath.Join(dir, "master.key")
}

// KeysetFile is the keyset file the configuration uses: the one set, or
// with SQLite the default one (DefaultKeyFiles), which exists once the
// service has run; "" for PostgreSQL without a keyset.
func KeysetFile(cfg *config.Config) string {
	if cfg.KeysetFile != "" || store.IsPostgresURL(cfg.DatabaseURL) {
		return cfg.KeysetFile
	}
	keyset, _ := DefaultKeyFiles(cfg.DatabaseURL)
	return keyset
}

// defaultKeys uses, or on first run makes, a keyset and master key in the
// embedded database's directory, readable by this user only. It is for
// trying Consentry out: the keys sit beside the data they protect, so the
// log says production must supply its own.
func defaultKeys(cfg *config.Config, log *slog.Logger) error {
	keyset, masterFile := DefaultKeyFiles(cfg.DatabaseURL)
	dir := filepath.Dir(keyset)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	master, err := os.ReadFile(masterFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, err := os.Stat(keyset); err == nil {
			return fmt.Errorf("%s exists but %s is missing: without the master key the encrypted fields cannot be read", keyset, masterFile)
		}
		key := vault.NewMasterKey()
		if _, err := vault.Create(keyset, key); err != nil {
			return err
		}
		if err := os.WriteFile(masterFile, []byte(key+"\n"), 0o600); err != nil {
			return err
		}
		master = []byte(key)
		log.Warn("generated a keyset and master key for encrypted fields next to the database; in production set CONSENTRY_KEYSET_FILE and CONSENTRY_MASTER_KEY and keep the master key elsewhere",
			"keyset", keyset, "master_key_file", masterFile)
	case err != nil:
		return fmt.Errorf("read %s: %w", masterFile, err)
	}
	cfg.KeysetFile, cfg.MasterKey = keyset, strings.TrimSpace(string(master))
	return nil
}

// openVault opens the configured keyset. Without one, the service runs but
// cannot store sensitive values, and refuses to start if encrypted data
// exists. With one, it must open the data keys already stored.
func openVault(ctx context.Context, cfg *config.Config, db *store.DB) (*vault.Vault, error) {
	var contactID, wrapped string
	err := db.Read.QueryRowContext(ctx, `SELECT contact_id, wrapped FROM contact_keys LIMIT 1`).Scan(&contactID, &wrapped)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read encrypted fields: %w", err)
	}
	hasData := err == nil
	var sensitive int
	if err := db.Read.QueryRowContext(ctx, `SELECT count(*) FROM field_definitions WHERE sensitive`).Scan(&sensitive); err != nil {
		return nil, fmt.Errorf("read field definitions: %w", err)
	}
	if cfg.KeysetFile == "" {
		if hasData || sensitive > 0 {
			return nil, fmt.Errorf("sensitive fields exist but no keyset is configured: set CONSENTRY_KEYSET_FILE and CONSENTRY_MASTER_KEY")
		}
		return nil, nil
	}
	v, err := vault.Open(cfg.KeysetFile, cfg.MasterKey)
	if err != nil {
		return nil, fmt.Errorf("CONSENTRY_KEYSET_FILE / CONSENTRY_MASTER_KEY: %w", err)
	}
	if !hasData {
		return v, nil
	}
	if _, err := v.Unwrap(contactID, wrapped); err != nil {
		return nil, fmt.Errorf("CONSENTRY_KEYSET_FILE: this keyset does not open the encrypted fields in the database; is it the right file?")
	}
	// Every keyset key the data keys are wrapped under must be here: a
	// keyset file older than a rotation lacks the new key.
	used, err := store.QueryAll(ctx, db.Read, func(row store.Scanner) (int64, error) {
		var id int64
		return id, row.Scan(&id)
	}, `SELECT DISTINCT key_id FROM contact_keys`)
	if err != nil {
		return nil, fmt.Errorf("read encrypted fields: %w", err)
	}
	have := map[int64]bool{}
	for _, id := range v.KeyIDs() {
		have[int64(id)] = true
	}
	for _, id := range used {
		if !have[id] {
			return nil, fmt.Errorf("CONSENTRY_KEYSET_FILE: the keyset lacks key %d that encrypted fields use; install the current keyset file", id)
		}
	}
	return v, nil
}
