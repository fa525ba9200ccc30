package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// upload sends body to POST /api/v1/imports with contentType.
func (e *env) upload(t testing.TB, path, contentType string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+e.token)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// An import through the API: a raw upload is read and suggested a
// mapping; a definition without provenance is refused by its field; the
// preview and the import write each row as the definition says, and the
// report lists the row that failed. A multipart upload with a definition
// starts at once.
func TestImportsThroughTheAPI(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		file := "E-mail,Voornaam,Nieuwsbrief\nanna@example.com,Anna,ja\nnot-an-address,Bo,nee\ncarl@example.com,Carl,nee\n"
		r := e.upload(t, "/api/v1/imports?name=leads.csv", "text/csv", strings.NewReader(file))
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
		imp := decodeAs[imports.Import](t, r.body)
		if imp.TotalRows != 3 || imp.Delimiter != "," || imp.FileName != "leads.csv" {
			t.Fatalf("upload: %+v", imp)
		}
		sugg := decodeAs[[]imports.Column](t, e.get(t, "/api/v1/imports/"+imp.ID+"/suggestion"))
		if len(sugg) != 3 || sugg[0].Field != "email" || sugg[1].Field != "first_name" || sugg[2].Field != "" {
			t.Fatalf("suggestion: %+v", sugg)
		}
		noBasis := `{"source":"API","columns":[{"column":"E-mail","field":"email"},{"column":"Voornaam","field":"first_name"}],
			"consents":[{"purpose":"E-marketing","column":"Nieuwsbrief","collected_at":"2026-11-01","text_version":1}]}`
		r = e.do(t, "POST", "/api/v1/imports/"+imp.ID+"/start", noBasis, "")
		if r.status != 400 {
			t.Fatalf("start without a legal basis: %d %s", r.status, r.body)
		}
		checkError(t, r, "invalid", "consents[0].legal_basis")
		def := strings.Replace(noBasis, `"collected_at"`, `"legal_basis":"consent","collected_at"`, 1)
		if r := e.do(t, "POST", "/api/v1/imports/nope/preview", def, ""); r.status != 404 {
			t.Fatalf("preview of an import that does not exist: %d %s", r.status, r.body)
		}
		// A source, purpose or list that does not exist is the
		// definition's fault, named by its field: the import exists.
		for field, bad := range map[string]string{
			"source":              strings.Replace(def, `"source":"API"`, `"source":"Nope"`, 1),
			"consents[0].purpose": strings.Replace(def, `"purpose":"E-marketing"`, `"purpose":"Nope"`, 1),
			"lists[0].list":       strings.Replace(def, `"consents"`, `"lists":[{"list":"Nope"}],"consents"`, 1),
		} {
			for _, action := range []string{"preview", "start", "dry-run"} {
				r := e.do(t, "POST", "/api/v1/imports/"+imp.ID+"/"+action, bad, "")
				var got struct{ Error struct{ Code, Field string } }
				if err := json.Unmarshal(r.body, &got); err != nil || r.status != 422 || got.Error.Field != field {
					t.Fatalf("%s naming an unknown %s: %d %s", action, field, r.status, r.body)
				}
			}
		}
		preview := decodeAs[[]imports.PreviewRow](t, e.do(t, "POST", "/api/v1/imports/"+imp.ID+"/preview?rows=2", def, "").body)
		if len(preview) != 2 || preview[0].Fields["first_name"] != "Anna" || len(preview[0].Consents) != 1 ||
			preview[1].Error == nil || preview[1].Error.Field != "email" {
			t.Fatalf("preview: %+v", preview)
		}
		if r = e.do(t, "POST", "/api/v1/imports/"+imp.ID+"/start", def, ""); r.status != 202 {
			t.Fatalf("start: %d %s", r.status, r.body)
		}
		runJobs(t, e)
		imp = decodeAs[imports.Import](t, e.get(t, "/api/v1/imports/"+imp.ID))
		if imp.Status != imports.StatusDone || imp.Created != 2 || imp.Failed != 1 {
			t.Fatalf("after the import: %+v", imp)
		}
		r = e.do(t, "GET", "/api/v1/imports/"+imp.ID+"/report", "", "")
		recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
		if err != nil || r.status != 200 || len(recs) != 2 || recs[1][0] != "3" || recs[1][5] != "not-an-address" ||
			!strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("report: %d %q %v", r.status, recs, err)
		}
		if r = e.do(t, "POST", "/api/v1/imports/"+imp.ID+"/start", def, ""); r.status != 409 {
			t.Fatalf("starting twice: %d %s", r.status, r.body)
		}

		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("file", "more.csv")
		io.WriteString(fw, "E-mail,Voornaam,Nieuwsbrief\ndora@example.com,Dora,ja\n")
		mw.WriteField("definition", def)
		mw.Close()
		r = e.upload(t, "/api/v1/imports", mw.FormDataContentType(), &body)
		if r.status != 201 {
			t.Fatalf("multipart: %d %s", r.status, r.body)
		}
		if got := decodeAs[imports.Import](t, r.body); got.Status != imports.StatusQueued || got.FileName != "more.csv" {
			t.Fatalf("multipart: %+v", got)
		}
		runJobs(t, e)
		if n := len(decodeAs[[]imports.Import](t, e.get(t, "/api/v1/imports"))); n != 2 {
			t.Fatalf("%d imports listed", n)
		}
		// A file that cannot be read is refused, naming the file.
		r = e.upload(t, "/api/v1/imports", "text/csv", strings.NewReader("E-mail\n"))
		if r.status != 400 {
			t.Fatalf("header only: %d %s", r.status, r.body)
		}
		checkError(t, r, "invalid", "file")

		// A multipart upload refused after its file arrived keeps nothing:
		// a definition that does not hold, a bad dry_run, a second file, a
		// part it does not take.
		for _, c := range []struct {
			field string
			parts func(mw *multipart.Writer)
		}{
			{"source", func(mw *multipart.Writer) {
				mw.WriteField("definition", `{"columns":[{"column":"E-mail","field":"email"}]}`)
			}},
			{"dry_run", func(mw *multipart.Writer) { mw.WriteField("dry_run", "maybe") }},
			{"file", func(mw *multipart.Writer) {
				fw, _ := mw.CreateFormFile("file", "again.csv")
				io.WriteString(fw, "E-mail\nx@example.com\n")
			}},
			{"color", func(mw *multipart.Writer) { mw.WriteField("color", "blue") }},
		} {
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			fw, _ := mw.CreateFormFile("file", "refused.csv")
			io.WriteString(fw, "E-mail,Voornaam,Nieuwsbrief\nerik@example.com,Erik,ja\n")
			c.parts(mw)
			mw.Close()
			r = e.upload(t, "/api/v1/imports", mw.FormDataContentType(), &body)
			if r.status < 400 || r.status > 499 {
				t.Fatalf("refused on %s: %d %s", c.field, r.status, r.body)
			}
			var got struct{ Error struct{ Field string } }
			if err := json.Unmarshal(r.body, &got); err != nil || got.Error.Field != c.field {
				t.Fatalf("refused on %s names %q: %s", c.field, got.Error.Field, r.body)
			}
			if n := len(decodeAs[[]imports.Import](t, e.get(t, "/api/v1/imports"))); n != 2 {
				t.Fatalf("refused on %s, the upload was kept: %d imports listed", c.field, n)
			}
		}
		var chunks int
		if err := db.Read.QueryRow(`SELECT count(*) FROM import_file_chunks`).Scan(&chunks); err != nil || chunks != 0 {
			t.Fatalf("%d file chunks kept: %v", chunks, err)
		}
	})
}

func runJobs(t testing.TB, e *env) {
	t.Helper()
	for range 100 {
		n, err := e.a.Jobs.RunDue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("jobs never ran out")
}

// A saved mapping is checked as a start checks its definition, but for
// the file's columns: a definition that no import could start with is
// refused naming its field, and writes nothing.
func TestSavedMappingsAreChecked(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		good := `{"source":"API","columns":[{"column":"E-mail","field":"email"}],
			"consents":[{"purpose":"E-marketing","column":"Nieuwsbrief","legal_basis":"consent","collected_at":"2026-11-01","text_version":1}]}`
		for field, def := range map[string]string{
			"definition.source":                  strings.Replace(good, `"source":"API",`, ``, 1),
			"definition.opt_in_status.value":     strings.Replace(good, `"columns"`, `"opt_in_status":{"value":"double_opt_in"},"columns"`, 1),
			"definition.consents[0].legal_basis": strings.Replace(good, `"legal_basis":"consent",`, ``, 1),
			"definition.consents[0].purpose":     strings.Replace(good, `"E-marketing"`, `"Nope"`, 1),
			"definition.columns":                 strings.Replace(good, `"field":"email"`, `"field":"first_name"`, 1),
		} {
			r := e.do(t, "POST", "/api/v1/import-mappings", `{"name":"Fair","definition":`+def+`}`, "")
			var got struct{ Error struct{ Field string } }
			if err := json.Unmarshal(r.body, &got); err != nil || r.status < 400 || r.status > 499 || got.Error.Field != field {
				t.Fatalf("saving a mapping refused on %s: %d %s", field, r.status, r.body)
			}
		}
		if n := len(decodeAs[[]imports.Mapping](t, e.get(t, "/api/v1/import-mappings"))); n != 0 {
			t.Fatalf("refused mappings were saved: %d", n)
		}
		if r := e.do(t, "POST", "/api/v1/import-mappings", `{"name":"Fair","definition":`+good+`}`, ""); r.status != 200 {
			t.Fatalf("saving a good mapping: %d %s", r.status, r.body)
		}
		r := e.do(t, "DELETE", "/api/v1/import-mappings/nope", "", "")
		var got struct{ Error struct{ Code string } }
		if json.Unmarshal(r.body, &got); r.status != 404 || got.Error.Code != "import_mapping_not_found" {
			t.Fatalf("deleting a mapping that does not exist: %d %s", r.status, r.body)
		}
	})
}
