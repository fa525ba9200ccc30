package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/browsertest"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/tally/tallytest"
)

// TestDashboardChartsInABrowser shows the dashboard's charts in Chromium at
// a phone's width and a desktop's: every bar has its label and figure in
// words, a purpose on another legal basis says so instead of a share, a
// hostile purpose name stays text, the opt-in statuses over time have a
// line per status, a gap for a day without figures and a table of every
// day, 30 or 90 of them; every chart text is drawn large enough to read
// and whole; no page scrolls sideways, and axe-core finds nothing.
func TestDashboardChartsInABrowser(t *testing.T) {
	db := storetest.OpenSQLite(t)
	e, d := signedIn(t, db)
	browser := d.ctx
	ctx := context.Background()

	// Twelve contacts (3 of every 4 with an E-marketing record, half of
	// them granted), two opted in, one opted out by herself; a purpose
	// whose name is markup.
	contacttest.SeedMillion(t, db, 12)
	if err := db.Write(ctx, func(tx *store.Tx) error {
		for id, status := range map[string]string{"c1": contactstate.DoubleOptIn, "c2": contactstate.DoubleOptIn, "c3": contactstate.OptOutContact} {
			if err := contactstate.SetOptInTx(tx, id, status, time.Now()); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	name, basis, text := `<img src=x onerror=alert(1)> News`, consent.BasisConsent, "News by email."
	if _, err := e.a.Consent.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: &name, LegalBasis: &basis, Text: &text}); err != nil {
		t.Fatal(err)
	}
	if err := e.a.Tally.Count(ctx); err != nil {
		t.Fatal(err)
	}
	// Figures of 40 days ago and of the day before yesterday, none
	// yesterday.
	tallytest.Repeat(t, db, time.Now(), 40, 2)

	d.do(chromedp.EmulateViewport(1280, 900), chromedp.Navigate(e.srv.URL+"/admin/"), chromedp.WaitVisible(chromedp.CSS("#optin-history svg")))
	if got := d.text("#contacts-summary"); !strings.HasPrefix(got, "12 contacts. Figures as of ") {
		t.Fatalf("summary: %q", got)
	}
	// SVG has no innerText: its text content, the <desc> included.
	content := func(css string) string {
		t.Helper()
		s, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.querySelector(`+strconv.Quote(css)+`).textContent`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	coverage := content(".charts figure:nth-child(1) svg")
	for _, want := range []string{"E-marketing", "6", "50% of 12 contacts granted; 3 withdrawn",
		"Sales and service", "Legal basis: contract", "0 objections, no consent asked", name, "0% of 12 contacts granted; 0 withdrawn"} {
		if !strings.Contains(coverage, want) {
			t.Errorf("the coverage chart lacks %q: %q", want, coverage)
		}
	}
	if strings.Contains(coverage, "Sales and service0") || strings.Contains(content(".charts figure:nth-child(1) desc"), "Sales and service:") {
		t.Errorf("a purpose on a contract shows a figure of consent: %q", coverage)
	}
	imgs, err := chromedp.Run(browser, chromedp.Evaluate[int](`document.querySelectorAll("main img").length`))
	if err != nil || imgs != 0 {
		t.Fatalf("a purpose's name became markup: %d %v", imgs, err)
	}
	if got := content(".charts figure:nth-child(2) desc"); !strings.Contains(got, "Double opt-in: 2 (17% of contacts)") ||
		!strings.Contains(got, "Opted out (contact): 1 (8% of contacts)") {
		t.Errorf("opt-in chart: %q", got)
	}
	lines, err := chromedp.Run(browser, chromedp.Evaluate[int](`document.querySelectorAll("#optin-history svg path").length`))
	if err != nil || lines != 6 {
		t.Fatalf("lines: %d %v", lines, err)
	}
	rows := func() []string {
		t.Helper()
		r, err := chromedp.Run(browser, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#optin-history tbody tr")].map(r => r.textContent)`))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	d.do(chromedp.Click(chromedp.CSS("#optin-history summary")), chromedp.WaitVisible(chromedp.CSS("#optin-history table")))
	r := rows()
	if len(r) != 30 || !strings.Contains(r[27], "9") || !strings.Contains(r[28], "no figure") || !strings.HasSuffix(r[29], "1") {
		t.Fatalf("30 days: %d rows, the last %q", len(r), r[max(0, len(r)-3):])
	}
	readable(t, browser, "1280 px")
	screenshot(t, browser, "dashboard-1280.png")
	browsertest.Axe(t, browser, "dashboard at 1280 px")

	d.do(chromedp.Click(chromedp.CSS(`#optin-history a[href$="days=90#optin-history"]`)), chromedp.WaitVisible(chromedp.CSS(`a[aria-current="page"][href*="days=90"]`)),
		chromedp.Click(chromedp.CSS("#optin-history summary")), chromedp.WaitVisible(chromedp.CSS("#optin-history table")))
	if r := rows(); len(r) != 90 || strings.Contains(r[49], "no figure") != false || !strings.Contains(r[48], "no figure") {
		t.Fatalf("90 days: %d rows; 40 days ago: %q", len(r), r[min(49, len(r)-1)])
	}

	d.do(chromedp.EmulateViewport(375, 740), chromedp.Navigate(e.srv.URL+"/admin/"), chromedp.WaitVisible(chromedp.CSS("#optin-history svg")),
		chromedp.Click(chromedp.CSS("#optin-history summary")), chromedp.WaitVisible(chromedp.CSS("#optin-history table")))
	fits, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
	if err != nil || !fits {
		t.Errorf("the dashboard is wider than a phone's screen (%v)", err)
	}
	readable(t, browser, "375 px")
	screenshot(t, browser, "dashboard-375.png")
	browsertest.Axe(t, browser, "dashboard at 375 px")
}

// readable fails unless every label, figure and note of the bar charts is
// drawn on screen at 11 px or more and whole inside its chart, so that it
// is read without hovering.
func readable(t *testing.T, browser context.Context, width string) {
	t.Helper()
	bad, err := chromedp.Run(browser, chromedp.Evaluate[[]string](`[...document.querySelectorAll(".charts svg text")].flatMap(el => {
		const px = parseFloat(el.getAttribute("font-size")) * el.getScreenCTM().a, box = el.getBBox();
		const vb = el.ownerSVGElement.viewBox.baseVal;
		return px < 11 || box.x + box.width > vb.width + 0.5 ? [el.textContent + " (" + px.toFixed(1) + " px)"] : [];
	})`))
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("at %s, chart texts too small or cut off: %q", width, bad)
	}
}

// screenshot saves the whole page under CONSENTRY_SCREENSHOTS, when set,
// for a person to look at.
func screenshot(t *testing.T, browser context.Context, name string) {
	t.Helper()
	dir := os.Getenv("CONSENTRY_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
