package cells_test

import (
	"testing"

	"github.com/consentry/consentry/internal/cells"
)

func TestDefuse(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"Åsa":               "Åsa",
		"=HYPERLINK(\"x\")": "'=HYPERLINK(\"x\")",
		"+46 70 123 45 67":  "'+46 70 123 45 67",
		"-1":                "'-1",
		"@SUM(A1)":          "'@SUM(A1)",
		"\t=1":              "'\t=1",
		"\r=1":              "'\r=1",
		"a=1":               "a=1",
		" =1+1":             "' =1+1",
		"  \n@SUM(A1)":      "'  \n@SUM(A1)",
		"  Åsa":             "  Åsa",
		"'=already defused": "'=already defused",
		"1500000":           "1500000",
		"anna@example.com":  "anna@example.com",
	} {
		if got := cells.Defuse(in); got != want {
			t.Errorf("Defuse(%q) = %q, want %q", in, got, want)
		}
		if got := cells.Defuse(cells.Defuse(in)); got != want {
			t.Errorf("Defuse twice (%q) = %q, want %q", in, got, want)
		}
	}
}
