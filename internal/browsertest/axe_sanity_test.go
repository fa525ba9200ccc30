package browsertest_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/browsertest"
)

// TestAxeFindsViolations: a page with an image without alternative text,
// an unlabelled input, and a label pointing at an id given twice is
// reported.
func TestAxeFindsViolations(t *testing.T) {
	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(`data:text/html,<html lang="en"><title>x</title><main><img src="x.png"><input type="text"><label for="d">D</label><input id="d"><input id="d" aria-label="e"></main></html>`)); err != nil {
		t.Fatal(err)
	}
	got := browsertest.AxeViolations(t, ctx)
	ids := map[string]bool{}
	for _, v := range got {
		ids[v.ID] = true
	}
	if !ids["image-alt"] || !ids["label"] || !ids["duplicate-id-aria"] {
		t.Fatalf("violations found: %v", got)
	}
}
