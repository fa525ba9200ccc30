package app_test

import (
	"fmt"
	"net/smtp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/browsertest"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestRequestConfirmationInABrowser follows the confirmation link of a
// request emailed to the privacy address in Chromium, at a phone's and a
// desktop's width: the page and the answer fit the screen and pass axe
// with no violation, and the button confirms the request.
func TestRequestConfirmationInABrowser(t *testing.T) {
	e, addr := startInbound(t, storetest.OpenSQLite(t))
	d := newDriver(t)
	browser, do := d.ctx, d.do
	senders := []string{"wim@example.nl", "lea@example.se"}
	for i, width := range []int{375, 1280} {
		if err := smtp.SendMail(addr, nil, senders[i], []string{privacyAddress}, []byte(rawMessage(senders[i], "Please DELETE my data"))); err != nil {
			t.Fatal(err)
		}
		link := e.smtp.Wait(t, 2*i+1)[2*i].Links()[0]
		do(chromedp.EmulateViewport(int64(width), 800), chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("form button")))
		if title, button := browsertest.Text(t, browser, "h1"), browsertest.Text(t, browser, "form button"); title != "Confirm your erasure request" ||
			button != "Confirm my erasure request" {
			t.Fatalf("page: %q %q", title, button)
		}
		d.passes(fmt.Sprintf("the confirmation page at %d px", width), int64(width))
		do(chromedp.Click(chromedp.CSS("form button")), chromedp.WaitVisible(chromedp.CSS(`p[role="status"]`)))
		if after := browsertest.Text(t, browser, `p[role="status"]`); !strings.Contains(after, "Within one month") {
			t.Fatalf("answer: %q", after)
		}
		d.passes(fmt.Sprintf("the answer at %d px", width), int64(width))
		e.smtp.Wait(t, 2*i+2) // the operator is told
	}
	for _, r := range e.openRequests() {
		if r.Status != requests.StatusVerified {
			t.Fatalf("not confirmed: %+v", r)
		}
	}
}
