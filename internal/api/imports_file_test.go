package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"strings"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"

	"github.com/consentry/consentry/internal/api"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// encode is text in enc, after bom.
func encode(t testing.TB, text string, enc encoding.Encoding, bom string) string {
	t.Helper()
	b, err := enc.NewEncoder().String(text)
	if err != nil {
		t.Fatal(err)
	}
	return bom + b
}

// An upload reports the encoding its whole file was read in: plain ASCII
// is UTF-8, a byte order mark is told apart, Latin-1 reads as
// Windows-1252, and a file whose first 64 KiB are ASCII is told by its
// later rows. Each short file's names read as written.
func TestImportReportsTheEncoding(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		const text = "E-post;Förnamn;Anteckning\r\nanna@example.com;Åsa;café “Öst” – don’t pay €5\r\n"
		asciiStart := "E-post;Fornamn;Anteckning\r\n" + strings.Repeat("someone@example.com;Someone;x\r\n", 2500)
		for _, tc := range []struct {
			name, file, encoding, header, cell string
		}{
			{"ASCII", "Email;Name;Note\nanna@example.com;Anna;plain\n", "utf-8", "Name", "plain"},
			{"UTF-8", text, "utf-8", "Förnamn", "café “Öst” – don’t pay €5"},
			{"UTF-8 with a byte order mark", "\xEF\xBB\xBF" + text, "utf-8-bom", "Förnamn", "café “Öst” – don’t pay €5"},
			{"UTF-8 with a byte order mark, ASCII", "\xEF\xBB\xBFEmail;Name;Note\nanna@example.com;Anna;plain\n", "utf-8-bom", "Name", "plain"},
			{"UTF-16 little endian", encode(t, text, unicode.UTF16(unicode.LittleEndian, unicode.UseBOM), ""), "utf-16le", "Förnamn", "café “Öst” – don’t pay €5"},
			{"UTF-16 big endian", encode(t, text, unicode.UTF16(unicode.BigEndian, unicode.UseBOM), ""), "utf-16be", "Förnamn", "café “Öst” – don’t pay €5"},
			// € and the smart quotes and dash are bytes 0x80 to 0x9F.
			{"Windows-1252", encode(t, text, charmap.Windows1252, ""), "windows-1252", "Förnamn", "café “Öst” – don’t pay €5"},
			{"Latin-1", encode(t, "E-post;Förnamn;Anteckning\nanna@example.com;Åsa;Öberg, ä och å\n", charmap.ISO8859_1, ""), "windows-1252", "Förnamn", "Öberg, ä och å"},
			{"ASCII, then Windows-1252", asciiStart + encode(t, "bo@example.com;Bo;Müller €\r\n", charmap.Windows1252, ""), "windows-1252", "Fornamn", ""},
			{"ASCII, then UTF-8", asciiStart + "bo@example.com;Bo;Müller €\r\n", "utf-8", "Fornamn", ""},
		} {
			r := e.upload(t, "/api/v1/imports?name=enc.csv", "text/csv", strings.NewReader(tc.file))
			if r.status != 201 {
				t.Fatalf("%s: upload %d %s", tc.name, r.status, r.body)
			}
			var got map[string]any
			json.Unmarshal(r.body, &got)
			imp := decodeAs[imports.Import](t, r.body)
			if got["encoding"] != tc.encoding || len(imp.Header) != 3 || imp.Header[1] != tc.header {
				t.Errorf("%s: encoding %v, header %q; want %s, %q", tc.name, got["encoding"], imp.Header, tc.encoding, tc.header)
			}
			if again := decodeAs[imports.Import](t, e.get(t, "/api/v1/imports/"+imp.ID)); again.Encoding != tc.encoding {
				t.Errorf("%s: GET says encoding %q; want %s", tc.name, again.Encoding, tc.encoding)
			}
			if tc.cell == "" {
				continue
			}
			// The last row reads as written.
			def := fmt.Sprintf(`{"source":"API","columns":[{"column":%q,"field":"email"},{"column":%q,"field":"first_name"}]}`, imp.Header[0], imp.Header[2])
			rows := decodeAs[[]imports.PreviewRow](t, e.do(t, "POST", "/api/v1/imports/"+imp.ID+"/preview?rows=100", def, "").body)
			if last := rows[len(rows)-1]; last.Error != nil || last.Fields["first_name"] != tc.cell {
				t.Errorf("%s: the last row reads %+v; want %q", tc.name, last, tc.cell)
			}
		}
	})
}

// fileRefusal is the error body of a refused upload.
type fileRefusal struct {
	Error struct {
		Code, Message, Field string
		Row                  int
		Byte                 int64
	}
}

// A file that cannot be read is refused naming the file, the row where
// the problem is (and its byte, where the encoding is decided) and the
// reason, and nothing of it is kept: a header and no rows, a file in an
// encoding that is not read (UTF-32, UTF-16 without its byte order mark),
// bytes that are text in no supported encoding, a binary file.
func TestImportRefusalsNameTheRow(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		utf16NoBOM := encode(t, "E-post;Namn\r\nanna@example.com;Åsa\r\n", unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), "")
		asciiStart := "E-post;Namn\n" + strings.Repeat("someone@example.com;Someone\n", 3000)
		utf8Start := "E-post;Namn\n" + strings.Repeat("åsa@example.com;Åsa\n", 5000)
		for _, tc := range []struct {
			name, file, code string
			row              int
			byte             int64
			says             string
		}{
			{"a header and no rows", "E-post;Namn\r\n", "invalid", 1, 0, "row 1: the file has a header and no rows of data after it"},
			{"a header after blank lines and no rows", "\n;\nE-post;Namn\n\n;\n", "invalid", 3, 0, "row 3: the file has a header and no rows"},
			{"UTF-32", encode(t, "E-post;Namn\n", unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), "\xFF\xFE\x00\x00"), "unsupported_encoding", 1, 1,
				"row 1, byte 1: the file begins with the byte order mark of UTF-32"},
			{"UTF-16 without a byte order mark", utf16NoBOM, "unsupported_encoding", 1, 2, "row 1, byte 2: the file holds a NUL byte"},
			{"a binary file", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "unsupported_encoding", 3, 9, "row 3, byte 9: the file holds a NUL byte"},
			{"bytes of no encoding", "E-post;Namn\nanna@example.com;\xc5sa\nbo@example.com;B\x81rje\n", "unsupported_encoding", 3, 50,
				"row 3, byte 50: the byte 0x81 is a character in none of the supported encodings: the file is not UTF-8 (row 2, byte 30 is not valid UTF-8)"},
			{"bytes of no encoding after the first 64 KiB", asciiStart + "bo@example.com;B\x81rje\n", "invalid_text", 3002, 0,
				"row 3002: it holds a byte that is text neither in UTF-8 nor in Windows-1252"},
			{"Windows-1252 after UTF-8", utf8Start + "bo@example.com;B\xf6rje\n", "invalid_text", 5002, 0, "row 5002: it is not valid UTF-8 text"},
			{"a NUL byte after the first 64 KiB", asciiStart + "bo@example.com;B\x00rje\n", "invalid_text", 3002, 0, "row 3002: it holds a NUL character"},
		} {
			r := e.upload(t, "/api/v1/imports?name=bad.csv", "text/csv", strings.NewReader(tc.file))
			got := decodeAs[fileRefusal](t, r.body)
			if r.status != 400 || got.Error.Code != tc.code || got.Error.Field != "file" || got.Error.Row != tc.row || got.Error.Byte != tc.byte ||
				!strings.Contains(got.Error.Message, tc.says) {
				t.Errorf("%s: %d %s; want 400 %s on file, row %d, byte %d, saying %q", tc.name, r.status, r.body, tc.code, tc.row, tc.byte, tc.says)
			}
			checkError(t, r, tc.code, "file")
		}
		// A multipart upload is refused the same way.
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("file", "header.csv")
		io.WriteString(fw, "E-post;Namn\n")
		mw.Close()
		r := e.upload(t, "/api/v1/imports", mw.FormDataContentType(), &body)
		if got := decodeAs[fileRefusal](t, r.body); r.status != 400 || got.Error.Field != "file" || got.Error.Row != 1 {
			t.Errorf("multipart, a header and no rows: %d %s", r.status, r.body)
		}
		if n := len(decodeAs[[]imports.Import](t, e.get(t, "/api/v1/imports"))); n != 0 {
			t.Errorf("%d imports listed after refusals", n)
		}
		var kept int
		if err := db.Read.QueryRow(`SELECT (SELECT count(*) FROM imports) + (SELECT count(*) FROM import_file_chunks)`).Scan(&kept); err != nil || kept != 0 {
			t.Fatalf("%d rows kept of refused uploads (%v)", kept, err)
		}
	})
}

// An import's provenance must be plausible: a collection date given for
// every row in the future or before 1990, and a legal basis other than
// the purpose's, refuse the definition naming the field, and start
// nothing; a row whose date column says such a date fails alone, with its
// number and the reason, and the rest are imported.
func TestImportProvenanceMustBePlausible(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		file := "E-mail,Nieuwsbrief,Datum\nanna@example.com,ja,2026-11-01\nbo@example.com,ja,2099-01-01\ncarl@example.com,ja,1899-12-30\n" +
			"dora@example.com,nee,31-12-1989\nerik@example.com,ja,1990-01-01\n"
		r := e.upload(t, "/api/v1/imports?name=leads.csv", "text/csv", strings.NewReader(file))
		if r.status != 201 {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
		imp := decodeAs[imports.Import](t, r.body)
		definition := func(purpose, basis, when string) string {
			return `{"source":"API","columns":[{"column":"E-mail","field":"email"}],"consents":[{"purpose":"` + purpose + `","column":"Nieuwsbrief",` +
				`"legal_basis":"` + basis + `",` + when + `,"text_version":1}]}`
		}
		for _, tc := range []struct {
			name, def, field, says string
		}{
			{"a date in the future", definition("E-marketing", "consent", `"collected_at":"2099-01-01"`), "consents[0].collected_at", "2099-01-01 is in the future"},
			{"a date before 1990", definition("E-marketing", "consent", `"collected_at":"1989-12-31"`), "consents[0].collected_at", "1989-12-31 is before 1990-01-01"},
			{"a spreadsheet's day zero", definition("E-marketing", "consent", `"collected_at":"1899-12-30"`), "consents[0].collected_at", "is before 1990-01-01"},
			{"a basis the purpose does not rest on", definition("E-marketing", "legitimate_interests", `"collected_at":"2026-11-01"`), "consents[0].legal_basis",
				`purpose "E-marketing" rests on the legal basis consent, so its consents are imported on that basis, not legitimate_interests`},
			{"consent for a purpose on contract", definition("Sales and service", "consent", `"collected_at":"2026-11-01"`), "consents[0].legal_basis",
				`purpose "Sales and service" rests on the legal basis contract`},
		} {
			for _, action := range []string{"preview", "dry-run", "start"} {
				r := e.do(t, "POST", "/api/v1/imports/"+imp.ID+"/"+action, tc.def, "")
				got := decodeAs[fileRefusal](t, r.body)
				if r.status != 400 || got.Error.Field != tc.field || !strings.Contains(got.Error.Message, tc.says) {
					t.Errorf("%s, %s: %d %s; want 400 on %s saying %q", tc.name, action, r.status, r.body, tc.field, tc.says)
				}
			}
		}
		if got := decodeAs[imports.Import](t, e.get(t, "/api/v1/imports/"+imp.ID)); got.Status != imports.StatusUploaded || got.Definition != nil {
			t.Fatalf("refused definitions changed the import: %+v", got)
		}
		runJobs(t, e)
		if n := len(decodeAs[api.ContactPage](t, e.get(t, "/api/v1/contacts?limit=10")).Items); n != 0 {
			t.Fatalf("refused definitions wrote %d contacts", n)
		}
		// The bounds themselves are plausible, and the purpose's own
		// basis is taken.
		for _, def := range []string{definition("E-marketing", "consent", `"collected_at":"1990-01-01"`), definition("Sales and service", "contract", `"collected_at":"2026-12-01"`)} {
			if r := e.do(t, "POST", "/api/v1/imports/"+imp.ID+"/preview", def, ""); r.status != 200 {
				t.Errorf("%s: %d %s", def, r.status, r.body)
			}
		}

		if r := e.do(t, "POST", "/api/v1/imports/"+imp.ID+"/start", definition("E-marketing", "consent", `"collected_at_column":"Datum"`), ""); r.status != 202 {
			t.Fatalf("start: %d %s", r.status, r.body)
		}
		runJobs(t, e)
		imp = decodeAs[imports.Import](t, e.get(t, "/api/v1/imports/"+imp.ID))
		if imp.Status != imports.StatusDone || imp.Created != 2 || imp.Failed != 3 {
			t.Fatalf("the import: %+v", imp)
		}
		rows := decodeAs[[]imports.ReportRow](t, e.get(t, "/api/v1/imports/"+imp.ID+"/rows"))
		want := []struct {
			row  int64
			says string
		}{{3, "2099-01-01 is in the future"}, {4, "1899-12-30 is before 1990-01-01"}, {5, "31-12-1989 is before 1990-01-01"}}
		if len(rows) != len(want) {
			t.Fatalf("report: %+v", rows)
		}
		for i, w := range want {
			if rows[i].Row != w.row || rows[i].Outcome != imports.OutcomeFailed || rows[i].Field != "consents[0].collected_at" || !strings.Contains(rows[i].Reason, w.says) {
				t.Errorf("report row %d: %+v; want row %d failed on consents[0].collected_at saying %q", i, rows[i], w.row, w.says)
			}
		}
		page := decodeAs[api.ContactPage](t, e.get(t, "/api/v1/contacts?limit=10"))
		var written []string
		for _, c := range page.Items {
			written = append(written, c.Email)
		}
		if strings.Join(written, " ") != "anna@example.com erik@example.com" && strings.Join(written, " ") != "erik@example.com anna@example.com" {
			t.Errorf("the contacts written: %q; want anna's and erik's", written)
		}
	})
}

// GET /suggestion says what each column holds, from its header: a field,
// a purpose's answer or collection date, a list.
func TestImportSuggestionThroughTheAPI(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		if r := e.do(t, "POST", "/api/v1/purposes", `{"name":"Nyhetsbrev","legal_basis":"consent","text":"Får vi skicka vårt nyhetsbrev?"}`, e.vars["admin"]); r.status != 201 {
			t.Fatalf("purpose: %d %s", r.status, r.body)
		}
		if r := e.do(t, "POST", "/api/v1/lists", `{"name":"Kunder"}`, ""); r.status != 201 {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		r := e.upload(t, "/api/v1/imports?name=s.csv", "text/csv", strings.NewReader("E-post;Förnamn;Samtycke nyhetsbrev;Samtyckesdatum;Lista: Kunder;Anteckning\n"+
			"anna@example.com;Anna;ja;2026-11-01;ja;\n"))
		imp := decodeAs[imports.Import](t, r.body)
		got := decodeAs[[]imports.Suggestion](t, e.get(t, "/api/v1/imports/"+imp.ID+"/suggestion"))
		want := []imports.Suggestion{{Column: "E-post", Field: "email"}, {Column: "Förnamn", Field: "first_name"}, {Column: "Samtycke nyhetsbrev", Consent: "Nyhetsbrev"},
			{Column: "Samtyckesdatum", ConsentDate: "Nyhetsbrev"}, {Column: "Lista: Kunder", List: "Kunder"}, {Column: "Anteckning"}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("suggestion %+v\nwant %+v", got, want)
		}
	})
}
