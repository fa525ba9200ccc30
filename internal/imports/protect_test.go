package imports_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// An uploaded file is kept encrypted: a copy of the database holds none of
// its sensitive values in the clear, before the import, after a preview
// and a dry run (whose report masks them) and after the import, which
// reads the file and stores the values encrypted.
func TestUploadKeepsSensitiveValuesEncrypted(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		file := append(slices.Clone(fairFile), []string{"eve@example.com", "Eve", "", "20010101-4242", "kanske", "2026-10-14"})
		secrets := []string{"19800101-1234", "19900101-9999", "20010101-4242"}
		inClear := func(when string) []byte {
			t.Helper()
			b := storetest.Dump(t, db)
			if !bytes.Contains(b, []byte("Personnummer")) {
				t.Fatalf("%s: the file's header (kept in the clear) is not in the copy, so the copy proves nothing", when)
			}
			for _, s := range secrets {
				if i := bytes.Index(b, []byte(s)); i >= 0 {
					t.Errorf("%s: the sensitive value %q is in the database in the clear: ...%q...", when, s, b[max(0, i-60):min(len(b), i+60)])
				}
			}
			return b
		}
		imp := w.upload("fair.csv", csvFile(';', file...))
		if b := inClear("after the upload"); bytes.Contains(b, []byte("anna@example.com")) {
			t.Error("after the upload: the file's other cells are in the clear too")
		}

		preview, err := w.imports.Preview(ctx, imp.ID, fairDefinition(), 10)
		if err != nil || len(preview) != 7 || preview[0].Fields["email"] != "anna@example.com" || preview[0].Fields["national_id"] != "" {
			t.Fatalf("preview: %+v %v", preview, err)
		}
		imp = w.run(imp.ID, fairDefinition(), true)
		if imp.Status != imports.StatusUploaded || imp.Failed != 3 || imp.Created != 2 {
			t.Fatalf("dry run: %+v", imp)
		}
		rows, err := w.imports.ReportRows(ctx, imp.ID, 0, 10)
		if err != nil || len(rows) != 3 || rows[2].Row != 8 || rows[2].Cells[3] != "•••••••••4242" {
			t.Fatalf("the dry run's report: %+v %v", rows, err)
		}
		inClear("after the dry run")

		imp = w.run(imp.ID, fairDefinition(), false)
		if imp.Status != imports.StatusDone || imp.Created != 2 || imp.Failed != 3 {
			t.Fatalf("import: %+v", imp)
		}
		if anna := w.contact("anna@example.com"); anna == nil || anna.Fields["national_id"] != "•••••••••1234" {
			t.Fatalf("anna: %+v", anna)
		}
		var encrypted, chunks int
		db.Read.QueryRow(`SELECT count(*) FROM sensitive_values WHERE field = 'national_id' AND ciphertext <> ''`).Scan(&encrypted)
		db.Read.QueryRow(`SELECT count(*) FROM import_file_chunks`).Scan(&chunks)
		if encrypted != 2 || chunks != 0 {
			t.Errorf("after the import: %d national ids stored encrypted (want 2), %d chunks of the file kept (want 0)", encrypted, chunks)
		}
		if b := inClear("after the import"); !bytes.Contains(b, []byte("anna@example.com")) {
			t.Error("after the import: the contact's address is not in the copy, so the copy proves nothing")
		}
	})
}

// keys rotate wraps the key of a kept file anew, so that keys retire
// leaves the file readable: the import still runs.
func TestKeysRotateCoversUploads(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		imp := w.upload("fair.csv", csvFile(';', fairFile...))
		v := w.people.Vault
		old := v.PrimaryKeyID()
		if _, err := w.people.RotateKeys(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := w.imports.Unwrapped(ctx, v.PrimaryKeyID()); err != nil || n != 1 {
			t.Fatalf("after the rotation, %d files' keys under an older key (%v), want 1", n, err)
		}
		if n, err := w.imports.Rewrap(ctx); err != nil || n != 1 {
			t.Fatalf("rewrapped %d file keys (%v), want 1", n, err)
		}
		if n, err := w.imports.Unwrapped(ctx, v.PrimaryKeyID()); err != nil || n != 0 {
			t.Fatalf("after rewrapping, %d files' keys under an older key (%v)", n, err)
		}
		if err := w.people.RetireKeys(ctx); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(v.KeyIDs(), old) {
			t.Fatalf("key %d was not retired: %v", old, v.KeyIDs())
		}
		imp = w.run(imp.ID, fairDefinition(), false)
		if imp.Status != imports.StatusDone || imp.Created != 2 {
			t.Fatalf("the import after the rotation: %+v", imp)
		}
	})
}
