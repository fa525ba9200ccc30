package vault

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestChangeMasterKey: after ChangeMasterKey the keyset file opens with
// the new master key and not with the old; it holds the same keys, so a
// data key wrapped and a value sealed before open as they did, and the
// blind index is the same; a vault opened before the change (a running
// instance) keeps wrapping and unwrapping with the keys it holds.
func TestChangeMasterKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyset.json")
	oldKey := NewMasterKey()
	v, err := Create(path, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Rotate(); err != nil { // two wrapping keys, one primary
		t.Fatal(err)
	}
	key, wrapped, _, err := v.NewDataKey("c1")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := Seal(key, "c1", "national_id", "198501011234")
	if err != nil {
		t.Fatal(err)
	}
	index := v.BlindIndex("national_id", "198501011234")
	ids, primary := v.KeyIDs(), v.PrimaryKeyID()
	before := readFile(t, path)
	os.WriteFile(path+".tmp", []byte("left by a crash"), 0o644)

	var newKey string
	if err := ChangeMasterKey(path, oldKey, func(k string) error { newKey = k; return nil }); err != nil {
		t.Fatal(err)
	}
	if newKey == "" || newKey == oldKey {
		t.Fatalf("new master key %q", newKey)
	}
	if bytes.Equal(readFile(t, path), before) {
		t.Fatal("the keyset file did not change")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyset file mode: %v %v", fi.Mode().Perm(), err)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a temporary file is left beside the keyset: %v", err)
	}
	if _, err := Open(path, oldKey); err == nil || !strings.Contains(err.Error(), "CONSENTRY_MASTER_KEY") {
		t.Fatalf("the old master key opens the new file, or the refusal does not name CONSENTRY_MASTER_KEY: %v", err)
	}
	changed, err := Open(path, newKey)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed.KeyIDs(), ids) || changed.PrimaryKeyID() != primary {
		t.Fatalf("keys %v primary %d, before the change %v primary %d", changed.KeyIDs(), changed.PrimaryKeyID(), ids, primary)
	}
	got, err := changed.Unwrap("c1", wrapped)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("a data key wrapped before the change: %v", err)
	}
	if value, err := Unseal(got, "c1", "national_id", sealed); err != nil || value != "198501011234" {
		t.Fatalf("a value sealed before the change: %q %v", value, err)
	}
	if changed.BlindIndex("national_id", "198501011234") != index {
		t.Fatal("the blind index changed")
	}

	// The vault opened before the change still works, its first wrap
	// after the change included, and what it wraps opens with the new file.
	key2, wrapped2, id2, err := v.NewDataKey("c2")
	if err != nil || id2 != primary {
		t.Fatalf("a running vault after the change: %v (key %d)", err, id2)
	}
	if got, err := changed.Unwrap("c2", wrapped2); err != nil || !bytes.Equal(got, key2) {
		t.Fatalf("a data key wrapped by the running vault after the change: %v", err)
	}
	if got, err := v.Unwrap("c1", wrapped); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("the running vault unwraps after the change: %v", err)
	}
}

// TestChangeMasterKeyRefusals: a master key that does not open the file,
// a file that is not a keyset, one that cannot be written, and a new key
// that could not be handed on each leave the file byte for byte as it
// was, opening with the old master key.
func TestChangeMasterKeyRefusals(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, path, key string) (use string)
		keep  error
		want  string
	}{
		{name: "wrong master key", want: "CONSENTRY_MASTER_KEY",
			setup: func(t *testing.T, path, key string) string { return NewMasterKey() }},
		{name: "malformed master key", want: "32 bytes in base64",
			setup: func(t *testing.T, path, key string) string { return "short" }},
		{name: "not a keyset", want: "not a Consentry keyset file",
			setup: func(t *testing.T, path, key string) string { os.WriteFile(path, []byte("{"), 0o600); return key }},
		{name: "file not writable", want: "not writable",
			setup: func(t *testing.T, path, key string) string { readOnly(t, path, 0o400); return key }},
		{name: "directory not writable", want: "cannot write beside the keyset file",
			setup: func(t *testing.T, path, key string) string { readOnly(t, filepath.Dir(path), 0o500); return key }},
		{name: "key not kept", keep: errors.New("stdout is closed"), want: "stdout is closed",
			setup: func(t *testing.T, path, key string) string { return key }},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys", "keyset.json")
			key := NewMasterKey()
			if _, err := Create(path, key); err != nil {
				t.Fatal(err)
			}
			use := c.setup(t, path, key)
			before := readFile(t, path)
			kept := ""
			err := ChangeMasterKey(path, use, func(k string) error { kept = k; return c.keep })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error saying %q", err, c.want)
			}
			if c.keep == nil && kept != "" {
				t.Fatal("a new master key was handed on by a refused change")
			}
			if !bytes.Equal(readFile(t, path), before) {
				t.Fatal("a refused change changed the keyset file")
			}
			if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused change left a temporary file: %v", err)
			}
			if c.name != "not a keyset" {
				if _, err := Open(path, key); err != nil {
					t.Fatalf("the file no longer opens with its master key: %v", err)
				}
			}
		})
	}
	t.Run("no file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keyset.json")
		if err := ChangeMasterKey(path, NewMasterKey(), func(string) error { return nil }); err == nil {
			t.Fatal("a missing keyset file was changed")
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a keyset file appeared: %v", err)
		}
	})
}

// readOnly makes path unwritable for the test: mode perm, or for root,
// whom modes do not stop, the immutable attribute (chattr +i); it skips
// the test where neither is possible.
func readOnly(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	if os.Geteuid() != 0 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, perm); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(path, fi.Mode().Perm()) })
		return
	}
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Skipf("root cannot be kept from writing here without chattr +i: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", path).Run() })
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
