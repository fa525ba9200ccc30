package tabular

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"github.com/consentry/consentry/internal/errs"
)

const (
	// prefixSize is how much of a file decides its encoding, and how much
	// of its text its delimiter: 64 KiB, read ahead in any case.
	prefixSize = 64 << 10
	// bufSize is the buffer encoding/csv reads through.
	bufSize = 64 << 10
)

// supported names the encodings in errors.
const supported = "UTF-8 (with or without a byte order mark), UTF-16 little or big endian with a byte order mark, and Windows-1252"

var (
	zipMagic   = []byte("PK\x03\x04")
	oleMagic   = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}
	bomUTF8    = []byte{0xEF, 0xBB, 0xBF}
	bomUTF16LE = []byte{0xFF, 0xFE}
	bomUTF16BE = []byte{0xFE, 0xFF}
)

// textEncoding is a text file's encoding as far as it is known.
type textEncoding int

const (
	// encASCII: no byte above 0x7F so far; UTF-8 or Windows-1252, which
	// read ASCII the same. The first row with other bytes decides.
	encASCII textEncoding = iota
	encUTF8
	encUTF8BOM // read as encUTF8; reported apart
	encUTF16LE
	encUTF16BE
	enc1252
)

// String is the encoding as Reader.Encoding reports it: a file that is
// plain ASCII so far is UTF-8, which reads it the same.
func (e textEncoding) String() string {
	switch e {
	case encUTF8BOM:
		return EncodingUTF8BOM
	case encUTF16LE:
		return EncodingUTF16LE
	case encUTF16BE:
		return EncodingUTF16BE
	case enc1252:
		return EncodingWindows1252
	}
	return EncodingUTF8
}

// textSource reads the rows of a text file through encoding/csv.
type textSource struct {
	csv     *csv.Reader
	lim     *recordLimit
	enc     textEncoding
	maxLine int
	maxSize int64
	in      *bufio.Reader // what encoding/csv reads
	row     int           // the number of the last row read, blank rows counted
	buf     []byte
}

// openText detects a text file's encoding from prefix (the first bytes in,
// all of them when atEOF) and its delimiter from its header line, and
// returns the source that reads its rows.
func openText(in *bufio.Reader, prefix []byte, atEOF bool, opts Options) (*textSource, error) {
	enc, bom, err := detectEncoding(prefix, atEOF)
	if err != nil {
		return nil, err
	}
	if _, err := in.Discard(bom); err != nil {
		return nil, fmt.Errorf("tabular: read: %w", err)
	}
	var decoded io.Reader = in
	switch enc {
	case encUTF16LE:
		decoded = transform.NewReader(in, unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewDecoder())
	case encUTF16BE:
		decoded = transform.NewReader(in, unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM).NewDecoder())
	}
	// The limit allows for what the buffer above it has read ahead of the
	// record; the record's own length is checked exactly once read.
	lim := &recordLimit{r: decoded, max: int64(opts.MaxLineBytes) + bufSize}
	buf := bufio.NewReaderSize(lim, bufSize)
	// An error here is met again by the first read: the readers below are
	// sticky.
	win, _ := buf.Peek(bufSize)

	delim := opts.Delimiter
	if d, n := sepLine(win); n > 0 {
		if _, err := buf.Discard(n); err != nil {
			return nil, fmt.Errorf("tabular: read: %w", err)
		}
		win = win[n:]
		if delim == 0 {
			delim = d
		}
	}
	if delim == 0 {
		delim = detectDelimiter(win)
	}
	src := buf
	if bytes.IndexByte(win, '\n') < 0 && bytes.IndexByte(win, '\r') >= 0 {
		src = bufio.NewReaderSize(crToLF{buf}, bufSize)
	}
	cr := csv.NewReader(src)
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	// Leading spaces before a quoted cell ("a; "b;c"") are common by hand;
	// encoding/csv would also skip a white-space delimiter as one.
	cr.TrimLeadingSpace = delim != '\t' && delim != ' '
	return &textSource{csv: cr, in: src, lim: lim, enc: enc, maxLine: opts.MaxLineBytes, maxSize: opts.MaxBytes}, nil
}

// detectEncoding decides a text file's encoding from its first bytes and
// returns the length of its byte order mark, or refuses the file with
// the row and the byte where the problem is.
func detectEncoding(prefix []byte, atEOF bool) (textEncoding, int, error) {
	switch {
	case bytes.HasPrefix(prefix, bomUTF8):
		return encUTF8BOM, len(bomUTF8), nil
	case bytes.HasPrefix(prefix, []byte{0xFF, 0xFE, 0, 0}), bytes.HasPrefix(prefix, []byte{0, 0, 0xFE, 0xFF}):
		return 0, 0, unsupportedAt(prefix, 0, "the file begins with the byte order mark of UTF-32, an encoding that is not read")
	case bytes.HasPrefix(prefix, bomUTF16LE):
		return encUTF16LE, len(bomUTF16LE), nil
	case bytes.HasPrefix(prefix, bomUTF16BE):
		return encUTF16BE, len(bomUTF16BE), nil
	case bytes.HasPrefix(prefix, oleMagic):
		return 0, 0, fileError(CodeFormat, "the file is an old Excel workbook (.xls) or a password-protected one, which cannot be read; save it as an Excel workbook (.xlsx) without a password, or as CSV UTF-8")
	case bytes.HasPrefix(prefix, []byte("PK\x05\x06")), bytes.HasPrefix(prefix, []byte("PK\x07\x08")):
		return 0, 0, notWorkbook()
	}
	if i := bytes.IndexByte(prefix, 0); i >= 0 {
		return 0, 0, unsupportedAt(prefix, i, "the file holds a NUL byte, which text does not (UTF-16 is read only with its byte order mark)")
	}
	p := prefix
	if !atEOF {
		p = withoutPartialRune(p)
	}
	bad := invalidUTF8(p)
	if bad < 0 {
		if isASCII(p) {
			return encASCII, 0, nil
		}
		return encUTF8, 0, nil
	}
	for i, c := range prefix {
		if undefined1252(c) {
			return 0, 0, unsupportedAt(prefix, i, fmt.Sprintf(
				"the byte 0x%02X is a character in none of the supported encodings: the file is not UTF-8 (%s is not valid UTF-8), and Windows-1252 leaves 0x%02X undefined",
				c, where(prefix, bad), c))
		}
	}
	return enc1252, 0, nil
}

// invalidUTF8 returns the offset of the first byte of p that is not
// part of valid UTF-8; -1 when p is valid UTF-8.
func invalidUTF8(p []byte) int {
	for i := 0; i < len(p); {
		if p[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// unsupportedAt refuses a file whose first bytes, prefix, are text in
// none of the supported encodings, because of the byte at offset off:
// the error names the row and the byte, and says why.
func unsupportedAt(prefix []byte, off int, why string) error {
	e := fileError(CodeEncoding, "%s: %s; the supported encodings are %s: save it as CSV UTF-8 or as an Excel workbook (.xlsx)",
		where(prefix, off), why, supported)
	e.Row, e.Byte = rowAt(prefix, off), int64(off)+1
	return e
}

// where names the row and the byte of the offset off of prefix in a
// message.
func where(prefix []byte, off int) string {
	return fmt.Sprintf("row %d, byte %d", rowAt(prefix, off), off+1)
}

// rowAt returns the number of the row that the byte at offset off of
// text (a file's first bytes, without a byte order mark) is in, numbered as the
// reader numbers rows: blank lines counted, a line break inside a quoted
// cell not, Excel's "sep=" line not; lines end in LF or CRLF, or all in
// CR alone when text has no LF.
func rowAt(text []byte, off int) int {
	off = max(0, min(off, len(text)))
	delim, n := sepLine(text)
	if n == 0 {
		delim = detectDelimiter(text)
	} else if off < n {
		return 1
	}
	crOnly := bytes.IndexByte(text, '\n') < 0
	row, quoted, fieldStart := 1, false, true
	for i := n; i < off; i++ {
		c := text[i]
		switch {
		case quoted:
			if c == '"' {
				if i+1 < len(text) && text[i+1] == '"' {
					i++
				} else {
					quoted = false
				}
			}
		case c == '"' && fieldStart:
			quoted, fieldStart = true, false
		case rune(c) == delim:
			fieldStart = true
		case c == '\n' || c == '\r' && crOnly:
			row++
			fieldStart = true
		case c == '\r':
			// the LF after it ends the line; a CR alone is a character
		case c == ' ' && delim != ' ' && delim != '\t':
			// encoding/csv trims spaces before a quoted cell.
		default:
			fieldStart = false
		}
	}
	return row
}

// withoutPartialRune drops the start of a UTF-8 sequence that the end of p
// cuts off.
func withoutPartialRune(p []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(p); i++ {
		c := p[len(p)-i]
		if c < utf8.RuneSelf {
			break
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(p[len(p)-i:]) {
				return p[:len(p)-i]
			}
			break
		}
	}
	return p
}

func isASCII[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// undefined1252 reports a byte that Windows-1252 leaves without a
// character.
func undefined1252(c byte) bool {
	return c == 0x81 || c == 0x8D || c == 0x8F || c == 0x90 || c == 0x9D
}

// sepLine reads Excel's "sep=X" first line: the delimiter X and the
// line's length with its line break; n is 0 when there is none.
func sepLine(win []byte) (delim rune, n int) {
	const sep = "sep="
	if !bytes.HasPrefix(win, []byte(sep)) {
		return 0, 0
	}
	d, size := utf8.DecodeRune(win[len(sep):])
	if d == utf8.RuneError || d == '"' || d == '\r' || d == '\n' {
		return 0, 0
	}
	n = len(sep) + size
	switch rest := win[n:]; {
	case len(rest) == 0:
	case bytes.HasPrefix(rest, []byte("\r\n")):
		n += 2
	case rest[0] == '\n' || rest[0] == '\r':
		n++
	default:
		return 0, 0
	}
	return d, n
}

// detectDelimiter counts ";", "," and tab outside quotes in the first line
// with text of win and returns the most frequent; a tie goes to ";", then
// ",", then tab (see the package documentation).
func detectDelimiter(win []byte) rune {
	delims := [...]rune{';', ',', '\t'}
	var counts [len(delims)]int
	quoted, text := false, false
scan:
	for _, c := range win {
		if c == '"' {
			quoted, text = !quoted, true
			continue
		}
		if quoted {
			continue
		}
		switch c {
		case ';':
			counts[0]++
		case ',':
			counts[1]++
		case '\t':
			counts[2]++
		case '\n', '\r':
			if text {
				break scan
			}
			counts = [len(delims)]int{} // a line of delimiters and spaces only
		case ' ':
		default:
			text = true
		}
	}
	best := 0
	for i := range counts {
		if counts[i] > counts[best] {
			best = i
		}
	}
	return delims[best]
}

// read returns the next row with text, its cells decoded and trimmed.
func (s *textSource) read() ([]string, int, error) {
	for {
		s.skipEmptyLines()
		s.lim.reset()
		rec, err := s.csv.Read()
		s.row++
		if err != nil {
			return nil, s.row, s.readError(err)
		}
		size := len(rec) - 1
		for _, c := range rec {
			size += len(c)
		}
		if size > s.maxLine {
			return nil, s.row, s.tooLong()
		}
		if reason := s.decode(rec); reason != "" {
			return nil, s.row, &RowError{Row: s.row, Reason: reason, Fatal: true}
		}
		if !trimBlank(rec) {
			return rec, s.row, nil
		}
	}
}

// skipEmptyLines reads past empty lines, counting each as a row.
// encoding/csv would skip them too, uncounted; as it reads no further
// than the end of a record from a bufio.Reader, the lines before the next
// record are the first bytes of s.in.
func (s *textSource) skipEmptyLines() {
	for {
		s.lim.reset()
		b, _ := s.in.Peek(2)
		n := 0
		switch {
		case len(b) > 0 && b[0] == '\n':
			n = 1
		case len(b) == 2 && b[0] == '\r' && b[1] == '\n':
			n = 2
		default:
			return
		}
		s.in.Discard(n)
		s.row++
	}
}

func (s *textSource) tooLong() *RowError {
	return &RowError{Row: s.row, Fatal: true, Err: errLineTooLong,
		Reason: rowTooLong(s.maxLine) + `; a quote (") that opens a cell and is never closed makes the rest of the file one cell`}
}

// readError turns an error of encoding/csv into the row's error.
func (s *textSource) readError(err error) error {
	if err == io.EOF {
		return io.EOF
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) && (pe.Err == csv.ErrBareQuote || pe.Err == csv.ErrQuote) {
		reason := `a cell that does not begin with a quote (") holds one; a cell with quotes must be enclosed in quotes, and each quote inside doubled ("")`
		if pe.Err == csv.ErrQuote {
			reason = `a cell enclosed in quotes (") is not closed, or holds a quote that is not doubled ("")`
		}
		return &RowError{Row: s.row, Reason: reason}
	}
	switch {
	case errors.Is(err, errLineTooLong):
		return s.tooLong()
	case errors.Is(err, errTooLarge):
		return &RowError{Row: s.row, Fatal: true, Err: err, Reason: fmt.Sprintf(
			"the file is larger than %s, the most that is read", errs.Size(s.maxSize))}
	}
	return &RowError{Row: s.row, Fatal: true, Err: err, Reason: "the file could not be read from here on: " + err.Error()}
}

// decode checks that the cells are text in the file's encoding, decodes
// them from Windows-1252 when that is it, and returns why not when they
// are not.
func (s *textSource) decode(rec []string) string {
	for _, c := range rec {
		if strings.IndexByte(c, 0) >= 0 {
			return "it holds a NUL character, which text does not: the file is not text in one of the supported encodings, " + supported
		}
	}
	switch s.enc {
	case encUTF8, encUTF8BOM:
		for _, c := range rec {
			if !utf8.ValidString(c) {
				return "it is not valid UTF-8 text, though the file is UTF-8 before it; save the whole file again as CSV UTF-8"
			}
		}
		return ""
	case encASCII:
		ascii, valid := true, true
		for _, c := range rec {
			if !isASCII(c) {
				ascii = false
				valid = valid && utf8.ValidString(c)
			}
		}
		switch {
		case ascii:
			return ""
		case valid:
			s.enc = encUTF8
			return ""
		}
		s.enc = enc1252
	case enc1252:
	default: // UTF-16, decoded to valid UTF-8 on the way in
		return ""
	}
	for i, c := range rec {
		if isASCII(c) {
			continue
		}
		d, ok := s.decode1252(c)
		if !ok {
			return "it holds a byte that is text neither in UTF-8 nor in Windows-1252; save the whole file again as CSV UTF-8"
		}
		rec[i] = d
	}
	return ""
}

// decode1252 returns c, Windows-1252 text, as UTF-8; false when c holds a
// byte that Windows-1252 does not define.
func (s *textSource) decode1252(c string) (string, bool) {
	b := s.buf[:0]
	for i := 0; i < len(c); i++ {
		if c[i] < utf8.RuneSelf {
			b = append(b, c[i])
			continue
		}
		r := charmap.Windows1252.DecodeByte(c[i])
		if r == utf8.RuneError {
			return "", false
		}
		b = utf8.AppendRune(b, r)
	}
	s.buf = b
	return string(b), true
}

func (s *textSource) close() error { return nil }
