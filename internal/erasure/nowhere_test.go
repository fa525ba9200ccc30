package erasure_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/suppression"
)

// personal is what TestErasedDataAppearsNowhere looks for: every personal
// value person writes, in the forms it is stored in.
var personal = []string{address, strings.ToLower(address), "Erasmussen", "+46 70 123 45 67", "Storgatan", "203.0.113.77",
	"AnnaBrowser", "Dear Anna", "Skåne"}

// TestErasedDataAppearsNowhere erases a contact and reads what the
// database holds as bytes: the SQLite file and its write-ahead log after a
// checkpoint, and pg_dump's output of the PostgreSQL schema. No personal
// value of the contact is there; the keyed hash of its address is.
func TestErasedDataAppearsNowhere(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "consentry.db")
		db, err := store.Open(context.Background(), path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		dump := func() []byte {
			if err := db.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
			var all []byte
			for _, f := range []string{path, path + "-wal"} {
				b, err := os.ReadFile(f)
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				all = append(all, b...)
			}
			return all
		}
		checkNowhere(t, db, dump)
	})
	t.Run("postgres", func(t *testing.T) {
		db := storetest.OpenPostgres(t)
		if _, err := exec.LookPath("pg_dump"); err != nil {
			t.Skip("pg_dump is not installed (it comes with the PostgreSQL client): cannot read the database as a dump")
		}
		dump := func() []byte {
			// VACUUM is not needed: pg_dump writes live rows only.
			out, err := exec.Command("pg_dump", "--no-owner", "--schema="+db.Schema(), storetest.PostgresURL()).Output()
			if err != nil {
				t.Fatalf("pg_dump: %v", err)
			}
			return out
		}
		checkNowhere(t, db, dump)
	})
}

func checkNowhere(t *testing.T, db *store.DB, dump func() []byte) {
	ctx := context.Background()
	w := newWorld(t, db)
	c := w.person(address)
	w.exec(`INSERT INTO mailbox (id, outbox_id, to_address, from_address, subject, text_body, delivered_at)
		SELECT id || '-copy', id, to_address, 'shop@example.org', subject, text_body, created_at FROM outbox WHERE contact_id = $1`, c.ID)
	before := dump()
	for _, v := range personal {
		if !bytes.Contains(before, []byte(v)) {
			t.Fatalf("the set-up does not store %q, so its absence would prove nothing", v)
		}
	}
	if _, err := w.erase.Erase(ctx, c.ID, byUser); err != nil {
		t.Fatal(err)
	}
	after := dump()
	for _, v := range personal {
		if i := bytes.Index(after, []byte(v)); i >= 0 {
			lo, hi := max(0, i-80), min(len(after), i+80)
			t.Errorf("%q is still in the database after erasure: ...%q...", v, after[lo:hi])
		}
	}
	var key string
	if err := db.Read.QueryRow(`SELECT key FROM erasure_keys`).Scan(&key); err != nil {
		t.Fatal(err)
	}
	k, _ := hex.DecodeString(key)
	if !bytes.Contains(after, []byte(suppression.Hash(k, address))) {
		t.Error("the suppression entry (the keyed hash of the address) is not in the database")
	}
}
