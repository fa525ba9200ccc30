package imports_test

import (
	"testing"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/lists"
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
		// Two columns of the same name are as likely to hold anything:
		// neither is suggested anything.
		known := imports.Known{Custom: map[string]string{s: s}, Purposes: []*consent.Purpose{{ID: "p", Name: s}}, Lists: []*lists.List{{ID: "l", Name: s}}}
		if got := imports.Suggest([]string{s, s}, known); len(got) != 2 || got[0] != (imports.Suggestion{Column: s}) || got[1] != got[0] {
			t.Fatalf("suggest %+v for %q", got, s)
		}
		imports.Suggest([]string{s, "Consent date", s + " consent"}, known)
		imports.ParseDefinition([]byte(s))
	})
}
