package tabular

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/consentry/consentry/internal/tabular/tabulartest"
)

// memory runs fn and returns the most heap in use seen while it ran, as
// sampled, above what was in use before, and the bytes it allocated in
// all. The collector runs often meanwhile, so that the heap in use is
// close to what fn holds rather than to what it has let go.
func memory(fn func()) (peak, allocated uint64) {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-done:
				return
			default:
				runtime.Gosched()
			}
		}
	})
	fn()
	close(done)
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	peak = max(peak, after.HeapInuse)
	return peak - min(peak, before.HeapInuse), after.TotalAlloc - before.TotalAlloc
}

// readWorkbook opens data and reads it to the end or to the first error,
// which it returns.
func readWorkbook(data []byte, opts Options) (rows int, err error) {
	r, err := Open(bytes.NewReader(data), opts)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	for {
		_, err := r.Next()
		if err == io.EOF {
			return rows, nil
		}
		var re *RowError
		if errors.As(err, &re) && !re.Fatal {
			continue
		}
		if err != nil {
			return rows, err
		}
		rows++
	}
}

// A workbook that would make excelize hold far more than a row in memory
// is refused at Open, naming the field "file", why, and the row when it
// is one row's; reading it takes a bounded amount of memory.
func TestXLSXHostile(t *testing.T) {
	row, inline, shared := tabulartest.Row, tabulartest.Inline, tabulartest.Shared
	header := row(1, inline("A1", "email"), inline("B1", "name"))
	amplified := header
	for r := 2; r <= 31; r++ {
		amplified += row(r, inline(fmt.Sprintf("A%d", r), fmt.Sprintf("amp%d@example.com", r)), shared(fmt.Sprintf("B%d", r), 0))
	}
	var wide strings.Builder
	for range MaxColumns + 1 {
		wide.WriteString("<c><v>1</v></c>")
	}
	var manyTexts strings.Builder
	manyTexts.WriteString(`<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">`)
	for range maxSharedStrings + 1 {
		manyTexts.WriteString("<si/>")
	}
	manyTexts.WriteString("</sst>")
	comment := "<!--" + strings.Repeat("<a>", 3<<20) + "-->"

	dir := t.TempDir()
	for name, tc := range map[string]struct {
		book tabulartest.Book
		code string
		want string // in the message
	}{
		// 64 MiB of spaces between the rows: one token to encoding/xml.
		"whitespace bomb": {tabulartest.Book{Sheet: header, Spaces: 64}, CodeTooLarge, "a run of text or markup longer than 8 MiB"},
		// The same in runs of 1 MiB.
		"whitespace in runs": {tabulartest.Book{Sheet: header, Spaces: 20, Split: true}, CodeTooLarge, "more than 16 MiB of text or spaces outside its rows"},
		// 30 rows each with a 10 MiB shared string (the probe's file).
		"shared string of 10 MiB": {tabulartest.Book{Sheet: amplified, Shared: []string{strings.Repeat("B", 10<<20)}}, CodeTooLarge, "longer than 8 MiB"},
		"shared string of 2 MiB": {tabulartest.Book{Sheet: amplified, Shared: []string{strings.Repeat("B", 2<<20)}}, CodeLineTooLong,
			"a text (shared string number 1) longer than 1 MiB, the most that is read for one row"},
		// Within the limit once, twice in a row beyond it.
		"shared string twice in a row": {tabulartest.Book{Sheet: header + row(2, shared("A2", 0), shared("B2", 0)), Shared: []string{strings.Repeat("B", 600<<10)}},
			CodeLineTooLong, "row 2: it is longer than 1 MiB, the most that is read for one row"},
		"a long cell": {tabulartest.Book{Sheet: header + row(2, inline("A2", "a@example.com")) + row(3, inline("A3", strings.Repeat("x", 2<<20)))},
			CodeLineTooLong, "row 3: it is longer than 1 MiB"},
		"a long header":           {tabulartest.Book{Sheet: row(1, inline("A1", strings.Repeat("x", 1<<20)), inline("B1", "x"))}, CodeLineTooLong, "row 1: it is longer than 1 MiB"},
		"too many cells":          {tabulartest.Book{Sheet: header + `<row r="7">` + wide.String() + `</row>`}, CodeLineTooLong, "row 7: it has more than 16384 cells"},
		"too many shared strings": {tabulartest.Book{Sheet: header, Shared: []string{}, Parts: nil}, "", ""},
		"a comment of 9 MiB":      {tabulartest.Book{Sheet: header + comment}, CodeTooLarge, "longer than 8 MiB"},
		"a DOCTYPE":               {tabulartest.Book{Sheet: header, Parts: map[string]string{}}, "", ""},
		"bloated styles": {tabulartest.Book{Sheet: header, Styles: `<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><cellXfs>` +
			strings.Repeat("<xf/>", maxElements) + `</cellXfs></styleSheet>`}, CodeTooLarge, "more than 250000 elements"},
		// Markup nested four million deep in a row (the probe's file, 17
		// KB zipped): excelize's decoder keeps a frame for each level.
		"deep nesting in a row": {tabulartest.Book{Sheet: header + `<row r="2">` + strings.Repeat("<x>", 4<<20) + strings.Repeat("</x>", 4<<20) + `</row>`},
			CodeTooLarge, "nests its markup more than 100 levels deep"},
		"deep nesting outside rows": {tabulartest.Book{Sheet: header + strings.Repeat("<x>", 1<<20) + strings.Repeat("</x>", 1<<20)},
			CodeTooLarge, "nests its markup more than 100 levels deep"},
		"deep nesting in styles": {tabulartest.Book{Sheet: header, Styles: `<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">` +
			strings.Repeat("<x>", 200_000) + strings.Repeat("</x>", 200_000) + `</styleSheet>`}, CodeTooLarge, "nests its markup more than 100 levels deep"},
		// Four million empty elements in a row, or a million runs of
		// formatted text in a cell, which excelize holds together (220 MiB).
		"many elements in a row": {tabulartest.Book{Sheet: header + `<row r="2">` + strings.Repeat("<x/>", 4<<20) + `</row>`},
			CodeTooLarge, "row 2: it holds more than 262144 pieces of markup"},
		"many runs in a cell": {tabulartest.Book{Sheet: header + `<row r="2"><c r="A2" t="inlineStr"><is>` + strings.Repeat("<r><t>a</t></r>", 1<<20) + `</is></c></row>`},
			CodeTooLarge, "row 2: it holds more than 262144 pieces of markup"},
		"many elements outside rows": {tabulartest.Book{Sheet: header + strings.Repeat("<x/>", 4<<20)},
			CodeTooLarge, "more than 1000000 pieces of markup outside its rows"},
		"large other parts": {tabulartest.Book{Sheet: header, Parts: map[string]string{"xl/media/image1.png": strings.Repeat("\x00", 33<<20)}}, CodeTooLarge, "unpack to more than 32 MiB"},
	} {
		t.Run(name, func(t *testing.T) {
			data := tc.book.Bytes(t)
			switch name {
			case "too many shared strings":
				data = replacePart(t, data, "xl/sharedStrings.xml", manyTexts.String())
				tc.code, tc.want = CodeTooLarge, "more than 2000000 different texts"
			case "a DOCTYPE":
				data = replacePart(t, data, "xl/worksheets/sheet1.xml", `<!DOCTYPE worksheet [<!ENTITY a "aaaa">]><worksheet><sheetData>`+header+`</sheetData></worksheet>`)
				tc.code, tc.want = CodeFormat, "cannot be read"
			}
			var msg string
			peak, allocated := memory(func() { msg = openError(t, data, Options{TempDir: dir}, tc.code) })
			if !strings.Contains(msg, tc.want) {
				t.Errorf("message %q; want %q in it", msg, tc.want)
			}
			// Refusing takes what a token at the limit takes, whatever
			// the workbook unpacks to (before the limits, the whitespace
			// bomb allocated 128 MiB, twice its spaces, and the 10 MiB
			// shared string 662 MiB); checking two million shared
			// strings, or a million elements outside the rows, allocates
			// more, a little at a time.
			if peak > 32<<20 || allocated > 48<<20 && name != "too many shared strings" && name != "many elements outside rows" {
				t.Errorf("refusing took a peak of %d MiB of heap and allocated %d MiB", peak>>20, allocated>>20)
			}
			noFilesIn(t, dir)
		})
	}
}

// replacePart returns the workbook data with the part name's text
// replaced.
func replacePart(t *testing.T, data []byte, name, text string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == name {
			io.WriteString(w, text)
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(w, rc)
		rc.Close()
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// A workbook within the limits reads whole, in bounded memory: the 30
// rows that all point at one shared string of 900 KiB (each row within
// 1 MiB), text in CDATA sections and comments, a row of all 16384 cells.
func TestXLSXWithinLimits(t *testing.T) {
	xrow, inline, shared := tabulartest.Row, tabulartest.Inline, tabulartest.Shared
	sheet := xrow(1, inline("A1", "email"), inline("B1", "name")) + "<!-- a comment <with> markup -->"
	for r := 2; r <= 31; r++ {
		sheet += xrow(r, inline(fmt.Sprintf("A%d", r), fmt.Sprintf("amp%d@example.com", r)), shared(fmt.Sprintf("B%d", r), 1))
	}
	sheet += xrow(32, inline("A32", "<![CDATA[cd@example.com]]]>"), shared("B32", 0))
	data := tabulartest.Book{Sheet: sheet, Shared: []string{"Åsa", strings.Repeat("B", 900<<10)}}.Bytes(t)
	dir := t.TempDir()
	var got []row
	peak, _ := memory(func() {
		r := mustOpen(t, data, Options{TempDir: dir})
		got = readAll(t, r)
		r.Close()
	})
	if len(got) != 31 || got[0].n != 2 || len(got[0].cells[1]) != 900<<10 || !reflect.DeepEqual(got[30], row{32, []string{"cd@example.com]", "Åsa"}}) {
		t.Errorf("read %d rows, the last %+v", len(got), got[len(got)-1])
	}
	if peak > 64<<20 {
		t.Errorf("peak heap in use %d MiB", peak>>20)
	}
	noFilesIn(t, dir)

	var cells strings.Builder
	for c := range MaxColumns {
		name, _ := excelize.ColumnNumberToName(c + 1)
		cells.WriteString(inline(name+"1", "c"+name))
	}
	r := mustOpen(t, tabulartest.Book{Sheet: `<row r="1">` + cells.String() + `</row>`}.Bytes(t), Options{TempDir: dir})
	if len(r.Header()) != MaxColumns {
		t.Errorf("header of %d columns", len(r.Header()))
	}
}

// A row whose text the check before reading lets through but whose cells,
// formatted, are longer than the limit fails as a CSV row does: fatally,
// with the row's number.
func TestXLSXFormattedRowTooLong(t *testing.T) {
	row, inline := tabulartest.Row, tabulartest.Inline
	styles := `<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/></cellXfs></styleSheet>`
	// 50 + 5 bytes as saved, 50 + 1 + 10 read: 46300 is 2026-10-05.
	sheet := row(1, inline("A1", "email"), inline("B1", "date")) +
		row(2, inline("A2", "a@example.com"), `<c r="B2" s="1"><v>46300</v></c>`) +
		row(3, inline("A3", strings.Repeat("x", 50)), `<c r="B3" s="1"><v>46300</v></c>`)
	r := mustOpen(t, tabulartest.Book{Sheet: sheet, Styles: styles}.Bytes(t), Options{TempDir: t.TempDir(), MaxLineBytes: 60})
	x, err := r.Next()
	if err != nil || !reflect.DeepEqual(x.Cells, []string{"a@example.com", "2026-10-05"}) {
		t.Fatalf("row 2: %+v, %v", x, err)
	}
	_, err = r.Next()
	var re *RowError
	if !errors.As(err, &re) || !re.Fatal || re.Row != 3 || re.Reason != "it is longer than 60 bytes, the most that is read for one row" || !errors.Is(err, errLineTooLong) {
		t.Fatalf("row 3: %#v", err)
	}
	if _, again := r.Next(); again != err {
		t.Errorf("after the fatal error: %v", again)
	}
}
