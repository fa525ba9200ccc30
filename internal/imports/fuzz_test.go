package imports_test

import (
	"testing"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/imports"
)

// FuzzCells feeds what a file's cells and an API client's definition may
// hold to the functions that read them: none panics, an answer is only
// granted, withdrawn or nothing, and a definition that parses names its
// fields as given.
func FuzzCells(f *testing.F) {
	for _, s := range []string{"ja", "Nee", "2026-10-14", "14.10.2026", "31/02/2026", "x", "", "\xff\xfe", `{"source":"Fair","columns":[{"column":"E-post","field":"email"}]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if a, err := imports.ParseAnswer(s); err == nil && a != "" && a != consent.StateGranted && a != consent.StateWithdrawn {
			t.Fatalf("answer %q from %q", a, s)
		}
		if d, err := imports.ParseDate(s); err == nil && d.Location().String() != "UTC" {
			t.Fatalf("date %v from %q is not UTC", d, s)
		}
		if got := imports.Suggest([]string{s, s}, map[string]string{s: s}); len(got) != 2 || (got[0] != "" && got[0] == got[1]) {
			t.Fatalf("suggest %q for %q", got, s)
		}
		imports.ParseDefinition([]byte(s))
	})
}
