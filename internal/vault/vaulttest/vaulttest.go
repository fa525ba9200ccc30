// Package vaulttest makes keysets for tests.
package vaulttest

import (
	"path/filepath"
	"testing"

	"github.com/consentry/consentry/internal/vault"
)

// Files creates a keyset file in a temporary directory and returns its
// path and master key, as CONSENTRY_KEYSET_FILE and CONSENTRY_MASTER_KEY
// would give them.
func Files(t testing.TB) (path, masterKey string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "keyset.json")
	masterKey = vault.NewMasterKey()
	if _, err := vault.Create(path, masterKey); err != nil {
		t.Fatal(err)
	}
	return path, masterKey
}

// New returns an open vault on a fresh keyset.
func New(t testing.TB) *vault.Vault {
	t.Helper()
	path, key := Files(t)
	v, err := vault.Open(path, key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
