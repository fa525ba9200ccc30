package vault

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tink-crypto/tink-go/v2/keyset"
)

// ChangeMasterKey encrypts the keyset file at path, which must open with
// oldKey, under a fresh master key (NewMasterKey). The keys inside stay
// as they are, so nothing they encrypted or indexed changes.
//
// keep is given the new master key once the new file is written aside,
// synced, and checked to open with it and to hold the same keys; only if
// keep returns nil does the new file replace the old one. So a crash, or a
// key that could not be handed on, leaves the old file as it was, opening
// with oldKey, and never a keyset under a key nobody has.
//
// It refuses, and changes nothing, when the master key is malformed or
// does not open the file, when the file or its directory is not writable,
// and when the file changes meanwhile (another keys command ran at the
// same time). Copies of the old file made before, backups included, still
// open with oldKey: it cannot reach them.
func ChangeMasterKey(path, oldKey string, keep func(newKey string) error) error {
	oldMaster, err := masterAEAD(oldKey)
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("vault: read keyset: %w", err)
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("vault: read keyset: %w", err)
	}
	wh, ph, err := decode(path, old, oldMaster)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0) // neither truncates nor touches it
	if err != nil {
		return fmt.Errorf("vault: the keyset file is not writable: %w", err)
	}
	f.Close()
	newKey := NewMasterKey()
	newMaster, err := masterAEAD(newKey)
	if err != nil {
		return err
	}
	b, err := encode(wh, ph, newMaster)
	if err != nil {
		return err
	}
	return replaceFile(path, b, fi, func(tmp string) error {
		written, err := os.ReadFile(tmp)
		if err != nil {
			return fmt.Errorf("vault: read the new keyset file back: %w", err)
		}
		nwh, nph, err := decode(tmp, written, newMaster)
		if err != nil {
			return fmt.Errorf("vault: the new keyset file does not open with the new master key: %w", err)
		}
		if err := sameKeys(wh, ph, nwh, nph); err != nil {
			return err
		}
		if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, old) {
			return fmt.Errorf("vault: %s changed while its master key was being changed (another keys command?); run it again", path)
		}
		return keep(newKey)
	})
}

// sameKeys checks that the keysets wh and ph, as read back as nwh and nph,
// hold the same keys: the same ids, states and primary, a value wrapped
// by the one opening with the other, and the same blind index.
func sameKeys(wh, ph, nwh, nph *keyset.Handle) error {
	differ := errors.New("vault: the new keyset file does not hold the same keys")
	if describe(wh) != describe(nwh) || describe(ph) != describe(nph) {
		return differ
	}
	probe := make([]byte, 32)
	rand.Read(probe)
	a, p, err := primitives(wh, ph)
	if err != nil {
		return err
	}
	na, np, err := primitives(nwh, nph)
	if err != nil {
		return err
	}
	ct, err := a.Encrypt(probe, []byte("master-key-change"))
	if err != nil {
		return err
	}
	if pt, err := na.Decrypt(ct, []byte("master-key-change")); err != nil || !bytes.Equal(pt, probe) {
		return differ
	}
	want, err := p.ComputePrimaryPRF(probe, 16)
	if err != nil {
		return err
	}
	if got, err := np.ComputePrimaryPRF(probe, 16); err != nil || !bytes.Equal(got, want) {
		return differ
	}
	return nil
}

// describe lists a keyset's keys: id, state and which is primary.
func describe(h *keyset.Handle) string {
	var out string
	for i := 0; i < h.Len(); i++ {
		e, err := h.Entry(i)
		if err != nil {
			return "unreadable"
		}
		out += fmt.Sprintf("%d:%v:%v ", e.KeyID(), e.KeyStatus(), e.IsPrimary())
	}
	return out
}

// replaceFile puts b in place of the file at path so that a crash leaves
// either the old file or the new one, whole: it writes b to path+".tmp"
// in the same directory, syncs it, calls check (when not nil) on it,
// renames it over path and syncs the directory. The new file keeps the
// permissions and owner of the old one (was, nil when there is none), or
// is readable by its owner only. On an error before the rename, path is
// as it was.
func replaceFile(path string, b []byte, was os.FileInfo, check func(tmp string) error) error {
	tmp := path + ".tmp"
	os.Remove(tmp) // left by a crash; made anew, never written through
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("vault: cannot write beside the keyset file: %w", err)
	}
	placed := false
	defer func() {
		if !placed {
			os.Remove(tmp)
		}
	}()
	perm := os.FileMode(0o600)
	if was != nil {
		perm = was.Mode().Perm()
		if err := sameOwner(f, was); err != nil {
			f.Close()
			return fmt.Errorf("vault: give the new keyset file the old one's owner: %w", err)
		}
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("vault: write keyset: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("vault: write keyset: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("vault: write keyset: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("vault: write keyset: %w", err)
	}
	if check != nil {
		if err := check(tmp); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("vault: the keyset file could not be replaced, and is as it was: %w", err)
	}
	placed = true
	d, err := os.Open(filepath.Dir(path))
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil {
		return fmt.Errorf("vault: the new keyset file is in place, but its directory did not sync to disk (a crash now may bring back the old one): %w", err)
	}
	return nil
}
