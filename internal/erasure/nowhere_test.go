package erasure_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/suppression"
)

// personal is what TestErasedDataAppearsNowhere looks for: every personal
// value person writes, in the forms it is stored in, and the street of
// the contact's row in an import's report.
var personal = []string{address, strings.ToLower(address), "Erasmussen", "+46 70 123 45 67", "Storgatan", "203.0.113.77",
	"AnnaBrowser", "Dear Anna", "Skåne", "Importgatan"}

// TestErasedDataAppearsNowhere erases a contact and reads what the
// database holds as bytes (storetest.Dump): the SQLite file and its
// write-ahead log after a checkpoint, and pg_dump's output of the
// PostgreSQL schema. No personal value of the contact is there, neither
// from the record nor from an import's report or a kept upload; the keyed
// hash of its address is.
func TestErasedDataAppearsNowhere(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		c := w.person(address)
		w.exec(`INSERT INTO mailbox (id, outbox_id, to_address, from_address, subject, text_body, delivered_at)
			SELECT id || '-copy', id, to_address, 'shop@example.org', subject, text_body, created_at FROM outbox WHERE contact_id = $1`, c.ID)
		im := w.importer()
		im.run(im.upload(annaFails, boFails).ID, false)
		kept := im.upload(annaFails, dyUploaded)
		before := storetest.Dump(t, db)
		for _, v := range personal {
			if !bytes.Contains(before, []byte(v)) {
				t.Fatalf("the set-up does not store %q, so its absence would prove nothing", v)
			}
		}
		if _, err := w.erase.Erase(ctx, c.ID, byUser); err != nil {
			t.Fatal(err)
		}
		after := storetest.Dump(t, db)
		for _, v := range personal {
			if i := bytes.Index(after, []byte(v)); i >= 0 {
				lo, hi := max(0, i-80), min(len(after), i+80)
				t.Errorf("%q is still in the database after erasure: ...%q...", v, after[lo:hi])
			}
		}
		// The kept upload is encrypted, so its bytes show nothing either
		// way: it must be gone.
		if imp := im.get(kept.ID); imp.Status != imports.StatusDiscarded ||
			w.count(`SELECT count(*) FROM import_file_chunks WHERE import_id = $1`, kept.ID) != 0 {
			t.Errorf("the upload holding the address is still kept: %+v", imp)
		}
		var key string
		if err := db.Read.QueryRow(`SELECT key FROM erasure_keys`).Scan(&key); err != nil {
			t.Fatal(err)
		}
		k, _ := hex.DecodeString(key)
		if !bytes.Contains(after, []byte(suppression.Hash(k, address))) {
			t.Error("the suppression entry (the keyed hash of the address) is not in the database")
		}
	})
}
