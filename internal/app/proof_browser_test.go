package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/store/storetest"
)

// emulateMedia shows the page as on media ("print", or "" for the screen).
func emulateMedia(media string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: media})
		return err
	})
}

// TestConsentProofInABrowser: on the contact page, a consent record a
// contact confirmed by a double opt-in email opens its proof, which names
// the contact, the email and the text shown and says the ledger verifies;
// its text link opens that version; printed, the page has no navigation
// and is black on white; the contact page, the proof, the text version
// and the page for a missing record pass axe-core at 1280 and 375 pixels.
func TestConsentProofInABrowser(t *testing.T) {
	db := storetest.OpenSQLite(t)
	e, d := signedIn(t, db)
	browser := d.ctx

	var noor struct{ ID string }
	e.api("POST", "/api/v1/contacts", `{"email":"noor@example.com","first_name":"Noor","kind":"lead"}`, 201, &noor)
	e.api("POST", "/api/v1/double-opt-in", `{"contact_ids":["`+noor.ID+`"]}`, 200, nil)
	msg := e.smtp.Wait(t, 1)[0]
	if code, body := e.page("POST", msg.Links()[0], "en"); code != 200 {
		t.Fatalf("confirming: %d %s", code, body)
	}
	record := historyOf(e, noor.ID)[0]
	contactPage := "/admin/contacts/" + noor.ID
	proof := contactPage + "/consents/" + record.ID

	d.do(chromedp.EmulateViewport(1280, 900), chromedp.Navigate(e.srv.URL+contactPage), chromedp.Click(chromedp.CSS("#history summary")),
		chromedp.WaitVisible(chromedp.CSS("#history table")), chromedp.Click(chromedp.CSS("#record-"+record.ID+" a.proof-link")),
		chromedp.WaitVisible(chromedp.CSS("#proof-ledger")))
	for css, want := range map[string]string{"#proof-who": "the contact", "#proof-method": "double opt in link",
		"#proof-email-subject": msg.Subject, "#proof-token": record.Evidence.TokenID, "#proof-verified": "Verifies",
		"#proof-text blockquote": "newsletters and offers by email", "h1": "Proof of consent: E-marketing, granted"} {
		if got := d.text(css); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to hold %q", css, got, want)
		}
	}

	// Printed: no navigation, black on white.
	d.do(emulateMedia("print"))
	style, err := chromedp.Run(browser, chromedp.Evaluate[[]string](`[getComputedStyle(document.querySelector("header.top")).display,
		getComputedStyle(document.body).backgroundColor, getComputedStyle(document.querySelector("#proof-who")).color,
		String(document.querySelector("#proof-back").checkVisibility())]`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"none", "rgb(255, 255, 255)", "rgb(0, 0, 0)", "false"}; strings.Join(style, "|") != strings.Join(want, "|") {
		t.Fatalf("printed: header display, background, text colour, back link visible = %q, want %q", style, want)
	}
	d.do(emulateMedia(""))

	d.do(chromedp.Click(chromedp.CSS("#proof-text-link")), chromedp.WaitVisible(chromedp.CSS("blockquote.consent-text")))
	if h1 := d.text("h1"); h1 != "E-marketing: consent text v1" {
		t.Fatalf("the text link opened %q", h1)
	}
	d.pagesPass(e.srv.URL, contactPage, proof, "/admin/purposes/"+purposeID(e, "E-marketing")+"/texts/1", contactPage+"/consents/missing")
}
