package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/xuri/excelize/v2"

	"github.com/consentry/consentry/internal/browsertest"
	"github.com/consentry/consentry/internal/store/storetest"
)

// allowDownloads makes the browser save downloads into dir under their
// GUIDs, and returns the stream of download progress events.
func allowDownloads(t *testing.T, ctx context.Context, dir string) func() string {
	t.Helper()
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: ptr(true),
			BrowserContextID: chromedp.FromContext(ctx).BrowserContextID})
		return err
	})); err != nil {
		t.Fatal(err)
	}
	// completed waits for the next download to finish and returns its file.
	return func() string {
		t.Helper()
		for ev, err := range progress {
			if err != nil {
				t.Fatalf("download: %v", err)
			}
			switch ev.State {
			case browser.DownloadProgressStateCompleted:
				return filepath.Join(dir, ev.GUID)
			case browser.DownloadProgressStateCanceled:
				t.Fatal("the download was canceled")
			}
		}
		t.Fatal("no download")
		return ""
	}
}

// checkLayouts runs axe-core on the page at a phone's and a desktop's
// width, and checks the page never scrolls sideways.
func checkLayouts(t *testing.T, ctx context.Context, where string, reload chromedp.Action[chromedp.Void]) {
	t.Helper()
	for _, w := range []int64{375, 1280} {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, 800), reload); err != nil {
			t.Fatal(err)
		}
		driver{t, ctx}.passes(where, w)
	}
}

// TestDownloadMyDataInABrowser: on the preferences page the contact asks
// for their data; the emailed link opens the download page, whose Excel
// button saves a workbook with their own clear values, and the access
// request is done. Both pages pass axe-core at 375 and 1280 pixels.
func TestDownloadMyDataInABrowser(t *testing.T) {
	db := storetest.OpenSQLite(t)
	e := start(t, db)
	ctx := newDriver(t).ctx
	id, link := pageSetUp(e)
	do := driver{t, ctx}.do
	do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#ask-export")))
	checkLayouts(t, ctx, "preferences page", chromedp.Navigate(e.srv.URL+"/p"))
	do(chromedp.Click(chromedp.CSS("#ask-export")), chromedp.WaitVisible(chromedp.CSS(`p[role="status"]`)))
	if got := browsertest.Text(t, ctx, "h1"); got != "Please check your email" {
		t.Fatalf("after asking: %q", got)
	}
	msg := e.smtp.Wait(t, 1)[0]
	page := e.srv.URL + exportLinkRE.FindString(msg.Text)
	checkLayouts(t, ctx, "download page", chromedp.Navigate(page))
	if got := browsertest.Text(t, ctx, "h1"); got != "Download your data" {
		t.Fatalf("download page: %q", got)
	}
	completed := allowDownloads(t, ctx, t.TempDir())
	do(chromedp.Click(chromedp.CSS("#download-xlsx")))
	f, err := excelize.OpenFile(completed())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows("fields")
	if err != nil || len(rows) != 2 || rows[1][5] != "4111111111111111" {
		t.Fatalf("the downloaded workbook's fields: %v %v", rows, err)
	}
	if n := count(t, db, `SELECT count(*) FROM subject_requests WHERE contact_id = $1 AND status = 'done'`, id); n != 1 {
		t.Fatalf("%d access requests done", n)
	}
}

// TestAdminDownloadInABrowser: the record's download block says whether
// values are masked, passes axe-core at 375 and 1280 pixels, and its JSON
// button saves the export.
func TestAdminDownloadInABrowser(t *testing.T) {
	db := storetest.OpenSQLite(t)
	e, d := signedIn(t, db)
	ctx := d.ctx
	c := cardOnFile(e, "rec@example.com", "granted")
	do := d.do
	record := e.srv.URL + "/admin/contacts/" + c.ID
	checkLayouts(t, ctx, "contact record", chromedp.Navigate(record))
	if note := browsertest.Text(t, ctx, "#export-masking"); !strings.Contains(note, "in the clear") {
		t.Fatalf("the admin's note: %q", note)
	}
	completed := allowDownloads(t, ctx, t.TempDir())
	do(chromedp.Click(chromedp.CSS("#export-json")))
	b, err := os.ReadFile(completed())
	if err != nil || !strings.Contains(string(b), `"schema": "consentry.export/1"`) || !strings.Contains(string(b), "4111111111111111") {
		t.Fatalf("the downloaded export: %v %.200s", err, b)
	}
}
