// Package vault encrypts the values of sensitive fields.
//
// Envelope encryption: each contact has a data key of their own (256 random
// bits), stored only wrapped by the keyset (Tink AEAD, AES-256-GCM) with the
// contact's id as associated data. Each value is encrypted with that data
// key (AES-256-GCM) with the contact's id and the field's name as associated
// data, so a ciphertext copied to another row or field does not decrypt.
// Deleting a contact deletes their data key, which makes every copy of their
// encrypted values unreadable (B3), backups included once the keyset key
// that wrapped it is rotated out and destroyed.
//
// Exact-match look-ups use a blind index: a keyed PRF (Tink HMAC-SHA256) of
// the field and the value, so equal values can be found without decrypting
// anything, and without the key nothing can be learnt from the index.
//
// The keyset lives in a file (CONSENTRY_KEYSET_FILE), itself encrypted
// under a master key (CONSENTRY_MASTER_KEY, 32 random bytes in base64),
// which ChangeMasterKey replaces without changing the keys.
package vault

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/aead/subtle"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// ErrDecrypt means a ciphertext did not decrypt: wrong key, or a value that
// was moved to another row or field.
var ErrDecrypt = errors.New("vault: value does not decrypt here")

// Vault holds the keyset and does the cryptography.
type Vault struct {
	path   string
	master tink.AEAD

	mu      sync.RWMutex
	modTime time.Time // of the keyset file when last read or written
	wrap    tink.AEAD
	handle  *keyset.Handle
	primary uint32
	index   *prf.Set
	prfH    *keyset.Handle
}

// file is the keyset file: both keysets, each encrypted under the master key.
type file struct {
	AEAD json.RawMessage `json:"aead"`
	PRF  json.RawMessage `json:"prf"`
}

func masterAEAD(masterKey string) (tink.AEAD, error) {
	raw, err := base64.StdEncoding.DecodeString(masterKey)
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("the master key must be 32 bytes in base64 (generate one with: head -c 32 /dev/urandom | base64)")
	}
	return subtle.NewAESGCM(raw)
}

// NewMasterKey returns a fresh master key in base64.
func NewMasterKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// Create makes a new keyset file at path, encrypted under masterKey, and
// opens it. It refuses to overwrite an existing file.
func Create(path, masterKey string) (*Vault, error) {
	master, err := masterAEAD(masterKey)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("vault: %s exists; refusing to overwrite a keyset", path)
	}
	wh, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, err
	}
	ph, err := keyset.NewHandle(prf.HMACSHA256PRFKeyTemplate())
	if err != nil {
		return nil, err
	}
	v := &Vault{path: path, master: master}
	if err := v.use(wh, ph); err != nil {
		return nil, err
	}
	return v, v.save()
}

// Open reads the keyset file at path with masterKey. A wrong master key or
// a damaged file is an error that says so.
func Open(path, masterKey string) (*Vault, error) {
	master, err := masterAEAD(masterKey)
	if err != nil {
		return nil, err
	}
	v := &Vault{path: path, master: master}
	return v, v.reload()
}

// Reload reads the keyset file again, for a rotation made elsewhere.
func (v *Vault) Reload() error { return v.reload() }

func (v *Vault) reload() error {
	fi, err := os.Stat(v.path)
	if err != nil {
		return fmt.Errorf("vault: read keyset: %w", err)
	}
	b, err := os.ReadFile(v.path)
	if err != nil {
		return fmt.Errorf("vault: read keyset: %w", err)
	}
	defer func() {
		v.mu.Lock()
		v.modTime = fi.ModTime()
		v.mu.Unlock()
	}()
	wh, ph, err := decode(v.path, b, v.master)
	if err != nil {
		return err
	}
	return v.use(wh, ph)
}

// decode opens the keyset file path's content b with master.
func decode(path string, b []byte, master tink.AEAD) (wh, ph *keyset.Handle, err error) {
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, nil, fmt.Errorf("vault: %s is not a Consentry keyset file", path)
	}
	wrong := errors.New("vault: the keyset does not open with this master key " +
		"(wrong CONSENTRY_MASTER_KEY, or the one from before consentry keys change-master-key?)")
	if wh, err = keyset.Read(keyset.NewJSONReader(bytes.NewReader(f.AEAD)), master); err != nil {
		return nil, nil, wrong
	}
	if ph, err = keyset.Read(keyset.NewJSONReader(bytes.NewReader(f.PRF)), master); err != nil {
		return nil, nil, wrong
	}
	return wh, ph, nil
}

// encode is the keyset file of wh and ph, each encrypted under master.
func encode(wh, ph *keyset.Handle, master tink.AEAD) ([]byte, error) {
	var wb, pb bytes.Buffer
	if err := wh.Write(keyset.NewJSONWriter(&wb), master); err != nil {
		return nil, err
	}
	if err := ph.Write(keyset.NewJSONWriter(&pb), master); err != nil {
		return nil, err
	}
	return json.MarshalIndent(file{AEAD: wb.Bytes(), PRF: pb.Bytes()}, "", "  ")
}

// primitives are what the keysets do: wh wraps data keys, ph computes
// the blind index.
func primitives(wh, ph *keyset.Handle) (tink.AEAD, *prf.Set, error) {
	wrap, err := aead.New(wh)
	if err != nil {
		return nil, nil, err
	}
	index, err := prf.NewPRFSet(ph)
	if err != nil {
		return nil, nil, err
	}
	return wrap, index, nil
}

func (v *Vault) use(wh, ph *keyset.Handle) error {
	wrap, index, err := primitives(wh, ph)
	if err != nil {
		return err
	}
	p, err := wh.Primary()
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.wrap, v.handle, v.primary, v.index, v.prfH = wrap, wh, p.KeyID(), index, ph
	v.mu.Unlock()
	return nil
}

// save writes the keyset file in place of the old one (replaceFile), with
// its permissions and owner; a new one is readable by its owner only.
func (v *Vault) save() error {
	v.mu.RLock()
	wh, ph := v.handle, v.prfH
	v.mu.RUnlock()
	b, err := encode(wh, ph, v.master)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(v.path), 0o700); err != nil {
		return err
	}
	was, _ := os.Stat(v.path) // nil for a new keyset
	if err := replaceFile(v.path, b, was, nil); err != nil {
		return err
	}
	if fi, err := os.Stat(v.path); err == nil {
		v.mu.Lock()
		v.modTime = fi.ModTime()
		v.mu.Unlock()
	}
	return nil
}

// PrimaryKeyID is the id of the keyset key new data keys are wrapped with.
func (v *Vault) PrimaryKeyID() uint32 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.primary
}

// NewDataKey returns a fresh data key, and the same key wrapped for the
// contact, with the id of the keyset key that wrapped it. The contact's
// id is the associated data of the wrapping: another owner of a data key
// (an import's file: package imports) passes an id of its own that no
// contact has.
func (v *Vault) NewDataKey(contactID string) (key []byte, wrapped string, keyID uint32, err error) {
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, "", 0, err
	}
	wrapped, keyID, err = v.Wrap(contactID, key)
	return key, wrapped, keyID, err
}

// Wrap encrypts a data key for the contact under the primary keyset key.
// It first picks up a keyset file rotated by another process, so that no
// new data key is wrapped under a key that rotation is retiring; a keyset
// file it cannot read leaves it with the keys it holds.
func (v *Vault) Wrap(contactID string, key []byte) (string, uint32, error) {
	if fi, err := os.Stat(v.path); err == nil {
		v.mu.RLock()
		changed := !fi.ModTime().Equal(v.modTime)
		v.mu.RUnlock()
		if changed {
			// A file that no longer opens here was most likely encrypted
			// under a new master key (ChangeMasterKey), which leaves its
			// keys as they are: the ones held stay in use until a restart
			// with the new master key. A rotation this instance cannot
			// read is caught all the same: a new data key is checked
			// against the database's record of the current key, and keys
			// retire refuses while anything is under an older one.
			v.reload()
		}
	}
	v.mu.RLock()
	wrap, primary := v.wrap, v.primary
	v.mu.RUnlock()
	ct, err := wrap.Encrypt(key, []byte("data-key|"+contactID))
	if err != nil {
		return "", 0, err
	}
	return base64.StdEncoding.EncodeToString(ct), primary, nil
}

// Unwrap decrypts a contact's data key. A keyset file changed by a rotation
// in another process is read again once before giving up.
func (v *Vault) Unwrap(contactID, wrapped string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(wrapped)
	if err != nil {
		return nil, ErrDecrypt
	}
	for attempt := 0; attempt < 2; attempt++ {
		v.mu.RLock()
		wrap := v.wrap
		v.mu.RUnlock()
		if key, err := wrap.Decrypt(ct, []byte("data-key|"+contactID)); err == nil {
			return key, nil
		}
		if attempt == 0 && v.reload() != nil {
			break
		}
	}
	return nil, ErrDecrypt
}

// WrappedKeyID is the keyset key id a wrapped data key names (Tink's
// ciphertext prefix), or 0 when it names none.
func WrappedKeyID(wrapped string) uint32 {
	ct, err := base64.StdEncoding.DecodeString(wrapped)
	if err != nil || len(ct) < 5 || ct[0] != 1 {
		return 0
	}
	return binary.BigEndian.Uint32(ct[1:5])
}

func valueAD(contactID, field string) []byte { return []byte("value|" + contactID + "|" + field) }

// Seal encrypts a value of the field for the contact with their data key.
func Seal(key []byte, contactID, field, value string) (string, error) {
	ct, err := SealBytes(key, []byte(value), valueAD(contactID, field))
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(ct), nil
}

// Unseal decrypts a value sealed for this contact and field, or returns
// ErrDecrypt.
func Unseal(key []byte, contactID, field, sealed string) (string, error) {
	ct, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", ErrDecrypt
	}
	pt, err := OpenBytes(key, ct, valueAD(contactID, field))
	return string(pt), err
}

// SealBytes encrypts b with a data key (AES-256-GCM), bound to ad: the
// ciphertext opens only with the same associated data, so a copy moved
// elsewhere does not. For bytes that are no field's value, such as the
// chunks of an uploaded file.
func SealBytes(key, b, ad []byte) ([]byte, error) {
	g, err := subtle.NewAESGCM(key)
	if err != nil {
		return nil, err
	}
	return g.Encrypt(b, ad)
}

// OpenBytes decrypts what SealBytes made with key and ad, or returns
// ErrDecrypt.
func OpenBytes(key, ct, ad []byte) ([]byte, error) {
	g, err := subtle.NewAESGCM(key)
	if err != nil {
		return nil, err
	}
	pt, err := g.Decrypt(ct, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// BlindIndex is the keyed index of a field's value for exact-match look-up.
func (v *Vault) BlindIndex(field, value string) string {
	v.mu.RLock()
	index := v.index
	v.mu.RUnlock()
	out, err := index.ComputePrimaryPRF(append([]byte(field+"\x00"), value...), 16)
	if err != nil {
		panic(fmt.Sprintf("vault: blind index: %v", err)) // a valid keyset always computes
	}
	return hex.EncodeToString(out)
}

// Rotate adds a new primary key to the wrapping keyset and saves the file.
// The old keys stay, so data keys wrapped under them still open, until
// Retire removes them.
func (v *Vault) Rotate() (uint32, error) {
	v.mu.RLock()
	m := keyset.NewManagerFromHandle(v.handle)
	v.mu.RUnlock()
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return 0, err
	}
	if err := m.SetPrimary(id); err != nil {
		return 0, err
	}
	h, err := m.Handle()
	if err != nil {
		return 0, err
	}
	v.mu.RLock()
	ph := v.prfH
	v.mu.RUnlock()
	if err := v.use(h, ph); err != nil {
		return 0, err
	}
	return id, v.save()
}

// Retire destroys every wrapping key but the primary, and saves the file.
// Call it only when no data key is wrapped under them any more.
func (v *Vault) Retire() error {
	v.mu.RLock()
	h, primary, ph := v.handle, v.primary, v.prfH
	v.mu.RUnlock()
	m := keyset.NewManagerFromHandle(h)
	for i := 0; i < h.Len(); i++ {
		e, err := h.Entry(i)
		if err != nil {
			return err
		}
		if e.KeyID() != primary {
			if err := m.Delete(e.KeyID()); err != nil {
				return err
			}
		}
	}
	nh, err := m.Handle()
	if err != nil {
		return err
	}
	if err := v.use(nh, ph); err != nil {
		return err
	}
	return v.save()
}

// KeyIDs lists the ids of the wrapping keys in the keyset.
func (v *Vault) KeyIDs() []uint32 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var out []uint32
	for i := 0; i < v.handle.Len(); i++ {
		if e, err := v.handle.Entry(i); err == nil {
			out = append(out, e.KeyID())
		}
	}
	return out
}
