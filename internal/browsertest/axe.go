package browsertest

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// axeSource is axe-core 4.14.1 (npm axe-core, MPL-2.0, licence in axe/),
// the accessibility checker, injected into a page by Axe.
//
//go:embed axe/axe.min.js
var axeSource string

// Violation is one accessibility rule a page breaks, as axe-core reports
// it: the rule, its impact, and the elements (CSS selectors) that break it.
type Violation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s (%s): %s at %s", v.ID, v.Impact, v.Help, strings.Join(v.Targets, ", "))
}

// Axe runs axe-core on the page in ctx, for the WCAG 2.1 A and AA rules
// and best practices, and fails the test with every violation found; where
// names the page in the message.
func Axe(t testing.TB, ctx context.Context, where string) {
	t.Helper()
	for _, v := range AxeViolations(t, ctx) {
		t.Errorf("%s: accessibility: %s", where, v)
	}
}

// AxeViolations runs axe-core as Axe does and returns what it found; none
// is an empty slice.
func AxeViolations(t testing.TB, ctx context.Context) []Violation {
	t.Helper()
	// Evaluated through the DevTools protocol, the script is not subject
	// to the page's Content-Security-Policy, which allows no script. A
	// page checked again (at another width) has it already.
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof axe !== "undefined"`))
	if err != nil {
		t.Fatalf("look for axe-core: %v", err)
	}
	if !loaded {
		// axe-core leaves an id given twice that a label or an ARIA
		// attribute points at for review ("incomplete"), as it cannot
		// tell which element is meant; either way one of them loses its
		// name or its description, so here it is a violation.
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axeSource+`;axe.configure({rules: [{id: "duplicate-id-aria", reviewOnFail: false}]});true`)); err != nil {
			t.Fatalf("inject axe-core: %v", err)
		}
	}
	found, err := chromedp.Run(ctx, chromedp.Evaluate[[]Violation](`axe.run(document, {runOnly: {type: "tag",
		values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}}).then(r => r.violations.map(v => ({
		id: v.id, impact: v.impact || "", help: v.help, targets: v.nodes.map(n => n.target.join(" "))})))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("run axe-core: %v", err)
	}
	return found
}
