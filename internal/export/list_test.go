package export_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/export"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// listFixture is the access export's fixture (Åsa, whose last name looks
// like a formula, no region) with two more contacts: Bo in the EU, whose
// names look like formulas too and whose national id is stored
// encrypted, and Cy in the US.
type listFixture struct {
	fixture
	people *contact.Service
	bo     *contact.Contact
}

func setUpList(t testing.TB, db *store.DB) listFixture {
	t.Helper()
	ctx := context.Background()
	fx := setUp(t, db)
	people := fx.svc.Contacts
	bo, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("bo@example.nl"), FirstName: ptr("@SUM(A1)"),
		LastName: ptr("-2+3"), Region: ptr("EU"), Fields: map[string]any{"national_id": "199001015678", "score": 7.0}},
		Consents: []consent.RecordInput{{Purpose: "E-marketing", State: consent.StateGranted, Source: "Web form", Actor: api, Evidence: evidence}},
		Actor:    api, Evidence: evidence})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("cy@example.com"), FirstName: ptr("Cy"),
		Region: ptr("US")}, Actor: api, Evidence: evidence}); err != nil {
		t.Fatal(err)
	}
	if bo, err = people.Get(ctx, bo.ID); err != nil {
		t.Fatal(err)
	}
	return listFixture{fixture: fx, people: people, bo: bo}
}

// exportList prepares and writes an export, and returns its file.
func exportList(t testing.TB, svc *export.Service, r export.ListRequest) (*export.ListExport, []byte) {
	t.Helper()
	x, err := svc.PrepareList(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := x.Write(context.Background(), &b, nil); err != nil {
		t.Fatal(err)
	}
	return x, b.Bytes()
}

// readCSV reads a CSV export back, checking its byte order mark.
func readCSV(t testing.TB, b []byte) [][]string {
	t.Helper()
	rest, ok := bytes.CutPrefix(b, []byte("\ufeff"))
	if !ok {
		t.Fatalf("no byte order mark: %.40q", b)
	}
	rows, err := csv.NewReader(bytes.NewReader(rest)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// readXLSX reads the one sheet of an Excel export back.
func readXLSX(t testing.TB, b []byte) [][]string {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); !slices.Equal(got, []string{"contacts"}) {
		t.Fatalf("sheets %v", got)
	}
	rows, err := f.GetRows("contacts")
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// listEntries returns the reasons of the access-log entries of contact
// list exports, oldest first.
func listEntries(t testing.TB, db *store.DB) []string {
	t.Helper()
	out, err := store.QueryAll(context.Background(), db.Read, func(row store.Scanner) (string, error) {
		var reason, contactID string
		err := row.Scan(&reason, &contactID)
		if contactID != "" {
			return "", fmt.Errorf("a list export names the contact %s", contactID)
		}
		return reason, err
	}, `SELECT reason, contact_id FROM access_log WHERE field = $1 ORDER BY id`, export.ListAccessField)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestListExport: the contacts a condition selects, in the chosen
// columns and order, as CSV and as Excel read back: the sensitive value
// masked as the list shows it, formula-looking values defused in both
// formats, numbers in digits, the consent state per purpose; each export
// is one access-log entry saying what it held.
func TestListExport(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		fx := setUpList(t, db)
		masked := fx.bo.Fields["national_id"].(string)
		if !strings.HasPrefix(masked, "•") || strings.Contains(masked, "19900101") {
			t.Fatalf("the list's masked value: %q", masked)
		}
		columns := []string{"email", "first_name", "last_name", "national_id", "score", "consent.e-marketing", "created_at"}
		header := []string{"email", "first_name", "last_name", "national_id", "score", "consent.E-marketing", "created_at"}
		want := []string{"bo@example.nl", "'@SUM(A1)", "'-2+3", masked, "7", "granted", fx.bo.CreatedAt.UTC().Format("2006-01-02T15:04:05.999999999Z07:00")}
		for _, f := range []struct {
			format string
			read   func(testing.TB, []byte) [][]string
			media  string
		}{
			{"csv", readCSV, "text/csv; charset=utf-8"},
			{"xlsx", readXLSX, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
		} {
			x, b := exportList(t, fx.svc, export.ListRequest{Format: f.format, Filter: `region == "EU"`, Columns: columns, Asker: contact.Asker{Actor: agent}})
			if x.ContentType() != f.media || x.FileName() != "consentry-contacts-"+x.GeneratedAt.UTC().Format("20060102-150405")+"."+f.format || x.Contacts != 1 {
				t.Fatalf("%s: %s %s %d", f.format, x.ContentType(), x.FileName(), x.Contacts)
			}
			rows := f.read(t, b)
			if len(rows) != 2 || !slices.Equal(rows[0], header) || !slices.Equal(rows[1], want) {
				t.Fatalf("%s export:\n%q\nwant\n%q\n%q", f.format, rows, header, want)
			}
			if bytes.Contains(b, []byte("19900101")) {
				t.Fatalf("%s: the clear value is in the file", f.format)
			}
		}
		got := listEntries(t, db)
		wantLog := `1 contact as %s; columns: email, first_name, last_name, national_id, score, consent.E-marketing, created_at; condition: region == "EU"`
		if len(got) != 2 || got[0] != fmt.Sprintf(wantLog, "csv") || got[1] != fmt.Sprintf(wantLog, "xlsx") {
			t.Fatalf("access log: %q", got)
		}
		what := export.AccessWhat(contact.AccessEntry{Field: export.ListAccessField, Reason: got[0]}, nil)
		if what != "Exported the contact list: "+got[0] {
			t.Fatalf("in words: %q", what)
		}

		// The default columns are the list's, and every contact is in it.
		_, b := exportList(t, fx.svc, export.ListRequest{Asker: contact.Asker{Actor: agent}})
		rows := readCSV(t, b)
		purposes, err := fx.people.Consent.Purposes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		wantHeader := []string{"email", "first_name", "last_name", "kind", "opt_in_status"}
		for _, p := range purposes {
			wantHeader = append(wantHeader, "consent."+p.Name)
		}
		if len(rows) != 4 || !slices.Equal(rows[0], wantHeader) {
			t.Fatalf("default export:\n%q\nwant header %q", rows, wantHeader)
		}
		emails := []string{rows[1][0], rows[2][0], rows[3][0]}
		slices.Sort(emails)
		if !slices.Equal(emails, []string{"asa@example.se", "bo@example.nl", "cy@example.com"}) {
			t.Fatalf("default export's contacts: %q", emails)
		}
		if log := listEntries(t, db); !strings.HasSuffix(log[2], "condition: none (every contact)") || !strings.HasPrefix(log[2], "3 contacts as csv; ") {
			t.Fatalf("access log: %q", log[2])
		}
	})
}

// TestListExportRefusals: a bad format, column or condition, or a
// condition comparing a sensitive value from one who may not, is refused
// naming the field, and nothing is written to the access log.
func TestListExportRefusals(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		fx := setUpList(t, db)
		var before int64
		if err := db.Read.QueryRow(`SELECT count(*) FROM access_log`).Scan(&before); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			r     export.ListRequest
			field string
		}{
			{export.ListRequest{Format: "json"}, "format"},
			{export.ListRequest{Format: "pdf"}, "format"},
			{export.ListRequest{Columns: []string{"email", "password"}}, "columns"},
			{export.ListRequest{Columns: []string{"email", "email"}}, "columns"},
			{export.ListRequest{Columns: export.SplitColumns([]string{"email,,phone"})}, "columns"},
			{export.ListRequest{Columns: []string{"consent.No such purpose"}}, "columns"},
			{export.ListRequest{Columns: []string{"fields"}}, "columns"},
			{export.ListRequest{Filter: `region = "EU"`}, "filter"},
			{export.ListRequest{Filter: `national_id == "199001015678"`}, "filter"}, // the asker may not reveal
		} {
			c.r.Asker = contact.Asker{Actor: agent}
			_, err := fx.svc.PrepareList(context.Background(), c.r)
			if e := errs.As(err); e == nil || e.Kind != errs.KindInvalid || e.Field != c.field {
				t.Errorf("%+v: %v, want an invalid %s", c.r, err, c.field)
			}
		}
		var after int64
		if err := db.Read.QueryRow(`SELECT count(*) FROM access_log`).Scan(&after); err != nil || after != before {
			t.Fatalf("refusals wrote %d access-log entries (%v)", after-before, err)
		}
		// One who may reveal compares the value through its blind index:
		// the look-up is logged with the export, the value stays masked.
		x, b := exportList(t, fx.svc, export.ListRequest{Filter: `national_id == "199001015678"`, Columns: []string{"email", "national_id"},
			Asker: contact.Asker{Actor: billing, MayReveal: true}})
		if rows := readCSV(t, b); x.Contacts != 1 || len(rows) != 2 || rows[1][0] != "bo@example.nl" || rows[1][1] != fx.bo.Fields["national_id"] {
			t.Fatalf("a look-up's export: %q", rows)
		}
		var lookups int
		if err := db.Read.QueryRow(`SELECT count(*) FROM access_log WHERE field = 'national_id' AND contact_id = '' AND actor_id = $1`,
			billing.ID).Scan(&lookups); err != nil || lookups != 1 {
			t.Fatalf("%d look-ups logged (%v)", lookups, err)
		}
	})
}

// TestListExportPages: an export longer than a page reads every contact
// the condition selects once, in id order, with its consent state, as
// the count says.
func TestListExportPages(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		const n = 5003
		contacttest.SeedMillion(t, db, n)
		people := contact.NewService(db, consent.NewService(db))
		svc := &export.Service{DB: db, Contacts: people, Now: time.Now}
		const cond = `region == "EU" && consent("E-marketing") != "withdrawn"`
		want, err := people.Count(context.Background(), cond, contact.Asker{})
		if err != nil {
			t.Fatal(err)
		}
		x, b := exportList(t, svc, export.ListRequest{Filter: cond, Columns: []string{"id", "region", "consent.E-marketing"}})
		rows := readCSV(t, b)[1:]
		if x.Contacts != want || int64(len(rows)) != want || want < 1500 {
			t.Fatalf("%d rows, %d counted, want %d", len(rows), x.Contacts, want)
		}
		states := map[string]int{}
		for i, r := range rows {
			if i > 0 && r[0] <= rows[i-1][0] {
				t.Fatalf("row %d: %s after %s", i, r[0], rows[i-1][0])
			}
			if r[1] != "EU" {
				t.Fatalf("row %d: %q", i, r)
			}
			states[r[2]]++
		}
		// SeedMillion: granted for i % 4 < 2, withdrawn for 2, none for 3.
		if states["withdrawn"] != 0 || states["granted"] == 0 || states["none"] == 0 || states["granted"]+states["none"] != len(rows) {
			t.Fatalf("consent states %v", states)
		}
	})
}
