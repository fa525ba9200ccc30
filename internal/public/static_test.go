package public

import (
	"io/fs"
	"regexp"
	"testing"
)

// inlineStyle is a style element or attribute in a template.
var inlineStyle = regexp.MustCompile(`(?i)<style|\sstyle\s*=`)

// TestPagesHaveNoInlineStyle: no page template carries a style element or
// attribute, which the pages' Content-Security-Policy would block; their
// look is in static/public.css, which the layout links. (Emails keep their
// inline styles: mail clients need them, and they are not served here.)
func TestPagesHaveNoInlineStyle(t *testing.T) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil || len(names) == 0 {
		t.Fatalf("templates: %v %v", names, err)
	}
	for _, n := range names {
		b, err := fs.ReadFile(templateFS, n)
		if err != nil {
			t.Fatal(err)
		}
		if loc := inlineStyle.FindIndex(b); loc != nil {
			t.Errorf("%s has an inline style at byte %d: %q", n, loc[0], b[loc[0]:min(len(b), loc[0]+60)])
		}
	}
	layout, _ := fs.ReadFile(templateFS, "templates/layout.html")
	if !regexp.MustCompile(`<link rel="stylesheet" href="` + staticPrefix + `public\.css">`).Match(layout) {
		t.Error("the layout does not link static/public.css")
	}
	if _, err := fs.Stat(staticFS, "static/public.css"); err != nil {
		t.Error(err)
	}
}
