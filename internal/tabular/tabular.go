package tabular

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"github.com/consentry/consentry/internal/errs"
)

// Limits used when Options leaves them zero.
const (
	DefaultMaxBytes     int64 = 2 << 30
	DefaultMaxLineBytes       = 1 << 20
	// MaxColumns is the most columns a header may name: Excel's own limit
	// (column XFD).
	MaxColumns = 16384
)

// Codes of the *errs.Error that Open returns for a file it cannot read.
const (
	CodeEmpty       = "file_empty"           // no bytes, or no row with any text
	CodeEncoding    = "unsupported_encoding" // text in none of the supported encodings, or binary
	CodeFormat      = "unsupported_format"   // .xls, a zip that is not a workbook, a corrupt workbook
	CodeTooLarge    = "file_too_large"       // more than Options.MaxBytes; a workbook beyond its other limits
	CodeLineTooLong = "line_too_long"        // the header line, or any row or text of a workbook, is longer than Options.MaxLineBytes
	CodeText        = "invalid_text"         // a row is not text in the file's encoding (decided by the rows before it)
	CodeHeader      = "invalid_header"       // a column without a name, a name twice, a quote misplaced, too many columns
)

// Text encodings, as Reader.Encoding reports them.
const (
	EncodingUTF8        = "utf-8" // without a byte order mark; plain ASCII too
	EncodingUTF8BOM     = "utf-8-bom"
	EncodingUTF16LE     = "utf-16le" // with a byte order mark, as every UTF-16 file read
	EncodingUTF16BE     = "utf-16be"
	EncodingWindows1252 = "windows-1252" // Latin-1 (ISO-8859-1) too, which it reads the same
)

// Encodings lists the text encodings Reader.Encoding reports.
var Encodings = []string{EncodingUTF8, EncodingUTF8BOM, EncodingUTF16LE, EncodingUTF16BE, EncodingWindows1252}

// EncodingName names an encoding Reader.Encoding reports as people know
// it ("UTF-8 with a byte order mark"); an unknown one as it is.
func EncodingName(encoding string) string {
	switch encoding {
	case EncodingUTF8:
		return "UTF-8"
	case EncodingUTF8BOM:
		return "UTF-8 with a byte order mark"
	case EncodingUTF16LE:
		return "UTF-16 little endian, with a byte order mark"
	case EncodingUTF16BE:
		return "UTF-16 big endian, with a byte order mark"
	case EncodingWindows1252:
		return "Windows-1252"
	}
	return encoding
}

// Formats returned by Reader.Format.
const (
	FormatCSV  = "csv"
	FormatXLSX = "xlsx"
)

// Options tunes Open. The zero value detects everything and applies the
// default limits.
type Options struct {
	// Delimiter, when not 0, is a text file's delimiter; otherwise it is
	// detected from the header line (see the package documentation).
	Delimiter rune
	// MaxBytes is the most bytes read from the file and, for a workbook,
	// the most its parts may unpack to; 0 is DefaultMaxBytes.
	MaxBytes int64
	// MaxLineBytes is the longest row of a text file, in bytes of UTF-8
	// text, and of a workbook, its cells' text together with a byte
	// between each two; 0 is DefaultMaxLineBytes.
	MaxLineBytes int
	// TempDir is where a workbook is unpacked; "" is os.TempDir().
	TempDir string
}

// Row is one row of data.
type Row struct {
	// Number counts rows as a spreadsheet program shows them, from 1 (the
	// header's row, unless blank rows come before it).
	Number int
	// Cells holds one trimmed value per header column. The slice is reused
	// by the next call of Next: copy what must outlive it.
	Cells []string
}

// RowError is a problem with one row, numbered as Row.Number is.
type RowError struct {
	Row    int
	Reason string
	// Fatal is set when the rest of the file cannot be read: Next returns
	// the same error from then on.
	Fatal bool
	// Err is the failure behind Reason when there is one (a read error).
	Err error
}

func (e *RowError) Error() string { return fmt.Sprintf("row %d: %s", e.Row, e.Reason) }

// Unwrap returns the failure behind the error, if any.
func (e *RowError) Unwrap() error { return e.Err }

// source reads the rows of one format: cells trimmed, blank rows skipped,
// each with its number. Its errors are *RowError or io.EOF.
type source interface {
	read() (cells []string, number int, err error)
	close() error
}

// Reader reads the rows of a file after its header.
type Reader struct {
	src       source
	format    string
	text      *textSource // nil for a workbook
	header    []string
	headerRow int
	cells     []string
	err       error // sticky: io.EOF or a fatal *RowError
	closed    bool
	closeErr  error
	padShorts bool // a workbook does not store empty cells at a row's end
}

// Open starts reading the file r holds: it detects the format, the
// encoding and the delimiter, and reads the header. The caller keeps
// ownership of r (Close does not close it) and must call Close when Open
// succeeds. Errors are described in the package documentation.
func Open(r io.Reader, opts Options) (*Reader, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	if d := opts.Delimiter; d != 0 && (d == '"' || d == '\r' || d == '\n' || d == utf8.RuneError || !utf8.ValidRune(d) || unicode.IsControl(d) && d != '\t') {
		return nil, fmt.Errorf("tabular: invalid delimiter %q", d)
	}
	in := bufio.NewReaderSize(&sizeLimit{r: r, left: opts.MaxBytes}, prefixSize)
	prefix, err := in.Peek(prefixSize)
	atEOF := errors.Is(err, io.EOF)
	switch {
	case errors.Is(err, errTooLarge):
		return nil, tooLarge(opts.MaxBytes)
	case err != nil && !atEOF:
		return nil, fmt.Errorf("tabular: read: %w", err)
	case len(prefix) == 0:
		return nil, fileError(CodeEmpty, "the file is empty")
	}
	rd := &Reader{}
	if bytes.HasPrefix(prefix, zipMagic) {
		rd.format, rd.padShorts = FormatXLSX, true
		rd.src, err = openXLSX(in, opts)
	} else {
		rd.format = FormatCSV
		rd.text, err = openText(in, prefix, atEOF, opts)
		rd.src = rd.text
	}
	if err != nil {
		return nil, err
	}
	if err := rd.readHeader(); err != nil {
		rd.Close()
		return nil, err
	}
	return rd, nil
}

// readHeader reads the first row with text as the header and checks it.
func (r *Reader) readHeader() error {
	cells, num, err := r.src.read()
	if err == io.EOF {
		return fileError(CodeEmpty, "the file is empty")
	}
	var re *RowError
	if errors.As(err, &re) {
		return headerRowError(re)
	}
	if err != nil {
		return err
	}
	headerError := func(format string, args ...any) error {
		e := fileError(CodeHeader, format, args...)
		e.Row = num
		return e
	}
	n := len(cells)
	for n > 0 && cells[n-1] == "" {
		n--
	}
	if n > MaxColumns {
		return headerError("the header names %d columns; at most %d are read", n, MaxColumns)
	}
	r.header, r.headerRow = make([]string, n), num
	seen := make(map[string]int, n)
	for i, c := range cells[:n] {
		c = strings.TrimFunc(c, func(r rune) bool { return r == '\uFEFF' || unicode.IsSpace(r) })
		if c == "" {
			return headerError("column %s of the header has no name; every column needs a name", columnName(i))
		}
		key := strings.ToLower(c)
		if j, ok := seen[key]; ok {
			return headerError("column %s of the header, %q, has the same name as column %s, %q; every column needs its own name",
				columnName(i), c, columnName(j), r.header[j])
		}
		seen[key] = i
		r.header[i] = c
	}
	r.cells = make([]string, n)
	return nil
}

// headerRowError turns a problem with the header row into Open's error.
func headerRowError(re *RowError) error {
	return rowFileError(re, "the header, ")
}

// FileError turns an error of Next that ends the reading (a *RowError
// with Fatal set) into the refusal of the whole file, as Open refuses
// one: an *errs.Error on the field "file" with the row, and one of the
// Code... codes. Other errors are returned as they are.
func FileError(err error) error {
	var re *RowError
	if !errors.As(err, &re) || !re.Fatal {
		return err
	}
	return rowFileError(re, "")
}

// rowFileError is the refusal of a file because of the row of re; what
// names the row in the message.
func rowFileError(re *RowError, what string) error {
	if re.Err != nil && !errors.Is(re.Err, errTooLarge) && !errors.Is(re.Err, errLineTooLong) {
		return fmt.Errorf("tabular: %w", re)
	}
	code := CodeHeader
	switch {
	case errors.Is(re.Err, errTooLarge):
		code = CodeTooLarge
	case errors.Is(re.Err, errLineTooLong):
		code = CodeLineTooLong
	case re.Fatal:
		code = CodeText
	}
	e := fileError(code, "%srow %d: %s", what, re.Row, re.Reason)
	e.Row = re.Row
	return e
}

// Header returns the column names: trimmed, non-empty, unique.
func (r *Reader) Header() []string { return append([]string(nil), r.header...) }

// Format returns FormatCSV (text, any delimiter) or FormatXLSX.
func (r *Reader) Format() string { return r.format }

// HeaderRow returns the number of the header's row: 1, unless blank rows
// come before it.
func (r *Reader) HeaderRow() int { return r.headerRow }

// Encoding returns a text file's encoding, one of Encodings; "" for a
// workbook. A file whose rows so far are plain ASCII reports
// EncodingUTF8 until a row decides otherwise: read to the end for the
// file's encoding.
func (r *Reader) Encoding() string {
	if r.text == nil {
		return ""
	}
	return r.text.enc.String()
}

// Delimiter returns a text file's delimiter; 0 for a workbook.
func (r *Reader) Delimiter() rune {
	if r.text == nil {
		return 0
	}
	return r.text.csv.Comma
}

// Next returns the next row with text. At the end it returns io.EOF; for a
// row that cannot be read, a *RowError (see RowError.Fatal), with the
// row's cells when it has more or fewer than the header. After Close it
// returns an error.
func (r *Reader) Next() (Row, error) {
	if r.err != nil {
		return Row{}, r.err
	}
	if r.closed {
		return Row{}, errors.New("tabular: Next after Close")
	}
	cells, num, err := r.src.read()
	if err != nil {
		if re, ok := err.(*RowError); !ok || re.Fatal {
			r.err = err
		}
		return Row{}, err
	}
	w := len(r.header)
	n := len(cells)
	for n > w && cells[n-1] == "" {
		n--
	}
	// A row of the wrong width comes with its cells as read, for what
	// looks at every cell of a file (an upload's addresses).
	if n > w {
		return Row{Number: num, Cells: cells[:n]}, &RowError{Row: num, Reason: fmt.Sprintf(
			"it has %d cells but the header names %d columns; column %s has a value but no name in the header",
			n, w, columnName(n-1))}
	}
	if n < w && !r.padShorts {
		return Row{Number: num, Cells: cells[:n]}, &RowError{Row: num, Reason: fmt.Sprintf(
			"it has %d cells but the header names %d columns", n, w)}
	}
	copy(r.cells, cells[:n])
	clear(r.cells[n:])
	return Row{Number: num, Cells: r.cells}, nil
}

// Close releases what Open took: a workbook's temporary files. It does not
// close the reader given to Open.
func (r *Reader) Close() error {
	if !r.closed {
		r.closed = true
		r.closeErr = r.src.close()
	}
	return r.closeErr
}

// trimBlank trims the cells of a row in place and reports whether the row
// is blank: no cell has text.
func trimBlank(cells []string) bool {
	blank := true
	for i, c := range cells {
		c = strings.TrimSpace(c)
		cells[i] = c
		blank = blank && c == ""
	}
	return blank
}

// columnName names the column with index i (from 0) as a spreadsheet user
// sees it and by its number: "C (3)".
func columnName(i int) string {
	name, err := excelize.ColumnNumberToName(i + 1)
	if err != nil {
		return fmt.Sprint(i + 1)
	}
	return fmt.Sprintf("%s (%d)", name, i+1)
}

func fileError(code, format string, args ...any) *errs.Error {
	return &errs.Error{Kind: errs.KindInvalid, Code: code, Field: "file", Message: fmt.Sprintf(format, args...)}
}

// rowTooLong says why a row longer than max bytes of text is refused, in
// a text file and a workbook alike.
func rowTooLong(max int) string {
	return fmt.Sprintf("it is longer than %s, the most that is read for one row", errs.Size(int64(max)))
}

func tooLarge(max int64) *errs.Error {
	return fileError(CodeTooLarge, "the file is larger than %s, the most that is read", errs.Size(max))
}
