package app_test

import (
	"bytes"
	"encoding/csv"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

const (
	csvType  = "text/csv; charset=utf-8"
	xlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)

var listFileRE = regexp.MustCompile(`^consentry-contacts-\d{8}-\d{6}\.(csv|xlsx)$`)

// listExportSetUp makes three contacts: Ann, with a card number on file
// (sensitive) and its storage consent granted; Bob in the EU, whose first
// name is a spreadsheet formula; Cy in the US. It returns Ann's id.
func listExportSetUp(e *env) string {
	ann := cardOnFile(e, "ann@example.com", "granted")
	e.api("POST", "/api/v1/contacts", `{"email":"bob@example.com","first_name":"=HYPERLINK(\"http://evil.example\",\"Bob\")","last_name":"+46 70","region":"EU"}`, 201, nil)
	e.api("POST", "/api/v1/contacts", `{"email":"cy@example.com","first_name":"Cy","region":"US"}`, 201, nil)
	return ann.ID
}

// wantListRows are the rows of the export of region != "US" in the
// columns email, first_name, last_name, card_number, consent.Card on file:
// Ann's card masked, Bob's formulas defused.
var wantListRows = [][]string{
	{"email", "first_name", "last_name", "card_number", "consent.Card on file"},
	{"ann@example.com", "", "", "••••••••••••1111", "granted"},
	{"bob@example.com", `'=HYPERLINK("http://evil.example","Bob")`, "'+46 70", "", "none"},
}

// fileRows checks that res is an attachment of the contact list in the
// media type, and reads its rows back.
func fileRows(t testing.TB, res *http.Response, body []byte, media string) [][]string {
	t.Helper()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != media {
		t.Fatalf("%s: %d %s: %.300s", res.Request.URL.Path, res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	disp, params, err := mime.ParseMediaType(res.Header.Get("Content-Disposition"))
	if err != nil || disp != "attachment" || !listFileRE.MatchString(params["filename"]) {
		t.Fatalf("Content-Disposition %q", res.Header.Get("Content-Disposition"))
	}
	if media == csvType {
		rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\ufeff")))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	return sheetRows(t, bytes.NewReader(body))
}

// sheetRows reads the sheet of a workbook of the contact list, each row
// filled with empty cells up to the header's width, as the CSV has them
// (excelize leaves them out at a row's end).
func sheetRows(t testing.TB, r io.Reader) [][]string {
	t.Helper()
	f, err := excelize.OpenReader(r)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows("contacts")
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		for len(rows[i]) < len(rows[0]) {
			rows[i] = append(rows[i], "")
		}
	}
	return rows
}

// TestContactListExportOverTheAPI: GET /api/v1/contacts/export answers
// with the file of the contacts the filter selects, in the columns asked
// for, as CSV and as Excel: masked whatever the token's scopes, formulas
// defused; each export is in the access log with what it held. A bad
// format, column or filter is a 400 naming the field and logs nothing.
func TestContactListExportOverTheAPI(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		listExportSetUp(e)
		q := url.Values{"filter": {`region != "US"`}, "columns": {"email,first_name,last_name,card_number,consent.Card on file"}}
		res, b := e.call("GET", "/api/v1/contacts/export?"+q.Encode(), "")
		if rows := fileRows(t, res, b, csvType); !slices.EqualFunc(rows, wantListRows, slices.Equal) {
			t.Fatalf("csv:\n%q\nwant\n%q", rows, wantListRows)
		}
		q.Set("format", "xlsx")
		res, b = e.revealer().call("GET", "/api/v1/contacts/export?"+q.Encode(), "")
		if rows := fileRows(t, res, b, xlsxType); !slices.EqualFunc(rows, wantListRows, slices.Equal) {
			t.Fatalf("xlsx with the reveal scope:\n%q\nwant\n%q", rows, wantListRows)
		}
		for _, c := range []struct{ query, field string }{
			{"format=pdf", "format"},
			{"format=json", "format"},
			{"columns=email,password", "columns"},
			{"columns=email,,phone", "columns"},
			{"filter=" + url.QueryEscape(`region = "EU"`), "filter"},
			{"filter=" + url.QueryEscape(`card_number == "4111111111111111"`), "filter"}, // needs the reveal scope
		} {
			var bad struct {
				Error struct{ Field, Message string }
			}
			e.api("GET", "/api/v1/contacts/export?"+c.query, "", 400, &bad)
			if bad.Error.Field != c.field || bad.Error.Message == "" {
				t.Errorf("%s: %+v, want the field %s", c.query, bad, c.field)
			}
		}
		if n := accessEntries(e, "field="+url.QueryEscape("(contact list)")); n != 2 {
			t.Fatalf("%d exports logged, want 2", n)
		}
		if n := count(t, db, `SELECT count(*) FROM access_log WHERE field = '(contact list)' AND contact_id = ''
			AND reason LIKE '2 contacts as csv; columns: email, first_name, last_name, card_number, consent.Card on file; condition: region != "US"'`); n != 1 {
			t.Fatal("the csv export's entry does not say what it held")
		}
		// Without columns, the list's: every contact, the default columns.
		res, b = e.call("GET", "/api/v1/contacts/export", "")
		rows := fileRows(t, res, b, csvType)
		if len(rows) != 4 || !slices.Equal(rows[0][:5], []string{"email", "first_name", "last_name", "kind", "opt_in_status"}) ||
			!slices.Contains(rows[0], "consent.Card on file") {
			t.Fatalf("default export: %q", rows)
		}
	})
}

// TestContactListExportInTheAdmin: the contact list offers the export
// with its columns; the form exports what the list shows (its search and
// condition) in the ticked columns, masked, and answers with the file; a
// refused export shows the list again with the reason and logs nothing;
// the access log says what each export held.
func TestContactListExportInTheAdmin(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		listExportSetUp(e)
		admin := e.firstAdmin()
		agent := e.signIn(admin, "agent@acme.example", "agent")
		filter := `region != "US"`
		_, body := agent.get(e.srv.URL + "/admin/contacts?filter=" + url.QueryEscape(filter))
		for _, want := range []string{`action="/admin/contacts/export"`, `id="export-csv"`, `id="export-xlsx"`, "Export these 2 contacts",
			`name="filter" value="region != &#34;US&#34;"`, `value="card_number">`, `value="email" checked>`, "card_number (masked)"} {
			if !strings.Contains(body, want) {
				t.Fatalf("the contact list lacks %s:\n%s", want, body)
			}
		}
		form := url.Values{"q": {""}, "filter": {filter}, "columns": wantListRows[0], "format": {"xlsx"}}
		res, b := agent.press(e.srv.URL+"/admin/contacts/export", form)
		if rows := fileRows(t, res, b, xlsxType); !slices.EqualFunc(rows, wantListRows, slices.Equal) {
			t.Fatalf("xlsx:\n%q\nwant\n%q", rows, wantListRows)
		}
		// The search box narrows it as it narrows the list.
		form.Set("q", "bob")
		form.Set("format", "csv")
		res, b = admin.press(e.srv.URL+"/admin/contacts/export", form)
		if rows := fileRows(t, res, b, csvType); !slices.EqualFunc(rows, [][]string{wantListRows[0], wantListRows[2]}, slices.Equal) {
			t.Fatalf("csv of a search:\n%q", rows)
		}
		for _, c := range []struct {
			form url.Values
			want string
		}{
			{url.Values{"filter": {filter}, "format": {"csv"}}, "tick at least one column"},
			{url.Values{"filter": {filter}, "format": {"doc"}, "columns": {"email"}}, "must be csv or xlsx"},
			{url.Values{"filter": {filter}, "format": {"csv"}, "columns": {"email", "password"}}, `&#34;password&#34; is not a column`},
			{url.Values{"filter": {`region = "US"`}, "format": {"csv"}, "columns": {"email"}}, `id="filter-error"`},
		} {
			code, body := agent.post(e.srv.URL+"/admin/contacts/export", c.form)
			if code != 400 || agent.last.Header.Get("Content-Disposition") != "" || !strings.Contains(body, c.want) {
				t.Errorf("%v: %d, want 400 with %s:\n%s", c.form, code, c.want, body)
			}
		}
		if n := count(t, db, `SELECT count(*) FROM access_log WHERE field = '(contact list)' AND actor_kind = 'user'`); n != 2 {
			t.Fatalf("%d exports logged, want 2", n)
		}
		_, body = admin.get(e.srv.URL + "/admin/access-log?field=" + url.QueryEscape("(contact list)"))
		if !strings.Contains(body, "Exported the contact list: 1 contact as csv; columns: email, first_name, last_name, card_number, "+
			"consent.Card on file; condition: (lower(email) contains &#34;bob&#34;") {
			t.Fatalf("the access log page:\n%s", body)
		}
	})
}
