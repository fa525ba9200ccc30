package app_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/browsertest"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestWebformInABrowser defines a form through the API, fills in the hosted
// form in a real browser (the page's own CSP and no JavaScript of ours),
// checks the marketing box, then confirms the double opt-in email that
// arrives over SMTP: the contact ends at double_opt_in with the records of
// both steps.
func TestWebformInABrowser(t *testing.T) {
	db := storetest.OpenSQLite(t)
	e := start(t, db)
	browser := newDriver(t).ctx
	e.api("POST", "/api/v1/lists", `{"name":"Newsletter"}`, 201, nil)
	var form struct{ ID string }
	e.api("POST", "/api/v1/webforms", `{"name":"signup","title":"Inschrijven","language":"nl",
		"fields":[{"name":"email"},{"name":"first_name","label":"Voornaam"}],
		"lists":[{"list":"Newsletter","label":"Nieuwsbrief"}],
		"consents":[{"purpose":"Sales and service","label":"Neem contact met mij op"}],
		"marketing":{},
		"privacy_policy_url":"https://acme.example/privacy"}`, 201, &form)

	run := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(browser, actions...); err != nil {
			t.Fatal(err)
		}
	}
	text := func(css string) string { t.Helper(); return browsertest.Text(t, browser, css) }
	run(chromedp.Navigate(e.srv.URL+"/f/"+form.ID),
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), "Cas@Example.com"),
		chromedp.SendKeys(chromedp.CSS(`input[name="first_name"]`), "Cas"),
		chromedp.Click(chromedp.CSS(`input[name="marketing.checked"]`)),
		chromedp.Click(chromedp.CSS(`label[for$="-lists0"]`)), // a click on the label checks its box
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`p[role="status"]`)))
	if got := text("h1"); got != "Bedankt" {
		t.Fatalf("after submitting: %q", got)
	}

	msg := e.smtp.Wait(t, 1)[0]
	if msg.To[0] != "Cas@Example.com" || len(msg.Links()) != 1 {
		t.Fatalf("double opt-in email: %v %q", msg.To, msg.Text)
	}
	run(chromedp.Navigate(msg.Links()[0]), chromedp.Click(chromedp.CSS("form button")),
		chromedp.WaitVisible(chromedp.CSS(`p[role="status"]`)))
	if got := text(`p[role="status"]`); !strings.Contains(got, "bevestigd") {
		t.Fatalf("after confirming: %q", got)
	}

	var found struct {
		Items []struct {
			ID          string
			Kind        string
			FirstName   string `json:"first_name"`
			OptInStatus string `json:"opt_in_status"`
		}
	}
	// The hosted form fits a phone's width.
	run(chromedp.EmulateViewport(360, 740), chromedp.Navigate(e.srv.URL+"/f/"+form.ID), chromedp.WaitVisible(chromedp.CSS(`form button[type="submit"]`)))
	if fits, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`)); err != nil || !fits {
		t.Fatalf("the hosted form is wider than a phone (%v)", err)
	}
	e.api("GET", "/api/v1/contacts?email=cas@example.com", "", 200, &found)
	if len(found.Items) != 1 {
		t.Fatalf("contacts: %+v", found)
	}
	c := found.Items[0]
	if c.Kind != "lead" || c.FirstName != "Cas" || c.OptInStatus != "double_opt_in" {
		t.Fatalf("contact: %+v", c)
	}
	var consents struct {
		History []struct {
			Purpose, Source string
			Evidence        struct{ Method, IP string }
		}
	}
	e.api("GET", "/api/v1/contacts/"+c.ID+"/consents", "", 200, &consents)
	var got []string
	for _, h := range consents.History {
		got = append(got, h.Purpose+"/"+h.Source+"/"+h.Evidence.Method+"/"+h.Evidence.IP)
	}
	// The marketing box on the form, then the confirmation; the unchecked
	// consent box recorded nothing.
	want := "E-marketing/Web form/webform/127.0.0.1 E-marketing/Double opt-in email/double_opt_in_link/127.0.0.1"
	if strings.Join(got, " ") != want {
		t.Fatalf("consent records:\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	var optIn struct {
		History []struct{ From, To string }
	}
	e.api("GET", "/api/v1/contacts/"+c.ID+"/opt-in", "", 200, &optIn)
	if len(optIn.History) != 2 || optIn.History[0].To != "single_opt_in_webform" || optIn.History[1].To != "double_opt_in" {
		t.Fatalf("opt-in history: %+v", optIn.History)
	}
	var subs []struct{ List, State, Source string }
	e.api("GET", "/api/v1/contacts/"+c.ID+"/lists", "", 200, &subs)
	if len(subs) != 1 || subs[0].State != "subscribed" || subs[0].Source != "webform" {
		t.Fatalf("subscriptions: %+v", subs)
	}
}
