// Package browsertest starts Debian's Chromium for tests that drive pages in
// a real browser with chromedp. Without Chromium such tests are skipped with
// the reason, unless CONSENTRY_REQUIRE_BROWSER=1 (as in CI), which makes a
// missing browser a failure.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path is where Debian's chromium package puts the browser.
const Path = "/usr/bin/chromium"

// New returns a chromedp context on a fresh headless Chromium, closed when
// the test ends, with a deadline so a stuck page fails the test instead of
// hanging it.
func New(t testing.TB) context.Context {
	t.Helper()
	return NewFor(t, 60*time.Second)
}

// NewFor is New with a deadline of d, for a test that drives many pages.
func NewFor(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	if _, err := exec.LookPath(Path); err != nil {
		if os.Getenv("CONSENTRY_REQUIRE_BROWSER") == "1" {
			t.Fatalf("CONSENTRY_REQUIRE_BROWSER=1 but %s is missing: apt-get install -y chromium", Path)
		}
		t.Skipf("browser tests skipped: %s is missing (apt-get install -y chromium)", Path)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // tests run as root here
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, d)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// Text returns the text of the first element css selects on the page in
// ctx, failing the test when there is none.
func Text(t testing.TB, ctx context.Context, css string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("read %s: %v", css, err)
	}
	return v
}
