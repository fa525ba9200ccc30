package app_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestOperatorIdentityInABrowser sets the operator's identity on the
// settings page in Chromium, on both databases: an SVG named logo.png is
// refused next to the logo field, keeping what was typed and saving
// nothing; a PNG is saved with the rest, and the page then shows it. A
// contact's preferences page then shows the organisation and its logo at
// the top and, at the bottom, the controller with its postal address and
// privacy contact. Both pages pass axe-core with no violation at 1280 and
// 375 pixels; removing the logo takes it off the pages.
func TestOperatorIdentityInABrowser(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e, d := signedIn(t, db)
		browser, text, do := d.ctx, d.text, d.do

		svg := logoFile(t, "logo.png", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`))
		do(chromedp.Navigate(e.srv.URL+"/admin/settings"),
			chromedp.SendKeys(chromedp.CSS("#organisation_name"), "Acme Ltd"),
			chromedp.SendKeys(chromedp.CSS("#postal_address"), "1 Main Street\n123 45 Smalltown"),
			chromedp.SendKeys(chromedp.CSS("#privacy_contact_name"), "Dana Protector"),
			chromedp.SendKeys(chromedp.CSS("#privacy_address"), "dpo@acme.example"),
			chromedp.SetUploadFiles(chromedp.CSS("#logo"), []string{svg}),
			chromedp.Click(chromedp.CSS("#organisation-save")), chromedp.WaitVisible(chromedp.CSS("#logo-error")))
		if got := text("#logo-error"); !strings.Contains(got, "PNG, JPEG or WebP") {
			t.Fatalf("an SVG logo: %q", got)
		}
		kept, err := chromedp.Run(browser, chromedp.Value(chromedp.CSS("#organisation_name")))
		if err != nil || kept != "Acme Ltd" {
			t.Fatalf("the name typed was not kept: %q %v", kept, err)
		}
		var st struct {
			OrganisationName string `json:"organisation_name"`
			LogoURL          string `json:"logo_url"`
		}
		e.api("GET", "/api/v1/settings", "", 200, &st)
		if st.OrganisationName != "" || st.LogoURL != "" {
			t.Fatalf("a refused form saved something: %+v", st)
		}

		do(chromedp.SetUploadFiles(chromedp.CSS("#logo"), []string{logoFile(t, "acme.png", logoPNG(t))}),
			chromedp.Click(chromedp.CSS("#organisation-save")), chromedp.WaitVisible(chromedp.CSS(".logo-preview")))
		if got := text(".flash"); got != "Your organisation saved." {
			t.Fatalf("after saving: %q", got)
		}
		loaded := `(() => { const i = document.querySelector(%q); return !!i && i.complete && i.naturalWidth === 40 })()`
		do(chromedp.Poll[chromedp.Void](strings.Replace(loaded, "%q", `".logo-preview"`, 1)))
		d.pagesPass(e.srv.URL, "/admin/settings")

		e.api("PATCH", "/api/v1/settings", `{"right_to_be_informed":true}`, 200, nil)
		e.api("POST", "/api/v1/contacts", `{"email":"maja@example.com","first_name":"Maja"}`, 201, nil)
		link := e.preferencesLinkIn(e.smtp.Wait(t, 1)[0])
		do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#save")),
			chromedp.Poll[chromedp.Void](strings.Replace(loaded, "%q", `"header.operator img"`, 1)))
		if got := text("header.operator"); got != "Acme Ltd" {
			t.Fatalf("page header: %q", got)
		}
		footer := text("footer.controller")
		for _, want := range []string{"Acme Ltd is responsible for your data (the controller).", "1 Main Street", "123 45 Smalltown",
			"Privacy contact: Dana Protector, dpo@acme.example"} {
			if !strings.Contains(footer, want) {
				t.Errorf("the page footer does not say %q: %q", want, footer)
			}
		}
		d.pagesPass(e.srv.URL, "/p")

		do(chromedp.Navigate(e.srv.URL+"/admin/settings"), chromedp.Click(chromedp.CSS("#logo-remove")), chromedp.WaitVisible(chromedp.CSS(".flash")))
		if got := text(".flash"); got != "Logo removed." {
			t.Fatalf("after removing the logo: %q", got)
		}
		do(chromedp.Navigate(e.srv.URL+"/p"), chromedp.WaitVisible(chromedp.CSS("#save")))
		n, err := chromedp.Run(browser, chromedp.Evaluate[int](`document.querySelectorAll("header.operator img, .logo-preview").length`))
		if err != nil || n != 0 || text("header.operator") != "Acme Ltd" {
			t.Fatalf("the removed logo is still shown: %d %v", n, err)
		}
	})
}
