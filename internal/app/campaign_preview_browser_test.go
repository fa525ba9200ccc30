package app_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// previewShows is true once the editor's live preview shows a message
// whose plain text holds the argument, with no error.
const previewShows = `(want) => {
	const s = document.getElementById("preview-status");
	return !s.classList.contains("error") && document.getElementById("preview-text").textContent.includes(want) &&
		document.getElementById("preview-frame").getAttribute("data-posted");
}`

// waitPreview waits until the editor's preview shows a message whose
// plain text holds want, then until its sandboxed frame, which runs in a
// process of its own, shows it too, and returns the frame's text.
func waitPreview(t testing.TB, ctx context.Context, want string) string {
	t.Helper()
	src, err := chromedp.Run(ctx, chromedp.PollFunction[string](previewShows, chromedp.WithPollingArgs(want)))
	if err != nil {
		t.Fatalf("waiting for the preview of %q: %v", want, err)
	}
	for {
		infos, err := chromedp.Targets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range infos {
			if x.Type != "iframe" || x.URL != src {
				continue
			}
			fctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(x.TargetID), chromedp.WithDetachOnCancel())
			defer cancel()
			got, err := chromedp.Run(fctx, chromedp.PollFunction[string](`(want) => document.body && document.body.innerText.includes(want) && document.body.innerText`,
				chromedp.WithPollingArgs(want), chromedp.WithPollingInterval(20*time.Millisecond)))
			if err != nil {
				t.Fatalf("waiting for the frame to show %q: %v", want, err)
			}
			return got
		}
	}
}

// TestCampaignEditorLivePreviewInABrowser types a campaign into the editor
// in Chromium on both databases: the preview beside it shows the typed
// subject and body with the example contact's name, in its sandboxed
// frame, then a chosen contact's name, and an unknown tag as an error
// naming the field and the tag in the status line; the form still saves.
// The editor passes axe-core with its preview shown, at 1280 and 375
// pixels, without scrolling sideways.
func TestCampaignEditorLivePreviewInABrowser(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e, d, _ := campaignBrowser(t, db)
		browser, text, do := d.ctx, d.text, d.do

		do(chromedp.Navigate(e.srv.URL+"/admin/campaigns/new"), chromedp.WaitVisible(chromedp.CSS("#live-preview")),
			chromedp.Poll[chromedp.Void](`document.getElementById("preview-status").textContent.startsWith("Content: nothing to show yet")`))
		pages, err := chromedp.Run(browser, chromedp.Evaluate[int](`history.length`))
		if err != nil {
			t.Fatal(err)
		}
		do(chromedp.SendKeys(chromedp.CSS("#condition"), `lower(email) endsWith "@example.com"`),
			chromedp.SendKeys(chromedp.CSS("#subject_en"), "Hi {{first_name}}"),
			chromedp.SendKeys(chromedp.CSS("#html_en"), "<p>Hello {{ first_name }} {{last_name}}, typed here</p>"))
		if got := waitPreview(t, browser, "Hello Alex Example, typed here"); !strings.Contains(got, "Unsubscribe") {
			t.Fatalf("frame text: %q", got)
		}
		// Each preview took a new frame's first page: Back still leads off the editor.
		if n, err := chromedp.Run(browser, chromedp.Evaluate[int](`history.length`)); err != nil || n != pages {
			t.Fatalf("history: %d entries after the previews, %d before (%v)", n, pages, err)
		}
		if got := text("#preview-subject"); got != "Hi Alex" {
			t.Fatalf("preview subject: %q", got)
		}
		if got := text("#preview-status"); got != "As the example contact Alex Example would get it, in English (en)." {
			t.Fatalf("preview status: %q", got)
		}

		do(chromedp.SendKeys(chromedp.CSS("#preview-contact"), "ana@example.com"))
		waitPreview(t, browser, "Hello An")
		if got := text("#preview-subject"); got != "Hi An" {
			t.Fatalf("preview subject as ana: %q", got)
		}

		do(chromedp.SendKeys(chromedp.CSS("#html_en"), "<p>{{frist_name}}</p>"),
			chromedp.Poll[chromedp.Void](`document.getElementById("preview-status").classList.contains("error")`))
		want := "HTML body, English (en): unknown tag {{frist_name}} at character " + strconv.Itoa(len("<p>Hello {{ first_name }} {{last_name}}, typed here</p><p>")+1)
		if got := text("#preview-status"); !strings.HasPrefix(got, want) {
			t.Fatalf("unknown tag: %q, want %q", got, want)
		}
		if got, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.getElementById("preview-status").getAttribute("role")`)); err != nil || got != "status" {
			t.Fatalf("the status line's role: %q %v", got, err)
		}

		// Saving is unchanged: the bad tag is refused next to its field, and
		// the form saves once it is gone.
		do(chromedp.SendKeys(chromedp.CSS("#name"), "Spring news"), chromedp.Submit(chromedp.CSS("#name")),
			chromedp.WaitVisible(chromedp.CSS("#html_en-error")))
		do(chromedp.SetValue(chromedp.CSS("#html_en"), "<p>Hello {{first_name}}</p>"),
			chromedp.Submit(chromedp.CSS("#name")), chromedp.WaitVisible(chromedp.CSS(".flash")))
		if got := text(".flash"); got != "Campaign saved as a draft." {
			t.Fatalf("flash: %q", got)
		}
		edit := strings.TrimPrefix(strings.Split(mustLocation(t, browser), "?")[0], e.srv.URL) + "/edit"
		do(chromedp.Navigate(e.srv.URL + edit))
		waitPreview(t, browser, "Hello Alex")

		d.pagesPassOnceReady(e.srv.URL, `document.getElementById("preview-status").textContent !== ""`, "/admin/campaigns/new", edit)
	})
}
