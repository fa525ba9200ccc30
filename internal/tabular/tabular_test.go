package tabular

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"

	"github.com/consentry/consentry/internal/errs"
)

// row is a row read, its cells copied.
type row struct {
	n     int
	cells []string
}

// readAll reads every row to the end; it fails the test on any error.
func readAll(t *testing.T, r *Reader) []row {
	t.Helper()
	var rows []row
	for {
		got, err := r.Next()
		if err == io.EOF {
			return rows
		}
		if err != nil {
			t.Fatalf("Next after %d rows: %v", len(rows), err)
		}
		rows = append(rows, row{got.Number, append([]string(nil), got.Cells...)})
	}
}

func mustOpen(t *testing.T, data []byte, opts Options) *Reader {
	t.Helper()
	r, err := Open(bytes.NewReader(data), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// openError opens data, expects Open to refuse it with code and returns
// the message.
func openError(t *testing.T, data []byte, opts Options, code string) string {
	t.Helper()
	r, err := Open(bytes.NewReader(data), opts)
	if err == nil {
		r.Close()
		t.Fatalf("Open succeeded; want error %s", code)
	}
	e := errs.As(err)
	if e == nil || e.Kind != errs.KindInvalid || e.Field != "file" || e.Code != code {
		t.Fatalf("Open error = %#v (%v); want errs.Error %s on file", e, err, code)
	}
	return e.Message
}

// encodeCSV writes records with delimiter d in CRLF lines and encodes the
// text with enc (nil: UTF-8), after bom.
func encodeCSV(t *testing.T, records [][]string, d rune, enc encoding.Encoding, bom string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Comma = d
	w.UseCRLF = true
	if err := w.WriteAll(records); err != nil {
		t.Fatal(err)
	}
	text := b.Bytes()
	if enc != nil {
		var err error
		if text, err = enc.NewEncoder().Bytes(text); err != nil {
			t.Fatal(err)
		}
	}
	return append([]byte(bom), text...)
}

var sample = [][]string{
	{"E-post", " Förnamn ", "Efternamn", "Anteckning"},
	{"anna@example.se", "Åsa", "Öberg", "café, ë; ü\t€"},
	{"piet@example.nl", "Piet", "Müller", "says \"hej\";\nsecond line, too"},
	{"", "", "", ""},
	{"x@example.com", "  Märta  ", "", "ä"},
}

var sampleRows = []row{
	{2, []string{"anna@example.se", "Åsa", "Öberg", "café, ë; ü\t€"}},
	{3, []string{"piet@example.nl", "Piet", "Müller", "says \"hej\";\nsecond line, too"}},
	{5, []string{"x@example.com", "Märta", "", "ä"}},
}

func TestEncodingsAndDelimiters(t *testing.T) {
	encodings := []struct {
		name string
		enc  encoding.Encoding
		bom  string
	}{
		{"utf-8", nil, ""},
		{"utf-8-bom", nil, "\xEF\xBB\xBF"},
		{"utf-16le", unicode.UTF16(unicode.LittleEndian, unicode.UseBOM), ""},
		{"utf-16be", unicode.UTF16(unicode.BigEndian, unicode.UseBOM), ""},
		{"windows-1252", charmap.Windows1252, ""},
	}
	for _, e := range encodings {
		for _, d := range []rune{';', ',', '\t'} {
			t.Run(fmt.Sprintf("%s bom=%t %q", e.name, e.bom != "", d), func(t *testing.T) {
				data := encodeCSV(t, sample, d, e.enc, e.bom)
				r := mustOpen(t, data, Options{})
				if r.Format() != FormatCSV || r.Encoding() != e.name || r.Delimiter() != d {
					t.Errorf("format, encoding, delimiter = %s, %s, %q; want csv, %s, %q", r.Format(), r.Encoding(), r.Delimiter(), e.name, d)
				}
				if want := []string{"E-post", "Förnamn", "Efternamn", "Anteckning"}; !reflect.DeepEqual(r.Header(), want) {
					t.Errorf("header = %q; want %q", r.Header(), want)
				}
				if got := readAll(t, r); !reflect.DeepEqual(got, sampleRows) {
					t.Errorf("rows = %+v\nwant %+v", got, sampleRows)
				}
			})
		}
	}
}

func TestDelimiterDetection(t *testing.T) {
	for _, tc := range []struct {
		text string
		want rune
	}{
		{"a;b,c;d\n", ';'},
		{"a,b,c;d\n", ','},
		{"a\tb\tc,d\n", '\t'},
		{"a;b,c\n", ';'},                // tie: ;
		{"a,b\tc\n", ','},               // tie: , before tab
		{"email\nx@example.com\n", ';'}, // one column
		{`"a;b";"c;d";e` + "\n1,2,3\n", ';'},
		{`"x, y, z",b` + "\n", ','}, // inside quotes does not count
		{"\n;;\n  \na,b,c\n", ','},  // lines without text before the header
		{"sep=|\na|b\n", '|'},
	} {
		r := mustOpen(t, []byte(tc.text), Options{})
		if r.Delimiter() != tc.want {
			t.Errorf("%q: delimiter %q; want %q", tc.text, r.Delimiter(), tc.want)
		}
	}
	r := mustOpen(t, []byte("a,b;c\n1,2;3\n"), Options{Delimiter: ','})
	if got := readAll(t, r); r.Delimiter() != ',' || !reflect.DeepEqual(r.Header(), []string{"a", "b;c"}) || !reflect.DeepEqual(got, []row{{2, []string{"1", "2;3"}}}) {
		t.Errorf("Options.Delimiter: header %q rows %+v", r.Header(), got)
	}
}

func TestRowNumbers(t *testing.T) {
	// Blank lines before the header and between rows count; a cell with
	// line breaks is one row; "sep=" is not a row; CR line endings work.
	for _, tc := range []struct {
		name, text string
		header     int
		want       []row
	}{
		{"blank lines", "\n\r\nname;city\n\nAnna;Lund\n   \n;;\n\"Piet\n\nJan\";Gouda\nBo;Ed\n", 3,
			[]row{{5, []string{"Anna", "Lund"}}, {8, []string{"Piet\n\nJan", "Gouda"}}, {9, []string{"Bo", "Ed"}}}},
		{"sep line", "sep=;\r\nname;city\r\nAnna;Lund\r\n", 1, []row{{2, []string{"Anna", "Lund"}}}},
		{"CR only", "name;city\rAnna;Lund\r\rBo;Ed\r", 1, []row{{2, []string{"Anna", "Lund"}}, {4, []string{"Bo", "Ed"}}}},
		{"no final line break", "name;city\nAnna;Lund", 1, []row{{2, []string{"Anna", "Lund"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustOpen(t, []byte(tc.text), Options{})
			if got := readAll(t, r); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rows = %+v; want %+v", got, tc.want)
			}
		})
	}
}

func TestASCIIStartDecidesLater(t *testing.T) {
	// The first 64 KiB are ASCII; the first other row decides the encoding.
	start := "email;name\r\n" + strings.Repeat("someone@example.com;Someone\r\n", 4000)
	for _, tc := range []struct {
		name, tail, enc string
	}{
		{"windows-1252", "m@example.com;M\xfcller \x80\r\nz@example.com;Z\xe5\r\n", "windows-1252"},
		{"utf-8", "m@example.com;Müller €\r\nz@example.com;Zå\r\n", "utf-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustOpen(t, []byte(start+tc.tail), Options{})
			if r.Encoding() != "utf-8" {
				t.Errorf("encoding before the rows = %s; want utf-8", r.Encoding())
			}
			rows := readAll(t, r)
			last := rows[len(rows)-2:]
			want := []row{{4002, []string{"m@example.com", "Müller €"}}, {4003, []string{"z@example.com", "Zå"}}}
			if !reflect.DeepEqual(last, want) || r.Encoding() != tc.enc {
				t.Errorf("last rows %+v, encoding %s; want %+v, %s", last, r.Encoding(), want, tc.enc)
			}
		})
	}
}

// fatalAt reads to the first error, checks that it is a fatal *RowError
// for row n whose reason holds words, and that Next repeats it.
func fatalAt(t *testing.T, r *Reader, n int, words string) {
	t.Helper()
	for {
		_, err := r.Next()
		if err == nil {
			continue
		}
		var re *RowError
		if !errors.As(err, &re) || !re.Fatal || re.Row != n || !strings.Contains(re.Reason, words) {
			t.Fatalf("error %#v (%v); want a fatal RowError for row %d saying %q", re, err, n, words)
		}
		if _, again := r.Next(); again != err {
			t.Fatalf("Next after a fatal error = %v; want the same error", again)
		}
		return
	}
}

func TestEncodingChangesMidFile(t *testing.T) {
	// UTF-8 (decided by the header) and then a Windows-1252 row.
	// (Within the first 64 KiB such a file is Windows-1252.)
	utf8Start := "e-post;namn\n" + strings.Repeat("åsa@example.se;Åsa\n", 5000)
	r := mustOpen(t, []byte(utf8Start+"bo@example.se;B\xf6rje\nc@example.se;C\n"), Options{})
	fatalAt(t, r, 5002, "not valid UTF-8")
	// Windows-1252 and then a byte it does not define.
	r = mustOpen(t, []byte("e-post;namn\nanna@example.se;\xc5sa\n"+strings.Repeat("x;y\n", 20000)+"bo@example.se;B\x81rje\n"), Options{})
	fatalAt(t, r, 20003, "neither in UTF-8 nor in Windows-1252")
	// A NUL byte after the first 64 KiB.
	r = mustOpen(t, []byte("a;b\n"+strings.Repeat("x;y\n", 20000)+"x\x00;y\n"), Options{})
	fatalAt(t, r, 20002, "NUL")
}

func TestRaggedRows(t *testing.T) {
	text := "email;name;city\n" +
		"a@example.com;Anna;Lund\n" +
		"b@example.com;Bo\n" + // too few
		"c@example.com;Cia;Ed;extra\n" + // too many
		"d@example.com;Dan;Umeå;;\n" + // empty cells after the last column: fine
		"e@example.com;Eva;\"Mora\"x\n" + // quote in the wrong place
		"f@example.com;Fia;\"Y\"\"stad\"\n"
	r := mustOpen(t, []byte(text), Options{})
	type result struct {
		n     int
		cells []string
		err   string
	}
	var got []result
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		var re *RowError
		switch {
		case errors.As(err, &re) && !re.Fatal:
			got = append(got, result{n: re.Row, err: re.Reason})
		case err != nil:
			t.Fatalf("Next: %v", err)
		default:
			got = append(got, result{n: row.Number, cells: append([]string(nil), row.Cells...)})
		}
	}
	want := []result{
		{n: 2, cells: []string{"a@example.com", "Anna", "Lund"}},
		{n: 3, err: "it has 2 cells but the header names 3 columns"},
		{n: 4, err: "it has 4 cells but the header names 3 columns; column D (4) has a value but no name in the header"},
		{n: 5, cells: []string{"d@example.com", "Dan", "Umeå"}},
		{n: 6, err: `a cell enclosed in quotes (") is not closed, or holds a quote that is not doubled ("")`},
		{n: 7, cells: []string{"f@example.com", "Fia", `Y"stad`}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	r = mustOpen(t, []byte("name;size\nTV;42\" screen\nRadio;small\n"), Options{})
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "row 2: a cell that does not begin with a quote") {
		t.Errorf("bare quote: %v", err)
	}
	if row, err := r.Next(); err != nil || row.Number != 3 {
		t.Errorf("after a bare quote: %v, %v", row, err)
	}
}

func TestHeaderOnly(t *testing.T) {
	for _, text := range []string{"email;name", "email;name\r\n", "email;name\n\n;;\n   \n"} {
		r := mustOpen(t, []byte(text), Options{})
		if !reflect.DeepEqual(r.Header(), []string{"email", "name"}) {
			t.Errorf("%q: header %q", text, r.Header())
		}
		for range 2 {
			if _, err := r.Next(); err != io.EOF {
				t.Errorf("%q: Next = %v; want io.EOF", text, err)
			}
		}
	}
}

func TestEmptyFile(t *testing.T) {
	for _, text := range []string{"", "\xEF\xBB\xBF", "\xFF\xFE", "\n\r\n  \n", ";;;\n;;\n", "\t\t\n\t\n"} {
		if msg := openError(t, []byte(text), Options{}, CodeEmpty); msg != "the file is empty" {
			t.Errorf("%q: %s", text, msg)
		}
	}
}

func TestUnsupportedEncoding(t *testing.T) {
	utf16NoBOM, _ := unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewEncoder().Bytes([]byte("email;name\r\na@example.com;Åsa\r\n"))
	binary := make([]byte, 4096)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	for name, data := range map[string][]byte{
		"utf-16 without BOM": utf16NoBOM,
		"binary":             binary,
		"png":                []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
		"undefined 0x81":     []byte("email;name\na@example.com;\x81sa\n"),
		"undefined 0x9d":     []byte("email;name\na@example.com;\xe5\x9d\n"),
		"utf-32":             []byte("\xFF\xFE\x00\x00e\x00\x00\x00"),
	} {
		msg := openError(t, data, Options{}, CodeEncoding)
		for _, enc := range []string{"UTF-8", "UTF-16", "Windows-1252"} {
			if !strings.Contains(msg, enc) {
				t.Errorf("%s: message %q does not name %s", name, msg, enc)
			}
		}
	}
	msg := openError(t, append([]byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}, make([]byte, 512)...), Options{}, CodeFormat)
	if !strings.Contains(msg, ".xls") {
		t.Errorf("OLE file: %s", msg)
	}
}

// A file in none of the supported encodings is refused with the row and
// the byte where the first of them fails, numbered as the reader numbers
// rows: blank lines counted, a quoted cell with line breaks one row, the
// "sep=" line not.
func TestUnsupportedEncodingNamesRowAndByte(t *testing.T) {
	utf16NoBOM, _ := unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewEncoder().Bytes([]byte("email;name\r\n"))
	for _, tc := range []struct {
		name, data string
		row        int
		byte       int64
		says       string
	}{
		{"utf-32 le", "\xFF\xFE\x00\x00e\x00\x00\x00", 1, 1, "row 1, byte 1: the file begins with the byte order mark of UTF-32"},
		{"utf-32 be", "\x00\x00\xFE\xFF\x00\x00\x00e", 1, 1, "byte order mark of UTF-32"},
		{"utf-16 without BOM", string(utf16NoBOM), 1, 2, "row 1, byte 2: the file holds a NUL byte"},
		{"png", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 3, 9, "row 3, byte 9: the file holds a NUL byte"},
		{"undefined byte", "email;name\na@example.com;\x81sa\n", 2, 26,
			"row 2, byte 26: the byte 0x81 is a character in none of the supported encodings: the file is not UTF-8 (row 2, byte 26 is not valid UTF-8), and Windows-1252 leaves 0x81 undefined"},
		{"Latin-1, then an undefined byte", "name\nAnna\n\xc5sa\nBo\n\nX\x90\n", 6, 20, "row 6, byte 20: the byte 0x90 is a character in none of the supported encodings: the file is not UTF-8 (row 3, byte 11 is not valid UTF-8)"},
		{"quoted line breaks", "name;note\n\"Anna\";\"one\ntwo \"\"3\"\"\nthree\"\nBo;\x81\n", 3, 43, "row 3, byte 43"},
		{"blank lines and sep", "sep=;\r\n\r\nname;note\r\nBo;\x8d\r\n", 3, 24, "row 3, byte 24"},
		{"a bare quote is a character", "name;size\nTV;42\" screen\nBo;\x8f\n", 3, 28, "row 3, byte 28"},
		{"CR alone", "name\rAnna\rB\x9d\r", 3, 12, "row 3, byte 12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(strings.NewReader(tc.data), Options{})
			e := errs.As(err)
			if e == nil || e.Code != CodeEncoding || e.Field != "file" || e.Row != tc.row || e.Byte != tc.byte || !strings.Contains(e.Message, tc.says) {
				t.Fatalf("error %#v (%v); want %s on file, row %d, byte %d, saying %q", e, err, CodeEncoding, tc.row, tc.byte, tc.says)
			}
			if !strings.Contains(e.Message, "UTF-16 little or big endian with a byte order mark") {
				t.Errorf("the message does not name the supported encodings: %s", e.Message)
			}
		})
	}
}

// A problem with a later row that ends the reading refuses the file, as
// FileError gives it, with that row; an error that is not one is left
// alone.
func TestFileErrorNamesTheRow(t *testing.T) {
	r := mustOpen(t, []byte("e-post;namn\nanna@example.se;\xc5sa\n"+strings.Repeat("x;y\n", 20000)+"bo@example.se;B\x81rje\n"), Options{})
	var err error
	for err == nil {
		_, err = r.Next()
	}
	e := errs.As(FileError(err))
	if e == nil || e.Code != CodeText || e.Field != "file" || e.Row != 20003 || !strings.HasPrefix(e.Message, "row 20003: it holds a byte") {
		t.Fatalf("FileError = %#v; want %s on file, row 20003", e, CodeText)
	}
	if got := FileError(io.ErrUnexpectedEOF); got != io.ErrUnexpectedEOF {
		t.Errorf("FileError of another error = %v", got)
	}
	ragged := &RowError{Row: 3, Reason: "it has 2 cells"}
	if got := FileError(ragged); got != ragged {
		t.Errorf("FileError of a row that fails alone = %v", got)
	}
}

// The header's row is told, and a header that is refused names it.
func TestHeaderRow(t *testing.T) {
	if r := mustOpen(t, []byte("\n;;\nemail;name\na@example.com;A\n"), Options{}); r.HeaderRow() != 3 {
		t.Errorf("header row %d; want 3", r.HeaderRow())
	}
	_, err := Open(strings.NewReader("\nemail;;name\n"), Options{})
	if e := errs.As(err); e == nil || e.Code != CodeHeader || e.Row != 2 {
		t.Errorf("a header without a name: %#v", e)
	}
}

func TestBadHeader(t *testing.T) {
	for _, tc := range []struct {
		text, code, want string
	}{
		{"Email;Name;email\n", CodeHeader, `column C (3) of the header, "email", has the same name as column A (1), "Email"`},
		{"email;;city\n", CodeHeader, "column B (2) of the header has no name"},
		{" ;email\n", CodeHeader, "column A (1) of the header has no name"},
		{"email;\"na\"me\n", CodeHeader, "the header, row 1: a cell enclosed in quotes"},
	} {
		if msg := openError(t, []byte(tc.text), Options{}, tc.code); !strings.Contains(msg, tc.want) {
			t.Errorf("%q: %s; want %q", tc.text, msg, tc.want)
		}
	}
	// Empty names after the last named column are not columns.
	r := mustOpen(t, []byte("email;name;;\na;b;;\n"), Options{})
	if got := readAll(t, r); !reflect.DeepEqual(r.Header(), []string{"email", "name"}) || !reflect.DeepEqual(got, []row{{2, []string{"a", "b"}}}) {
		t.Errorf("trailing empty names: header %q rows %+v", r.Header(), got)
	}
	var many strings.Builder
	for i := range MaxColumns + 1 {
		fmt.Fprintf(&many, "c%d;", i)
	}
	openError(t, []byte(many.String()), Options{}, CodeHeader)
}

// longLine reads as head followed by n bytes of fill and a line break,
// made on the fly: no 50 MB slice is ever made.
type longLine struct {
	head   []byte
	n      int64
	served int64
}

func (l *longLine) Read(p []byte) (int, error) {
	i := 0
	for i < len(p) {
		switch pos := l.served; {
		case pos < int64(len(l.head)):
			k := copy(p[i:], l.head[pos:])
			i += k
			l.served += int64(k)
		case pos < int64(len(l.head))+l.n:
			k := int(min(int64(len(p)-i), int64(len(l.head))+l.n-pos))
			for j := range k {
				p[i+j] = 'x'
			}
			i += k
			l.served += int64(k)
		case pos == int64(len(l.head))+l.n:
			p[i] = '\n'
			i++
			l.served++
		default:
			if i == 0 {
				return 0, io.EOF
			}
			return i, nil
		}
	}
	return i, nil
}

func TestLongLine(t *testing.T) {
	const size = 50 << 20
	measure := func(fn func()) (heap, total uint64) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fn()
		runtime.ReadMemStats(&after)
		return after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc), after.TotalAlloc - before.TotalAlloc
	}
	check := func(name string, src *longLine, heap, total uint64) {
		t.Helper()
		if heap > 16<<20 || total > 16<<20 {
			t.Errorf("%s: heap grew %d bytes, %d allocated; want under 16 MiB", name, heap, total)
		}
		if src.served > 4<<20 {
			t.Errorf("%s: read %d bytes of the line; want it to stop soon after the limit", name, src.served)
		}
	}

	// The header is the long line.
	src := &longLine{n: size}
	var err error
	heap, total := measure(func() { _, err = Open(src, Options{}) })
	if e := errs.As(err); e == nil || e.Code != CodeLineTooLong || !strings.Contains(e.Message, "row 1") || !strings.Contains(e.Message, "1 MiB") {
		t.Fatalf("Open = %v; want %s naming row 1 and the limit", err, CodeLineTooLong)
	}
	check("header", src, heap, total)

	// A row is.
	src = &longLine{head: []byte("email;name\r\na@example.com;Anna\r\n\r\nb@example.com;"), n: size}
	r, err := Open(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	heap, total = measure(func() { fatalAt(t, r, 4, "longer than 1 MiB") })
	check("row", src, heap, total)

	// Just over the limit fails; at the limit reads.
	line := "a;" + strings.Repeat("y", 98) // 100 bytes
	r = mustOpen(t, []byte("h;i\n"+line+"\n"+line+"z\n"), Options{MaxLineBytes: 100})
	if got, err := r.Next(); err != nil || got.Number != 2 {
		t.Fatalf("a row at the limit: %v, %v", got, err)
	}
	fatalAt(t, r, 3, "longer than 100 bytes")
}

func TestMaxBytes(t *testing.T) {
	// Within the first 64 KiB, Open finds the file too large.
	text := []byte("email;name\na@example.com;Anna\nb@example.com;Bo\n")
	openError(t, text, Options{MaxBytes: int64(len(text) - 1)}, CodeTooLarge)
	mustOpen(t, text, Options{MaxBytes: int64(len(text))})

	// Beyond them, Next does, on the row the limit cuts.
	text = []byte("email;name\r\n" + strings.Repeat("a@example.com;Anna\r\n", 10000)) // 12 + 20 bytes a row
	r := mustOpen(t, text, Options{MaxBytes: 12 + 20*5000 + 10})
	fatalAt(t, r, 5002, "larger than")
	r = mustOpen(t, text, Options{MaxBytes: int64(len(text))})
	if got := readAll(t, r); len(got) != 10000 {
		t.Errorf("rows at exactly MaxBytes: %d", len(got))
	}
}

// failing returns its data and then err.
type failing struct {
	data []byte
	err  error
}

func (f *failing) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReadError(t *testing.T) {
	broken := errors.New("connection reset")
	head := "email;name\n" + strings.Repeat("a@example.com;Anna\n", 5000)
	r, err := Open(&failing{data: []byte(head), err: broken}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fatalAt(t, r, 5002, "connection reset")
	if _, err := r.Next(); !errors.Is(err, broken) {
		t.Errorf("error %v does not wrap the read error", err)
	}
	if _, err := Open(&failing{err: broken}, Options{}); !errors.Is(err, broken) || errs.As(err) != nil {
		t.Errorf("Open of a failing reader = %v; want the read error, not a file error", err)
	}
}
