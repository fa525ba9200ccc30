package signing_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"runtime"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/consentry/consentry/internal/signing"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/vault/vaulttest"
)

// TestKeySignsNotesAndRotates: the first key is made once, even when two
// services (two instances) ask together; a note it signs opens with its
// verifier key alone; after a rotation the old key's public half still
// checks what it signed, and its private half is gone.
func TestKeySignsNotesAndRotates(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		a := &signing.Service{DB: db, Name: "example.org/ledger"}
		b := &signing.Service{DB: db, Name: "example.org/ledger"}
		ka, err := a.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := b.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ka.ID != kb.ID {
			t.Fatalf("two instances made two keys: %s and %s", ka.ID, kb.ID)
		}
		signed, err := note.Sign(&note.Note{Text: "example.org/ledger\n1\nAAAA\n"}, ka.NoteSigner())
		if err != nil {
			t.Fatal(err)
		}
		v, err := note.NewVerifier(ka.VerifierKey())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(signed, note.VerifierList(v)); err != nil {
			t.Fatalf("the note does not open with the key's verifier: %v", err)
		}
		parsed, err := signing.ParseVerifierKey(ka.VerifierKey() + "\n")
		if err != nil || parsed.ID != ka.ID || parsed.Name != ka.Name || !parsed.Public.Equal(ka.Public) {
			t.Fatalf("the verifier key reads back as %+v, %v", parsed, err)
		}
		if _, err := signing.ParseVerifierKey("example.org/ledger+00000000+AAAA"); err == nil {
			t.Fatal("a key that is no key was read")
		}
		msg := []byte("receipt")
		sig, _ := ka.Sign(msg)
		if !ed25519.Verify(ka.Public, msg, sig) {
			t.Fatal("signature does not verify")
		}

		kc, err := a.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if kc.ID == ka.ID {
			t.Fatal("rotation kept the key")
		}
		pub, err := a.Public(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(pub) != 2 || pub[0].ID != kc.ID || pub[0].RetiredAt != nil || pub[1].ID != ka.ID || pub[1].RetiredAt == nil {
			t.Fatalf("public keys after rotation: %+v", pub)
		}
		old, err := pub[1].Verifier()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(signed, note.VerifierList(old)); err != nil {
			t.Fatalf("the retired key no longer checks its note: %v", err)
		}
		var private string
		if err := db.Read.QueryRowContext(ctx, `SELECT private_key FROM signing_keys WHERE id = $1`, ka.ID).Scan(&private); err != nil {
			t.Fatal(err)
		}
		if private != "" {
			t.Error("the retired key kept its private half")
		}
	})
}

// TestKeyIsWrappedByTheKeyset: with a keyset, the private half is stored
// wrapped, opens again in a new process, and follows a keyset rotation.
func TestKeyIsWrappedByTheKeyset(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		v := vaulttest.New(t)
		s := &signing.Service{DB: db, Vault: v, Name: "example.org/ledger"}
		k, err := s.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var by int64
		if err := db.Read.QueryRowContext(ctx, `SELECT wrapped_by FROM signing_keys WHERE id = $1`, k.ID).Scan(&by); err != nil {
			t.Fatal(err)
		}
		if by != int64(v.PrimaryKeyID()) {
			t.Fatalf("wrapped by %d, want the keyset's primary key %d", by, v.PrimaryKeyID())
		}
		if _, err := v.Rotate(); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.Unwrapped(ctx, v.PrimaryKeyID()); n != 1 {
			t.Fatalf("%d keys under an older keyset key, want 1", n)
		}
		if n, err := s.Rewrap(ctx); err != nil || n != 1 {
			t.Fatalf("rewrap: %d, %v", n, err)
		}
		if n, _ := s.Unwrapped(ctx, v.PrimaryKeyID()); n != 0 {
			t.Fatalf("%d keys still under an older keyset key", n)
		}
		again, err := (&signing.Service{DB: db, Vault: v}).Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != k.ID || !again.Private().Equal(k.Private()) {
			t.Fatal("a new process opened another key")
		}
		if _, err := (&signing.Service{DB: db}).Current(ctx); err == nil {
			t.Fatal("a process without the keyset opened a wrapped key")
		}
	})
}

// TestFirstKeyWhileATransactionSigns: a transaction that signs (a receipt
// emailed with the consent record it writes) asks for the key while
// another goroutine (the ledger's checkpoint) is making the first key and
// waits for the writer that transaction holds. Both finish, with one key:
// the lock on the kept key is never held while waiting for the writer.
// It used to be, and the two waited for each other for ever.
func TestFirstKeyWhileATransactionSigns(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		s := &signing.Service{DB: db, Name: "example.org/ledger"}
		other := make(chan *signing.Key, 1)
		var inTx *signing.Key
		err := db.Write(ctx, func(tx *store.Tx) error {
			go func() {
				k, err := s.Current(ctx)
				if err != nil {
					t.Error(err)
				}
				other <- k
			}()
			waitForGoroutineIn(t, "signing.(*Service).create(")
			signed := make(chan error, 1)
			go func() {
				var err error
				inTx, err = s.CurrentIn(tx)
				signed <- err
			}()
			select {
			case err := <-signed:
				return err
			case <-time.After(time.Minute):
				return errors.New("the transaction's signing waited a minute for the key: the two wait for each other")
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if k := <-other; k == nil || k.ID != inTx.ID {
			t.Fatalf("the checkpoint got key %v, the transaction %s", k, inTx.ID)
		}
		var n int
		if err := db.Read.QueryRowContext(ctx, `SELECT count(*) FROM signing_keys`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d keys, %v", n, err)
		}
	})
}

// waitForGoroutineIn returns once a goroutine's stack holds the function
// call fn.
func waitForGoroutineIn(t testing.TB, fn string) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if bytes.Contains(buf[:n], []byte(fn)) {
			return
		}
		runtime.Gosched()
	}
}
