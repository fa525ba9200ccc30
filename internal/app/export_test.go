package app_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// download fetches a file from the API as e's token, and checks that it
// comes as an attachment of the content type.
func (e *env) download(path, contentType string) []byte {
	e.t.Helper()
	res, b := e.call("GET", path, "")
	checkAttachment(e.t, res, contentType, b)
	return b
}

func checkAttachment(t testing.TB, res *http.Response, contentType string, body []byte) {
	t.Helper()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != contentType {
		t.Fatalf("%s: %d %s: %.300s", res.Request.URL.Path, res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	disp, params, err := mime.ParseMediaType(res.Header.Get("Content-Disposition"))
	if err != nil || disp != "attachment" || !regexp.MustCompile(`^consentry-export-[0-9a-f-]+-\d{8}-\d{6}\.(json|csv\.zip|xlsx)$`).MatchString(params["filename"]) {
		t.Fatalf("Content-Disposition %q", res.Header.Get("Content-Disposition"))
	}
}

type exported struct {
	Schema string
	Masked bool
	Fields []struct {
		Name, Value string
		Masked      bool
	}
	ConsentHistory []struct{ Purpose, State string } `json:"consent_history"`
	AccessLog      []struct {
		ActorKind string `json:"actor_kind"`
		Field     string
	} `json:"access_log"`
	Requests []struct{ Kind, Channel, Status string }
}

func (x exported) field(name string) string {
	for _, f := range x.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// TestExportOverTheAPI: the export is a file in each format, masked for a
// token without the reveal scope, in the clear and logged for one with it;
// a bad format names the field, and the OpenAPI document describes the
// files.
func TestExportOverTheAPI(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		c := cardOnFile(e, "exp@example.com", "granted")
		var masked exported
		if err := json.Unmarshal(e.download("/api/v1/contacts/"+c.ID+"/export", "application/json"), &masked); err != nil {
			t.Fatal(err)
		}
		if masked.Schema != "consentry.export/1" || !masked.Masked || masked.field("card_number") != "••••••••••••1111" ||
			len(masked.ConsentHistory) != 1 || masked.ConsentHistory[0].Purpose != "Card on file" {
			t.Fatalf("masked export: %+v", masked)
		}
		if n := accessEntries(e, "contact="+c.ID+"&field=card_number"); n != 0 {
			t.Fatalf("a masked export logged %d reveals", n)
		}
		billing := e.revealer()
		var clear exported
		json.Unmarshal(billing.download("/api/v1/contacts/"+c.ID+"/export?format=json", "application/json"), &clear)
		if clear.Masked || clear.field("card_number") != "4111111111111111" {
			t.Fatalf("clear export: %+v", clear)
		}
		if n := accessEntries(e, "contact="+c.ID+"&field=card_number"); n != 1 {
			t.Fatalf("a clear export logged %d reveals", n)
		}
		if n := accessEntries(e, "contact="+c.ID+"&field=(export)"); n != 2 {
			t.Fatalf("%d exports logged, want 2", n)
		}
		z := e.download("/api/v1/contacts/"+c.ID+"/export?format=csv", "application/zip")
		zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
		if err != nil || len(zr.File) != 13 || zr.File[0].Name != "about.csv" {
			t.Fatalf("csv zip: %v", err)
		}
		x := billing.download("/api/v1/contacts/"+c.ID+"/export?format=xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
		f, err := excelize.OpenReader(bytes.NewReader(x))
		if err != nil {
			t.Fatal(err)
		}
		rows, _ := f.GetRows("fields")
		if len(rows) != 2 || rows[1][0] != "card_number" || rows[1][5] != "4111111111111111" {
			t.Fatalf("fields sheet: %v", rows)
		}
		f.Close()

		var bad struct{ Error struct{ Field string } }
		e.api("GET", "/api/v1/contacts/"+c.ID+"/export?format=pdf", "", 400, &bad)
		if bad.Error.Field != "format" {
			t.Fatalf("bad format: %+v", bad)
		}
		e.api("GET", "/api/v1/contacts/no-such-contact/export", "", 404, nil)
		var doc struct {
			Paths map[string]map[string]struct {
				Responses map[string]struct{ Content map[string]any }
			}
		}
		e.api("GET", "/api/openapi.json", "", 200, &doc)
		content := doc.Paths["/api/v1/contacts/{id}/export"]["get"].Responses["200"].Content
		for _, media := range []string{"application/json", "application/zip", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"} {
			if content[media] == nil {
				t.Fatalf("the OpenAPI document lacks %s: %v", media, content)
			}
		}
	})
}

var exportLinkRE = regexp.MustCompile(`/p/export/[A-Za-z0-9_-]{43}`)

// TestDownloadMyData follows "Download my data" on the preferences page:
// the button records a verified access request and emails a link over
// SMTP; the link opens a page that changes nothing; its buttons download
// the contact's own data in the clear, logged as seen by the contact, and
// the request is done. Asking too often is refused, a wrong link shows
// the one neutral page, and no token reaches the log.
func TestDownloadMyData(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		id, link := pageSetUp(e)
		v := e.visitor()
		if _, body := v.get(link); !strings.Contains(body, "Email me a download link") {
			t.Fatalf("the page offers no download:\n%s", body)
		}
		code, body := v.post(e.srv.URL+"/p/export", url.Values{})
		if code != 200 || v.last.Request.URL.Path != "/p/export/sent" || !strings.Contains(body, "link to download your data") {
			t.Fatalf("asking: %d at %s: %s", code, v.last.Request.URL, body)
		}
		if n := count(t, db, `SELECT count(*) FROM subject_requests WHERE contact_id = $1 AND kind = 'access' AND channel = 'preferences_page'
			AND status = 'verified'`, id); n != 1 {
			t.Fatalf("%d verified access requests", n)
		}
		msg := e.smtp.Wait(t, 1)[0]
		path := exportLinkRE.FindString(msg.Text)
		if msg.To[0] != "lena@example.com" || path == "" || msg.Subject != "Your data: the download link" {
			t.Fatalf("email: %v %q %s", msg.To, msg.Subject, msg.Text)
		}
		dl := e.srv.URL + path

		code, body = e.page("GET", dl, "en")
		if code != 200 || !strings.Contains(body, `id="download-xlsx"`) || !strings.Contains(body, "keep it somewhere safe") {
			t.Fatalf("download page: %d %s", code, body)
		}
		if n := count(t, db, `SELECT count(*) FROM access_log WHERE contact_id = $1`, id); n != 0 {
			t.Fatalf("opening the link logged %d entries", n)
		}

		browser := e.visitor()
		res, b := browser.press(dl, url.Values{"format": {"json"}})
		checkAttachment(t, res, "application/json", b)
		var own exported
		if err := json.Unmarshal(b, &own); err != nil {
			t.Fatal(err)
		}
		if own.Masked || own.field("card_number") != "4111111111111111" || len(own.Requests) != 1 {
			t.Fatalf("own export: %+v", own)
		}
		if n := count(t, db, `SELECT count(*) FROM access_log WHERE contact_id = $1 AND actor_kind = 'contact' AND actor_id = $1
			AND field IN ('card_number', '(export)') AND ip = '127.0.0.1'`, id); n != 2 {
			t.Fatalf("the contact's own export logged %d entries", n)
		}
		if n := count(t, db, `SELECT count(*) FROM subject_requests WHERE contact_id = $1 AND status = 'done' AND closed_at IS NOT NULL`, id); n != 1 {
			t.Fatal("the access request is not done")
		}
		// The link works again, for another format, until it expires.
		res, b = browser.press(dl, url.Values{"format": {"xlsx"}})
		checkAttachment(t, res, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", b)

		if _, body := e.page("GET", e.srv.URL+"/p/export/"+strings.Repeat("A", 43), "en"); !strings.Contains(body, "This link cannot be used") {
			t.Fatalf("a wrong link: %s", body)
		}
		res, b = browser.press(e.srv.URL+"/p/export/"+strings.Repeat("A", 43), url.Values{"format": {"json"}})
		if res.Header.Get("Content-Disposition") != "" || !strings.Contains(string(b), "This link cannot be used") {
			t.Fatalf("a wrong link downloaded: %s", b)
		}
		// A second ask reuses the open request, if any, and sends a new
		// link; past three an hour, the page says to use the newest.
		v.post(e.srv.URL+"/p/export", url.Values{})
		v.post(e.srv.URL+"/p/export", url.Values{})
		code, body = v.post(e.srv.URL+"/p/export", url.Values{})
		if code != http.StatusTooManyRequests || !strings.Contains(body, "use the newest one") {
			t.Fatalf("a fourth ask: %d %s", code, body)
		}
		e.smtp.Wait(t, 3)
		if n := count(t, db, `SELECT count(*) FROM subject_requests WHERE contact_id = $1 AND kind = 'access'`, id); n != 2 {
			t.Fatalf("%d access requests after asking again", n)
		}
		e.ledgerVerifies()
		if strings.Contains(e.log.String(), path[len("/p/export/"):]) {
			t.Fatal("the log holds a download token")
		}
	})
}

// press posts a download button's form, as a browser does, and returns
// the answer (its body read) and the body.
func (v *visitor) press(u string, form url.Values) (*http.Response, []byte) {
	v.e.t.Helper()
	_, body := v.post(u, form)
	return v.last, []byte(body)
}

// TestAdminDownload: the record offers the download; a user who may
// reveal gets clear values, one who may not gets them masked, and the
// page says which.
func TestAdminDownload(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		c := cardOnFile(e, "rec@example.com", "granted")
		agent := e.signIn(admin, "agent@acme.example", "agent")
		for _, x := range []struct {
			who             *visitor
			note, wantValue string
		}{
			{admin, "Sensitive values are in the clear", "4111111111111111"},
			{agent, "Sensitive values are masked: your role may not reveal them.", "••••••••••••1111"},
		} {
			_, body := x.who.get(e.srv.URL + "/admin/contacts/" + c.ID)
			if !strings.Contains(body, x.note) || !strings.Contains(body, `id="export-xlsx"`) {
				t.Fatalf("record page lacks %q:\n%s", x.note, body)
			}
			res, b := x.who.press(e.srv.URL+"/admin/contacts/"+c.ID+"/export", url.Values{"format": {"json"}})
			checkAttachment(t, res, "application/json", b)
			var got exported
			json.Unmarshal(b, &got)
			if got.field("card_number") != x.wantValue {
				t.Fatalf("%s: card_number %q", x.note, got.field("card_number"))
			}
		}
		if n := count(t, db, `SELECT count(*) FROM access_log WHERE contact_id = $1 AND field = 'card_number'`, c.ID); n != 1 {
			t.Fatalf("%d reveals logged, want the admin's one", n)
		}
		res, _ := admin.press(e.srv.URL+"/admin/contacts/"+c.ID+"/export", url.Values{"format": {"doc"}})
		if res.StatusCode != 400 {
			t.Fatalf("a bad format: %d", res.StatusCode)
		}
	})
}
