//go:build unix

package vault

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestChangeMasterKeyKeepsOwner: the new file has the old one's owner
// and permissions, so a keyset changed by root still opens for the
// service's user. It needs root to give a file away.
func TestChangeMasterKeyKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root can give a file to another user")
	}
	path := filepath.Join(t.TempDir(), "keyset.json")
	oldKey := NewMasterKey()
	if _, err := Create(path, oldKey); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 4321, 4322); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o640)
	if err := ChangeMasterKey(path, oldKey, func(string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 4321 || st.Gid != 4322 || fi.Mode().Perm() != 0o640 {
		t.Fatalf("new keyset file: owner %d:%d mode %v, want 4321:4322 0640", st.Uid, st.Gid, fi.Mode().Perm())
	}
}
