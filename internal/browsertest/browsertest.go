// Package browsertest starts Debian's Chromium for tests that drive pages in
// a real browser with chromedp. Without Chromium such tests are skipped with
// the reason, unless CONSENTRY_REQUIRE_BROWSER=1 (as in CI), which makes a
// missing browser a failure.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"sync"
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
	need(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), options(t.TempDir())...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, d)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// need skips the test, or fails it under CONSENTRY_REQUIRE_BROWSER=1,
// when Chromium is missing.
func need(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(Path); err != nil {
		if os.Getenv("CONSENTRY_REQUIRE_BROWSER") == "1" {
			t.Fatalf("CONSENTRY_REQUIRE_BROWSER=1 but %s is missing: apt-get install -y chromium", Path)
		}
		t.Skipf("browser tests skipped: %s is missing (apt-get install -y chromium)", Path)
	}
}

// options are the flags Chromium runs with, keeping its profile in dir.
func options(dir string) []chromedp.ExecAllocatorOption {
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Path),
		chromedp.UserDataDir(dir),
		chromedp.NoSandbox, // tests run as root here
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
	)
}

// shared is the one Chromium that Tab opens tabs in: starting a browser
// takes longer than most tests' pages together.
var shared struct {
	sync.Mutex
	ctx    context.Context // nil until the first Tab
	cancel func()
	dir    string
}

// Tab returns a chromedp context on a new tab of one headless Chromium
// that the package's tests share, started by the first test that asks and
// ended by Close (which the package's TestMain calls). The tab has a
// browser context of its own, so its cookies and storage are a fresh
// browser's; it is closed when the test ends, and has a deadline of d so
// that a stuck page fails the test instead of hanging it. Tests may use
// their tabs in parallel.
func Tab(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	need(t)
	browser := sharedBrowser(t)
	tab, cancelTab := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(tab, d)
	t.Cleanup(func() { cancelTimeout(); cancelTab() })
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

// sharedBrowser starts the shared browser, once.
func sharedBrowser(t testing.TB) context.Context {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.ctx != nil {
		return shared.ctx
	}
	dir, err := os.MkdirTemp("", "browsertest")
	if err != nil {
		t.Fatal(err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), options(dir)...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		cancelCtx()
		cancelAlloc()
		os.RemoveAll(dir)
		t.Fatalf("start chromium: %v", err)
	}
	shared.ctx, shared.dir = ctx, dir
	shared.cancel = func() { cancelCtx(); cancelAlloc() }
	return ctx
}

// Close ends the browser that Tab shares, if one was started, and removes
// its profile.
func Close() {
	shared.Lock()
	defer shared.Unlock()
	if shared.ctx == nil {
		return
	}
	shared.cancel()
	os.RemoveAll(shared.dir)
	shared.ctx = nil
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
