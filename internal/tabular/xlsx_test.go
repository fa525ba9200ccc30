package tabular

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// workbook builds a workbook with excelize: the first sheet from fill, and
// a second sheet that must not be read.
func workbook(t *testing.T, fill func(f *excelize.File, sheet string)) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	fill(f, "Sheet1")
	if _, err := f.NewSheet("Other"); err != nil {
		t.Fatal(err)
	}
	if err := f.SetCellValue("Other", "A1", "not this sheet"); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func set(t *testing.T, f *excelize.File, sheet string, cells map[string]any) {
	t.Helper()
	for cell, v := range cells {
		if err := f.SetCellValue(sheet, cell, v); err != nil {
			t.Fatal(err)
		}
	}
}

// noFilesIn fails the test when dir holds a file: a temporary file left.
func noFilesIn(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left in the temporary directory: %s", e.Name())
	}
}

func TestXLSX(t *testing.T) {
	data := workbook(t, func(f *excelize.File, s string) {
		set(t, f, s, map[string]any{
			"A1": " E-post ", "B1": "Förnamn", "C1": "Född", "D1": "Poäng", "E1": "Dubbelt",
			"A2": "anna@example.se", "B2": "  Åsa ", "C2": time.Date(1984, 3, 7, 0, 0, 0, 0, time.UTC), "D2": 42, "E2": 99,
			// Row 3 is blank; rows 4, 5 and 7 have their last cells empty,
			// which the format does not store.
			"A4": "bo@example.se", "B4": "Bo",
			"A5": "cia@example.se", "D5": 3.5,
			// Row 6 has a value in a column without a name.
			"A6": "dan@example.se", "F6": "stray",
			"A7": "eva@example.se",
			// A typed date and a date and time have the built-in,
			// regional formats: they read in ISO 8601.
			"C4": time.Date(2026, 12, 1, 13, 5, 0, 0, time.UTC), "C5": time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		})
		for cell, id := range map[string]int{"C4": 22, "C5": 14} {
			style, err := f.NewStyle(&excelize.Style{NumFmt: id})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.SetCellStyle(s, cell, cell, style); err != nil {
				t.Fatal(err)
			}
		}
		style, err := f.NewStyle(&excelize.Style{CustomNumFmt: new("yyyy-mm-dd")})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.SetCellStyle(s, "C2", "C2", style); err != nil {
			t.Fatal(err)
		}
		// E2 is a formula whose saved value (99) is not what it computes
		// (84): the saved value is read, the formula never evaluated.
		if err := f.SetCellFormula(s, "E2", "D2*2"); err != nil {
			t.Fatal(err)
		}
	})
	dir := t.TempDir()
	r, err := Open(bytes.NewReader(data), Options{TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if r.Format() != FormatXLSX || r.Encoding() != "" || r.Delimiter() != 0 {
		t.Errorf("format, encoding, delimiter = %s, %q, %q", r.Format(), r.Encoding(), r.Delimiter())
	}
	if want := []string{"E-post", "Förnamn", "Född", "Poäng", "Dubbelt"}; !reflect.DeepEqual(r.Header(), want) {
		t.Errorf("header %q; want %q", r.Header(), want)
	}
	var got []row
	var rowErrs []*RowError
	for {
		x, err := r.Next()
		if err == io.EOF {
			break
		}
		var re *RowError
		if errors.As(err, &re) && !re.Fatal {
			rowErrs = append(rowErrs, re)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, row{x.Number, append([]string(nil), x.Cells...)})
	}
	want := []row{
		{2, []string{"anna@example.se", "Åsa", "1984-03-07", "42", "99"}},
		{4, []string{"bo@example.se", "Bo", "2026-12-01T13:05:00Z", "", ""}},
		{5, []string{"cia@example.se", "", "2026-12-01", "3.5", ""}},
		{7, []string{"eva@example.se", "", "", "", ""}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows %+v\nwant %+v", got, want)
	}
	if len(rowErrs) != 1 || rowErrs[0].Row != 6 || !strings.Contains(rowErrs[0].Reason, "column F (6) has a value but no name") {
		t.Errorf("row errors %+v; want one for row 6", rowErrs)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	noFilesIn(t, dir)
}

func TestXLSXLargeSheetUnpackedToDisk(t *testing.T) {
	// A sheet above the in-memory size goes to a temporary file that Close
	// removes.
	f := excelize.NewFile()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.SetRow("A1", []any{"email", "note"}); err != nil {
		t.Fatal(err)
	}
	const n = 20000
	note := strings.Repeat("n", 450)
	for i := 2; i <= n; i++ {
		cell, _ := excelize.CoordinatesToCellName(1, i)
		if err := sw.SetRow(cell, []any{"someone@example.com", note}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	f.Close()

	dir := t.TempDir()
	r, err := Open(bytes.NewReader(b.Bytes()), Options{TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) == 0 {
		t.Errorf("the sheet was not unpacked to a temporary file")
	}
	rows := readAll(t, r)
	if len(rows) != n-1 || rows[len(rows)-1].n != n {
		t.Errorf("read %d rows, the last %+v", len(rows), rows[len(rows)-1])
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	noFilesIn(t, dir)

	// The same workbook is larger than a small MaxBytes, or unpacks to more.
	openError(t, b.Bytes(), Options{TempDir: dir, MaxBytes: int64(b.Len()) - 1}, CodeTooLarge)
	noFilesIn(t, dir)
	msg := openError(t, b.Bytes(), Options{TempDir: dir, MaxBytes: int64(b.Len()) + 1}, CodeTooLarge)
	if !strings.Contains(msg, "unpacks") {
		t.Errorf("message %q", msg)
	}
	noFilesIn(t, dir)
}

func TestXLSXBad(t *testing.T) {
	good := workbook(t, func(f *excelize.File, s string) {
		set(t, f, s, map[string]any{"A1": "email", "A2": "a@example.com"})
	})
	var notBook bytes.Buffer
	zw := zip.NewWriter(&notBook)
	w, _ := zw.Create("contacts.csv")
	io.WriteString(w, "email\na@example.com\n")
	zw.Close()
	flipped := bytes.Clone(good)
	for i := len(flipped) / 3; i < len(flipped)/2; i++ {
		flipped[i] ^= 0x55
	}

	dir := t.TempDir()
	for name, tc := range map[string]struct {
		data []byte
		code string
	}{
		"truncated":          {good[:len(good)/2], CodeFormat},
		"corrupt":            {flipped, CodeFormat},
		"only the magic":     {[]byte("PK\x03\x04"), CodeFormat},
		"zip of a CSV file":  {notBook.Bytes(), CodeFormat},
		"empty zip":          {[]byte("PK\x05\x06" + strings.Repeat("\x00", 18)), CodeFormat},
		"empty first sheet":  {workbook(t, func(*excelize.File, string) {}), CodeEmpty},
		"duplicate names":    {workbook(t, func(f *excelize.File, s string) { set(t, f, s, map[string]any{"A1": "Email", "B1": "EMAIL"}) }), CodeHeader},
		"name after a blank": {workbook(t, func(f *excelize.File, s string) { set(t, f, s, map[string]any{"A1": "email", "C1": "name"}) }), CodeHeader},
	} {
		t.Run(name, func(t *testing.T) {
			msg := openError(t, tc.data, Options{TempDir: dir}, tc.code)
			if name == "duplicate names" && !strings.Contains(msg, `column B (2) of the header, "EMAIL", has the same name as column A (1)`) {
				t.Errorf("message %q", msg)
			}
			if name == "name after a blank" && !strings.Contains(msg, "column B (2)") {
				t.Errorf("message %q", msg)
			}
			noFilesIn(t, dir)
		})
	}
}

// TestXLSXDatesAndNumbersAreExact: a date cell gives its date whatever
// format shows it (a month-first mm/dd/yyyy is not read day-first, a
// d-mmm-yy is not refused), from its serial number; a 16-digit number
// gives its digits, not the 15 Excel shows with an exponent.
func TestXLSXDatesAndNumbersAreExact(t *testing.T) {
	march4 := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	data := workbook(t, func(f *excelize.File, s string) {
		set(t, f, s, map[string]any{
			"A1": "us", "B1": "short", "C1": "dotted", "D1": "with time", "E1": "id", "F1": "text", "G1": "small",
			"A2": march4, "B2": march4, "C2": march4, "D2": time.Date(2026, 10, 14, 9, 30, 0, 0, time.UTC),
			"E2": int64(1985010112345678), "F2": "03/04/2026", "G2": 42,
		})
		for cell, code := range map[string]string{"A2": "mm/dd/yyyy", "B2": "d-mmm-yy", "C2": "dd.mm.yyyy", "D2": `[$-409]m/d/yy\ h:mm\ AM/PM;@`} {
			style, err := f.NewStyle(&excelize.Style{CustomNumFmt: &code})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.SetCellStyle(s, cell, cell, style); err != nil {
				t.Fatal(err)
			}
		}
	})
	r, err := Open(bytes.NewReader(data), Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	x, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2026-03-04", "2026-03-04", "2026-03-04", "2026-10-14T09:30:00Z", "1985010112345678", "03/04/2026", "42"}
	if !reflect.DeepEqual(x.Cells, want) {
		t.Errorf("cells %q\nwant %q", x.Cells, want)
	}
}
