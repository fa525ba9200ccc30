package app_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestSettingsSentBackWholeAndWebsite: a client may send back the
// settings it read, logo_url included, unchanged; a different logo_url
// is refused by name and says how to change the logo. The operator's
// website is checked, linked from the public pages' header and named in
// the email footer, and set from the settings page, where a refused
// address stays as typed.
func TestSettingsSentBackWholeAndWebsite(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		logo := base64.StdEncoding.EncodeToString(logoPNG(t))
		e.api("PATCH", "/api/v1/settings", `{"organisation_name":"Acme Ltd","website":"https://acme.example/about","logo":"`+logo+`"}`, 200, nil)

		res, whole := e.call("GET", "/api/v1/settings", "")
		if res.StatusCode != 200 || !strings.Contains(string(whole), `"logo_url":"/logo?v=`) || !strings.Contains(string(whole), `"website":"https://acme.example/about"`) {
			t.Fatalf("settings: %d %s", res.StatusCode, whole)
		}
		if res, body := e.call("PATCH", "/api/v1/settings", string(whole)); res.StatusCode != 200 {
			t.Fatalf("sending back the settings read: %d %s", res.StatusCode, body)
		}
		for body, want := range map[string]string{
			`{"logo_url":"https://cdn.example/logo.png"}`: `"field":"logo_url"`,
			`{"website":"http://acme.example"}`:           `"field":"website"`,
			`{"website":"javascript:alert(1)"}`:           `"field":"website"`,
			`{"website":"acme.example"}`:                  `"field":"website"`,
		} {
			res, got := e.call("PATCH", "/api/v1/settings", body)
			if res.StatusCode != 400 || !strings.Contains(string(got), want) {
				t.Errorf("PATCH %s: %d %s", body, res.StatusCode, got)
			}
			if strings.Contains(body, "logo_url") && !strings.Contains(string(got), "send the image, in base64, as logo") {
				t.Errorf("the logo_url error does not say how to change the logo: %s", got)
			}
		}
		if _, after := e.call("GET", "/api/v1/settings", ""); string(after) != string(whole) {
			t.Fatalf("a refused change was stored:\n%s\n%s", after, whole)
		}

		// The public pages link to the website by the organisation's name.
		if _, body := e.page("GET", e.srv.URL+"/u/sent", "en"); !strings.Contains(body, `<a href="https://acme.example/about" id="operator-website">Acme Ltd</a>`) {
			t.Fatalf("public page header: %s", body)
		}
		// The email footer names it.
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"ada@example.com"}`, 201, &c)
		e.api("POST", "/api/v1/double-opt-in", `{"contact_ids":["`+c.ID+`"]}`, 200, nil)
		msg := e.smtp.Wait(t, 1)[0]
		if !strings.Contains(strings.ReplaceAll(msg.Text, "\r\n", "\n"), "Sent by Acme Ltd.\nhttps://acme.example/about\n") {
			t.Fatalf("email footer: %s", msg.Text)
		}
		if !strings.Contains(msg.HTML, `<a href="https://acme.example/about">https://acme.example/about</a>`) {
			t.Fatalf("email footer (HTML): %s", msg.HTML)
		}

		// The settings page: a refused address stays as typed; a good one
		// is saved, and an empty one removes it.
		admin := e.firstAdmin()
		code, body := admin.postMultipart(e.srv.URL+"/admin/settings/organisation", map[string]string{"organisation_name": "Acme Ltd", "website": "ftp://acme.example"}, nil)
		if code != 400 || !strings.Contains(body, `id="website-error"`) || !strings.Contains(body, `value="ftp://acme.example"`) {
			t.Fatalf("a refused website: %d %s", code, body)
		}
		admin.postMultipart(e.srv.URL+"/admin/settings/organisation", map[string]string{"organisation_name": "Acme Ltd", "website": "https://acme.example"}, nil)
		var st struct{ Website string }
		e.api("GET", "/api/v1/settings", "", 200, &st)
		if st.Website != "https://acme.example" {
			t.Fatalf("website after the settings page: %q", st.Website)
		}
	})
}
