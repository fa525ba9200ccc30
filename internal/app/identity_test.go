package app_test

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// preferencesLinkIn is the preferences page link in the right-to-be-informed
// email m; the test fails when it has none.
func (e *env) preferencesLinkIn(m mailtest.Message) string {
	e.t.Helper()
	for _, l := range m.Links() {
		if strings.HasPrefix(l, e.srv.URL+"/p/") {
			return l
		}
	}
	e.t.Fatal("the right-to-be-informed email has no preferences link")
	return ""
}

// logoPNG is a small PNG image for the operator's logo.
func logoPNG(t testing.TB) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 40, 20))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// logoFile writes data to a file for a browser to upload.
func logoFile(t testing.TB, name string, data []byte) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOperatorIdentityInEmail: with no identity set, email names the
// server's sender and has no empty lines for what is missing; once the
// operator's identity is set through the API, the right-to-be-informed
// email, received over SMTP, comes from the organisation and names it as
// the controller with its postal address and privacy contact, and so does
// the footer of the double opt-in email. The logo set with it is served
// from /logo with its type, nosniff and an ETag; one that is an SVG is
// refused by name, changing nothing.
func TestOperatorIdentityInEmail(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		e.api("PATCH", "/api/v1/settings", `{"right_to_be_informed":true}`, 200, nil)
		e.api("POST", "/api/v1/contacts", `{"email":"ola@example.com","first_name":"Ola"}`, 201, nil)
		crlf := strings.NewReplacer("\r\n", "\n")
		plain := e.smtp.Wait(t, 1)[0]
		plain.Text = crlf.Replace(plain.Text)
		if !strings.Contains(plain.Text, "Acme has registered your details") || !strings.Contains(plain.Text, "Acme is responsible for your data (the controller).") ||
			!strings.Contains(plain.Text, "-- \nSent by Acme.\n") || strings.Contains(plain.Text, "Privacy contact") || strings.Contains(plain.Text, "\n\n\n") {
			t.Fatalf("with no identity set: %q", plain.Text)
		}

		logo := logoPNG(t)
		svg := base64.StdEncoding.EncodeToString([]byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`))
		res, body := e.call("PATCH", "/api/v1/settings", `{"organisation_name":"Nope","logo":"`+svg+`"}`)
		if res.StatusCode != 400 || !strings.Contains(string(body), `"field":"logo"`) {
			t.Fatalf("an SVG logo: %d %s", res.StatusCode, body)
		}
		var st struct {
			OrganisationName string `json:"organisation_name"`
			PostalAddress    string `json:"postal_address"`
			LogoURL          string `json:"logo_url"`
		}
		e.api("PATCH", "/api/v1/settings", `{"organisation_name":"Acme Ltd","postal_address":"1 Main Street\n123 45 Smalltown",
			"privacy_contact_name":"Dana Protector","privacy_address":"dpo@acme.example","logo":"`+base64.StdEncoding.EncodeToString(logo)+`"}`, 200, &st)
		if st.OrganisationName != "Acme Ltd" || st.PostalAddress != "1 Main Street\n123 45 Smalltown" || !strings.HasPrefix(st.LogoURL, "/logo?v=") {
			t.Fatalf("settings: %+v", st)
		}

		e.api("POST", "/api/v1/contacts", `{"email":"eva@example.com","first_name":"Eva"}`, 201, nil)
		m := e.smtp.Wait(t, 2)[1]
		m.Text, m.HTML = crlf.Replace(m.Text), crlf.Replace(m.HTML)
		if m.Header.Get("From") != `"Acme Ltd" <privacy@acme.example>` {
			t.Fatalf("From: %s", m.Header.Get("From"))
		}
		for _, part := range []string{m.Text, m.HTML} {
			for _, want := range []string{"Acme Ltd has registered your details", "Acme Ltd is responsible for your data (the controller).",
				"1 Main Street\n123 45 Smalltown", "contact Dana Protector &lt;dpo@acme.example&gt;.", "Privacy contact: Dana Protector &lt;dpo@acme.example&gt;"} {
				if part == m.Text {
					want = strings.ReplaceAll(strings.ReplaceAll(want, "&lt;", "<"), "&gt;", ">")
				}
				if !strings.Contains(part, want) {
					t.Errorf("the right-to-be-informed email does not say %q:\n%s", want, part)
				}
			}
		}

		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"ida@example.com","first_name":"Ida"}`, 201, &c)
		e.smtp.Wait(t, 3)
		e.api("POST", "/api/v1/double-opt-in", `{"contact_ids":["`+c.ID+`"]}`, 200, nil)
		doi := e.smtp.Wait(t, 4)[3]
		doi.Text = crlf.Replace(doi.Text)
		if !strings.Contains(doi.Text, "-- \nSent by Acme Ltd.\n1 Main Street\n123 45 Smalltown\nPrivacy contact: Dana Protector <dpo@acme.example>") ||
			!strings.Contains(doi.Header.Get("From"), "Acme Ltd") {
			t.Fatalf("double opt-in email: %s\n%s", doi.Header.Get("From"), doi.Text)
		}

		get := func(path string, header ...string) (*http.Response, []byte) {
			req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var b bytes.Buffer
			b.ReadFrom(res.Body)
			return res, b.Bytes()
		}
		res, got := get(st.LogoURL)
		etag := res.Header.Get("ETag")
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/png" || res.Header.Get("X-Content-Type-Options") != "nosniff" ||
			etag == "" || !bytes.Equal(got, logo) || !strings.Contains(res.Header.Get("Cache-Control"), "max-age") {
			t.Fatalf("logo: %d %v", res.StatusCode, res.Header)
		}
		if res, _ := get("/logo", "If-None-Match", etag); res.StatusCode != http.StatusNotModified || res.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("logo revalidated: %d %v", res.StatusCode, res.Header)
		}
		e.api("PATCH", "/api/v1/settings", `{"logo":""}`, 200, &st)
		if res, _ := get("/logo"); res.StatusCode != 404 || st.LogoURL != "" {
			t.Fatalf("a removed logo: %d %q", res.StatusCode, st.LogoURL)
		}
	})
}

// postMultipart posts fields and a file named logo as the organisation
// form does, with v's cookies, and returns the status and body.
func (v *visitor) postMultipart(u string, fields map[string]string, logo []byte) (int, string) {
	v.e.t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, val := range fields {
		w.WriteField(k, val)
	}
	if logo != nil {
		f, _ := w.CreateFormFile("logo", "logo.png")
		f.Write(logo)
	}
	w.Close()
	req, _ := http.NewRequest("POST", u, &b)
	req.Header.Set("Content-Type", w.FormDataContentType())
	res, err := v.client.Do(req)
	if err != nil {
		v.e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// TestOrganisationFormRefusals: the organisation form refuses a logo over
// 256 KiB (a little over, and far over the form's own limit), and a bad
// privacy address with a good logo, each next to its field, keeping what
// was typed and saving nothing, the logo included.
func TestOrganisationFormRefusals(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		logo := logoPNG(t)
		form := e.srv.URL + "/admin/settings/organisation"
		fields := map[string]string{"organisation_name": "Acme Ltd", "privacy_address": "dpo@acme.example"}
		big := append(append([]byte{}, logo...), make([]byte, 300<<10)...)
		for _, c := range []struct {
			name  string
			logo  []byte
			field string
			code  int
			msg   string
		}{
			{"a logo a little over the limit", big, "logo", 400, "must be at most 256 KiB"},
			{"a logo far over the form's limit", make([]byte, 5<<20), "logo", 413, "must be at most 256 KiB"},
			{"a bad privacy address", logo, "privacy_address", 400, "must be a plain email address"},
		} {
			f := fields
			if c.field == "privacy_address" {
				f = map[string]string{"organisation_name": "Acme Ltd", "privacy_address": "dpo at acme"}
			}
			code, body := admin.postMultipart(form, f, c.logo)
			if code != c.code || !strings.Contains(body, `id="`+c.field+`-error"`) || !strings.Contains(body, c.msg) {
				t.Fatalf("%s: %d %s", c.name, code, body)
			}
			if c.code == 400 && !strings.Contains(body, `id="organisation_name" name="organisation_name" value="Acme Ltd"`) {
				t.Errorf("%s: the name typed is not kept", c.name)
			}
			var st struct {
				OrganisationName string `json:"organisation_name"`
				PrivacyAddress   string `json:"privacy_address"`
				LogoURL          string `json:"logo_url"`
			}
			e.api("GET", "/api/v1/settings", "", 200, &st)
			if st.OrganisationName != "" || st.PrivacyAddress != "" || st.LogoURL != "" {
				t.Fatalf("%s: saved %+v", c.name, st)
			}
			if code, _ := e.page("GET", e.srv.URL+"/logo", ""); code != 404 {
				t.Fatalf("%s: a logo is served", c.name)
			}
		}
		if code, body := admin.postMultipart(form, fields, logo); code != 200 || !strings.Contains(body, "Your organisation saved.") || !strings.Contains(body, `class="logo-preview"`) {
			t.Fatalf("saving: %d %s", code, body)
		}
	})
}
