package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/browsertest"
	"github.com/consentry/consentry/internal/store"
)

// TestMain ends the browser the package's browser tests share.
func TestMain(m *testing.M) {
	defer browsertest.Close()
	m.Run()
}

// tabDeadline bounds a browser test's tab, so that a stuck page fails the
// test instead of hanging it.
const tabDeadline = 5 * time.Minute

// driver drives one browser tab for a test, failing it on any error.
type driver struct {
	t   testing.TB
	ctx context.Context
}

// newDriver drives a new tab, with cookies of its own, of the browser the
// package's tests share.
func newDriver(t testing.TB) driver {
	t.Helper()
	return driver{t, browsertest.Tab(t, tabDeadline)}
}

// signedIn is how the admin UI's browser tests begin: it starts the
// service on db (changed by before), opens a tab and creates the first
// admin, Ada, who is left signed in on the dashboard there.
func signedIn(t testing.TB, db *store.DB, before ...func(*app.App)) (*env, driver) {
	t.Helper()
	e := start(t, db, before...)
	d := newDriver(t)
	d.firstAdmin(e)
	return e, d
}

// do runs the actions in order.
func (d driver) do(actions ...chromedp.Action[chromedp.Void]) {
	d.t.Helper()
	if err := chromedp.Do(d.ctx, actions...); err != nil {
		d.t.Fatal(err)
	}
}

// text is the text of the first element css selects.
func (d driver) text(css string) string { d.t.Helper(); return browsertest.Text(d.t, d.ctx, css) }

// value is the value of the form control css selects.
func (d driver) value(css string) string {
	d.t.Helper()
	v, err := chromedp.Run(d.ctx, chromedp.Value(chromedp.CSS(css)))
	if err != nil {
		d.t.Fatalf("value of %s: %v", css, err)
	}
	return v
}

// firstAdmin creates the first admin, Ada, from the start-up link, and
// leaves her signed in on the dashboard.
func (d driver) firstAdmin(e *env) {
	d.t.Helper()
	d.do(chromedp.Navigate(e.setupLink()), chromedp.SendKeys(chromedp.CSS("#name"), "Ada Admin"),
		chromedp.SendKeys(chromedp.CSS("#email"), "ada@acme.example"),
		chromedp.SendKeys(chromedp.CSS("#password"), "correct horse battery"),
		chromedp.SendKeys(chromedp.CSS("#password2"), "correct horse battery"),
		chromedp.Submit(chromedp.CSS("#password2")), chromedp.WaitVisible(chromedp.CSS(".charts")))
}

// pagesPass opens each page at 1280 and at 375 pixels and fails the test
// on any axe-core violation, or where a page scrolls sideways.
func (d driver) pagesPass(base string, pages ...string) {
	d.t.Helper()
	d.pagesPassOnceReady(base, "", pages...)
}

// pagesPassOnceReady is pagesPass for pages that change after loading:
// each is checked once the JavaScript expression ready is true on it.
func (d driver) pagesPassOnceReady(base, ready string, pages ...string) {
	d.t.Helper()
	for _, width := range []int64{1280, 375} {
		d.do(chromedp.EmulateViewport(width, 800))
		for _, p := range pages {
			d.do(chromedp.Navigate(base + p))
			if ready != "" {
				d.do(chromedp.Poll[chromedp.Void](ready))
			}
			d.passes(p, width)
		}
	}
}

// herePasses checks the page the browser shows, which a form post led to
// and so cannot be opened again by its address, as pagesPass does: at
// 1280 and at 375 pixels.
func (d driver) herePasses(name string) {
	d.t.Helper()
	for _, width := range []int64{1280, 375} {
		d.do(chromedp.EmulateViewport(width, 800))
		d.passes(name, width)
	}
	d.do(chromedp.EmulateViewport(1280, 800))
}

// passes fails the test on any axe-core violation on the page shown, or
// when it scrolls sideways at width.
func (d driver) passes(name string, width int64) {
	d.t.Helper()
	browsertest.Axe(d.t, d.ctx, name)
	fits, err := chromedp.Run(d.ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
	if err != nil {
		d.t.Fatal(err)
	}
	if !fits {
		d.t.Errorf("%s is wider than %d pixels", name, width)
	}
}
