package vault

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateOpenAndWrongMasterKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyset.json")
	master := NewMasterKey()
	v, err := Create(path, master)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyset file mode %v", fi.Mode().Perm())
	}
	if _, err := Create(path, master); err == nil {
		t.Fatal("an existing keyset was overwritten")
	}
	key, wrapped, id, err := v.NewDataKey("c1")
	if err != nil || id != v.PrimaryKeyID() || WrappedKeyID(wrapped) != id {
		t.Fatalf("data key: %v, key id %d, primary %d, named %d", err, id, v.PrimaryKeyID(), WrappedKeyID(wrapped))
	}
	again, err := Open(path, master)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := again.Unwrap("c1", wrapped); err != nil || string(got) != string(key) {
		t.Fatalf("unwrap after reopening: %v", err)
	}
	if _, err := again.Unwrap("c2", wrapped); !errors.Is(err, ErrDecrypt) {
		t.Fatal("a data key opened for another contact")
	}
	if _, err := Open(path, NewMasterKey()); err == nil || !strings.Contains(err.Error(), "master key") {
		t.Fatalf("wrong master key: %v", err)
	}
	if _, err := Open(path, "short"); err == nil {
		t.Fatal("a malformed master key was accepted")
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), "AES") && strings.Contains(string(b), "keyValue") {
		t.Fatal("the keyset file holds clear key material")
	}
}

func TestValuesAreBoundToContactAndField(t *testing.T) {
	v, err := Create(filepath.Join(t.TempDir(), "k.json"), NewMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	key, _, _, _ := v.NewDataKey("c1")
	sealed, err := Seal(key, "c1", "national_id", "198501011234")
	if err != nil || strings.Contains(sealed, "1234") {
		t.Fatal(err)
	}
	if got, err := Unseal(key, "c1", "national_id", sealed); err != nil || got != "198501011234" {
		t.Fatalf("unseal: %q %v", got, err)
	}
	for _, c := range [][2]string{{"c2", "national_id"}, {"c1", "card_number"}} {
		if _, err := Unseal(key, c[0], c[1], sealed); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("a value moved to %v decrypted", c)
		}
	}
	if v.BlindIndex("national_id", "1") != v.BlindIndex("national_id", "1") || v.BlindIndex("national_id", "1") == v.BlindIndex("card", "1") {
		t.Fatal("blind index is not deterministic per field")
	}
}

func TestRotateThenRetire(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.json")
	master := NewMasterKey()
	v, _ := Create(path, master)
	key, oldWrapped, oldID, _ := v.NewDataKey("c1")
	newID, err := v.Rotate()
	if err != nil || newID == oldID || v.PrimaryKeyID() != newID {
		t.Fatalf("rotate: %v", err)
	}
	if _, err := v.Unwrap("c1", oldWrapped); err != nil {
		t.Fatal("a data key wrapped before rotation no longer opens")
	}
	rewrapped, id, _ := v.Wrap("c1", key)
	if id != newID {
		t.Fatal("not wrapped with the new primary")
	}
	if err := v.Retire(); err != nil || len(v.KeyIDs()) != 1 {
		t.Fatalf("retire: %v, %v", err, v.KeyIDs())
	}
	reopened, _ := Open(path, master)
	if _, err := reopened.Unwrap("c1", oldWrapped); !errors.Is(err, ErrDecrypt) {
		t.Fatal("a copy wrapped under the destroyed key still opens")
	}
	if got, err := reopened.Unwrap("c1", rewrapped); err != nil || string(got) != string(key) {
		t.Fatal("a re-wrapped data key does not open")
	}
}
