package imports_test

import (
	"context"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestImportRefusesAnInvisibleAddress: an address with a character that
// cannot be seen (a byte order mark left at the start of a row when two
// files were joined, a zero-width space) is not another address beside
// the erased one it looks like: its row fails, with its number and why,
// and no contact is written.
func TestImportRefusesAnInvisibleAddress(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		c, err := w.people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("gone@example.com")}, Actor: user,
			Evidence: consent.Evidence{Method: consent.MethodEnteredByUser}})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.people.Delete(ctx, c.ID, user); err != nil {
			t.Fatal(err)
		}
		data := append(csvFile(',', []string{"email"}, []string{"ok@example.com"}), []byte("\ufeffgone@example.com\r\n\u200bgone@example.com\r\n")...)
		imp := w.upload("joined.csv", data)
		imp = w.run(imp.ID, imports.Definition{Source: "Trade fair 2026", Columns: []imports.Column{{Column: "email", Field: "email"}}}, false)
		if imp.Created != 1 || imp.Failed != 2 {
			t.Fatalf("import: %+v", imp)
		}
		report, err := w.imports.ReportRows(ctx, imp.ID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(report) != 2 {
			t.Fatalf("report: %+v", report)
		}
		for i, char := range []string{"U+FEFF", "U+200B"} {
			if r := report[i]; r.Row != int64(i+3) || r.Outcome != "failed" || r.Code != "invalid" || r.Field != "email" ||
				!strings.Contains(r.Reason, char) {
				t.Errorf("row %d: %+v", i+3, r)
			}
		}
		cs, _, err := w.people.List(ctx, contact.ListQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].Email != "ok@example.com" {
			t.Errorf("contacts: %+v", cs)
		}
	})
}
