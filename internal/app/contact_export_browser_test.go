package app_test

import (
	"net/url"
	"os"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/store/storetest"
)

// TestContactListExportInABrowser: on the contact list, the Export
// control opens the column chooser, which passes axe-core at 375 and 1280
// pixels, open and after a refusal (no column ticked), which says why;
// ticking columns and pressing Excel saves a workbook of what the list
// shows, the card number masked and the formula defused.
func TestContactListExportInABrowser(t *testing.T) {
	db := storetest.OpenSQLite(t)
	e, d := signedIn(t, db)
	listExportSetUp(e)
	do := d.do
	do(chromedp.Navigate(e.srv.URL+"/admin/contacts?filter="+url.QueryEscape(`region != "US"`)),
		chromedp.Click(chromedp.CSS("#export-open")), chromedp.WaitVisible(chromedp.CSS("#export-csv")))
	if got := d.text("#export-open"); got != "Export these 2 contacts" {
		t.Fatalf("the control says %q", got)
	}
	d.herePasses("contact list, export open")

	do(chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('input[name=columns]').forEach(c => { c.checked = false })`),
		chromedp.Click(chromedp.CSS("#export-csv")), chromedp.WaitVisible(chromedp.CSS("#columns-error")))
	if got := d.text("#columns-error"); got != "tick at least one column to export" {
		t.Fatalf("the refusal says %q", got)
	}
	d.herePasses("contact list, export refused")

	completed := allowDownloads(t, d.ctx, t.TempDir())
	for _, key := range wantListRows[0] {
		do(chromedp.Click(chromedp.CSS(`input[name=columns][value="` + key + `"]`)))
	}
	do(chromedp.Click(chromedp.CSS("#export-xlsx")))
	file, err := os.Open(completed())
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if rows := sheetRows(t, file); !slices.EqualFunc(rows, wantListRows, slices.Equal) {
		t.Fatalf("the downloaded workbook:\n%q\nwant\n%q", rows, wantListRows)
	}
	if n := count(t, db, `SELECT count(*) FROM access_log WHERE field = '(contact list)' AND reason LIKE '2 contacts as xlsx;%'`); n != 1 {
		t.Fatalf("%d exports logged", n)
	}
}
