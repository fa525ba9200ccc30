package tabular

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/consentry/consentry/internal/errs"
)

// Limits on a workbook's parts, checked before excelize reads them.
// excelize parses XML with encoding/xml, which holds a whole token (a run
// of text, a tag) in memory, and it puts a row's cells together, shared
// strings expanded, before returning them: a few kilobytes of zip can
// unpack to hundreds of megabytes of either. The checks read the parts as
// a stream and refuse the workbook before excelize holds any of it.
const (
	// unpackedInMemory is the size above which excelize unpacks a
	// worksheet or the shared strings to a temporary file instead of
	// memory (its default is 16 MiB). Parsed, the shared strings take
	// many times their size in memory; from a temporary file, about 40
	// bytes each.
	unpackedInMemory = 1 << 20
	// maxInMemory bounds the parts excelize holds in memory in all: every
	// part but the worksheets and shared strings above unpackedInMemory
	// (styles, the list of sheets, pictures).
	maxInMemory = 32 << 20
	// tokenFactor times Options.MaxLineBytes is the longest run of text
	// or markup read: one cell of a row at the limit, escaped ("&quot;"
	// is six bytes for one character).
	tokenFactor = 8
	// maxOutsideRows bounds the text of a worksheet outside its rows,
	// spaces between the rows included; what Excel writes there (formulas
	// of conditional formats, lists of data validations) is far less.
	maxOutsideRows = 16 << 20
	// maxSharedStrings is the most shared strings (different texts) a
	// workbook may hold: about 50 MB of excelize's index of them.
	maxSharedStrings = 2_000_000
	// maxElements bounds the elements of the other XML parts, which
	// excelize parses whole into memory when it opens a workbook, at
	// about 250 bytes an element of the styles; Excel's most cell
	// formats, 64,000, take far fewer. maxCalcElements bounds those of
	// the list of formulas to compute (calcChain.xml), one an element, at
	// about 50 bytes each.
	maxElements     = 250_000
	maxCalcElements = 1_000_000
	// maxDepth bounds how deep a part nests its markup. excelize's
	// decoder keeps a frame of a few hundred bytes for each level it is
	// in, so a few kilobytes of zip nesting millions deep would take a
	// gigabyte; what spreadsheet programs write nests about ten deep
	// (a chart's parts, the deepest, about twenty).
	maxDepth = 100
	// maxRowElements bounds the elements of one row: excelize holds a
	// cell's parts (the runs of a formatted text) together, about 200
	// bytes each. A row of all its cells, each a formatted text of a few
	// runs, takes less. maxOutsideElements bounds those outside the
	// rows (column widths, merged cells, links), which excelize reads
	// one at a time, but each at a cost.
	maxRowElements     = 16 * MaxColumns
	maxOutsideElements = 1_000_000
)

var errTokenTooLong = errors.New("tabular: a run of XML is longer than the limit")

// checkWorkbook checks the parts of the workbook in the file name before
// excelize opens it: it is a zip archive; its parts unpack to at most
// opts.MaxBytes, and those held in memory to maxInMemory; no XML part
// holds a token longer than tokenFactor times opts.MaxLineBytes; the XML
// parts excelize parses whole hold at most maxElements elements, and
// maxCalcElements for the list of formulas; a worksheet holds at most maxOutsideRows of text
// outside its rows, and no row of more than MaxColumns cells or with
// more than opts.MaxLineBytes of text, shared strings expanded; and there
// are at most maxSharedStrings shared strings. archive/zip fails a part
// that unpacks to more than its directory says, so the sizes are true
// bounds. It returns nil for a workbook within the limits, and an
// *errs.Error on the field "file" otherwise.
func checkWorkbook(name string, opts Options) error {
	z, err := zip.OpenReader(name)
	if err != nil {
		return unreadable(err)
	}
	defer z.Close()
	var total, inMemory uint64
	var sheets, parsed []*zip.File
	var sst, calc *zip.File
	for _, f := range z.File {
		size := f.UncompressedSize64
		total += size
		if total > uint64(opts.MaxBytes) {
			return fileError(CodeTooLarge, "the workbook unpacks to more than %s, the most that is read", errs.Size(opts.MaxBytes))
		}
		// The names excelize gives its parts.
		part := strings.ReplaceAll(f.Name, "\\", "/")
		toTemp := size > unpackedInMemory && !f.FileInfo().IsDir()
		switch {
		case strings.EqualFold(part, "xl/sharedStrings.xml"):
			sst = f
		case strings.HasPrefix(strings.ToLower(part), "xl/worksheets/sheet"):
			sheets = append(sheets, f)
		case strings.EqualFold(part, "xl/calcChain.xml"):
			calc, toTemp = f, false
		default:
			if l := strings.ToLower(part); strings.HasSuffix(l, ".xml") || strings.HasSuffix(l, ".rels") {
				parsed = append(parsed, f)
			}
			toTemp = false
		}
		if !toTemp {
			inMemory += size
		}
		if inMemory > maxInMemory {
			return fileError(CodeTooLarge, "the workbook's parts other than its sheets and texts (styles, pictures) unpack to more than %s, the most that is read; save it as CSV UTF-8", errs.Size(maxInMemory))
		}
	}
	maxToken := int64(tokenFactor) * int64(opts.MaxLineBytes)
	elements := 0
	for _, f := range parsed {
		if err := countElements(f, maxToken, &elements, maxElements); err != nil {
			return err
		}
	}
	if calc != nil {
		elements = 0
		if err := countElements(calc, maxToken, &elements, maxCalcElements); err != nil {
			return err
		}
	}
	var lengths []int32
	if sst != nil {
		if lengths, err = scanSharedStrings(sst, maxToken, opts.MaxLineBytes); err != nil {
			return err
		}
	}
	for _, f := range sheets {
		if err := scanSheet(f, lengths, maxToken, opts.MaxLineBytes, len(sheets) > 1); err != nil {
			return err
		}
	}
	return nil
}

// scanPart reads the XML part f token by token, none longer than
// maxToken and none nested more than maxDepth deep, and calls fn with
// each. A token excelize would not read either (not well-formed XML, an
// encoding other than UTF-8 declared) makes the workbook unreadable.
func scanPart(f *zip.File, maxToken int64, fn func(xml.Token) error) error {
	rc, err := f.Open()
	if err != nil {
		return unreadable(err)
	}
	defer rc.Close()
	g := &tokenGuard{r: rc, max: maxToken}
	d := xml.NewDecoder(bufio.NewReaderSize(g, 64<<10))
	depth := 0
	for {
		tok, err := d.RawToken()
		switch {
		case errors.Is(g.err, errTokenTooLong):
			return fileError(CodeTooLarge, "the workbook holds a run of text or markup longer than %s, more than a row may hold; save it again as an Excel workbook (.xlsx) or as CSV UTF-8", errs.Size(maxToken))
		case err == io.EOF:
			return nil
		case err != nil:
			return unreadable(err)
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth++; depth > maxDepth {
				return fileError(CodeTooLarge, "the workbook nests its markup more than %d levels deep, more than a spreadsheet program writes; save it again as an Excel workbook (.xlsx) or as CSV UTF-8", maxDepth)
			}
		case xml.EndElement:
			depth--
		}
		if err := fn(tok); err != nil {
			return err
		}
	}
}

// countElements adds the elements of the XML part f to n, and refuses
// the workbook when they come to more than max.
func countElements(f *zip.File, maxToken int64, n *int, max int) error {
	return scanPart(f, maxToken, func(tok xml.Token) error {
		if _, ok := tok.(xml.StartElement); ok {
			if *n++; *n > max {
				return fileError(CodeTooLarge, "the workbook's styles, formulas or other parts hold more than %d elements, more than it takes to read it; save it as CSV UTF-8", max)
			}
		}
		return nil
	})
}

// scanSharedStrings checks the shared strings part (no string longer than
// maxLine, at most maxSharedStrings of them) and returns the length of
// each string's text, in its order.
func scanSharedStrings(f *zip.File, maxToken int64, maxLine int) ([]int32, error) {
	var lengths []int32
	in, inPhonetic := false, false // in a string's text; in a phonetic reading, which is not read
	err := scanPart(f, maxToken, func(tok xml.Token) error {
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "sst":
				// The count it gives saves growing the lengths; a false
				// one only costs that.
				if n, err := strconv.Atoi(attr(t, "uniqueCount")); err == nil && n > 0 {
					lengths = make([]int32, 0, min(n, maxSharedStrings))
				}
			case "si":
				if len(lengths) == maxSharedStrings {
					return fileError(CodeTooLarge, "the workbook holds more than %d different texts (shared strings), the most that is read; save it as CSV UTF-8", maxSharedStrings)
				}
				lengths = append(lengths, 0)
			case "t":
				in = len(lengths) > 0 && !inPhonetic
			case "rPh":
				inPhonetic = true
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "t":
				in = false
			case "rPh":
				inPhonetic = false
			}
		case xml.CharData:
			if in {
				// excelize holds a whole string to read it, so a string
				// longer than any row may be, used or not, is refused;
				// an int32 holds the rest.
				n := int(lengths[len(lengths)-1]) + len(t)
				if n > maxLine {
					return fileError(CodeLineTooLong, "the workbook holds a text (shared string number %d) longer than %s, the most that is read for one row", len(lengths), errs.Size(int64(maxLine)))
				}
				lengths[len(lengths)-1] = int32(n)
			}
		}
		return nil
	})
	return lengths, err
}

// scanSheet checks a worksheet part: its text outside rows, and each
// row's cells and text, a shared string counted at its length. Rows are
// numbered as excelize numbers them; other says the workbook has other
// sheets, which the errors then mention.
func scanSheet(f *zip.File, lengths []int32, maxToken int64, maxLine int, other bool) error {
	var (
		outside          int64
		inRow            bool
		row, cells, text int
		elements, others int // in the row; outside the rows
		cellShared, inV  bool
		inFormula        bool // a formula's text is not the cell's
	)
	where := func() string {
		if other {
			return fmt.Sprintf("row %d (of one of the workbook's sheets)", row)
		}
		return fmt.Sprintf("row %d", row)
	}
	return scanPart(f, maxToken, func(tok xml.Token) error {
		switch t := tok.(type) {
		case xml.StartElement:
			if inRow {
				if elements++; elements > maxRowElements {
					return fileError(CodeTooLarge, "%s: it holds more than %d pieces of markup, more than a spreadsheet program writes for a row; save it again as an Excel workbook (.xlsx) or as CSV UTF-8", where(), maxRowElements)
				}
			} else if others++; others > maxOutsideElements {
				return fileError(CodeTooLarge, "a sheet of the workbook holds more than %d pieces of markup outside its rows, more than a spreadsheet program writes; save it again as an Excel workbook (.xlsx) or as CSV UTF-8", maxOutsideElements)
			}
			switch t.Name.Local {
			case "row":
				inRow, cells, text, elements = true, 0, 0, 0
				row++
				if n, err := strconv.Atoi(attr(t, "r")); err == nil && n > 0 {
					row = n
				}
			case "c":
				if !inRow {
					break
				}
				cells++
				if cells > MaxColumns {
					return fileError(CodeLineTooLong, "%s: it has more than %d cells, the most a row of a sheet has", where(), MaxColumns)
				}
				cellShared = attr(t, "t") == "s"
			case "v":
				inV = true
			case "f":
				inFormula = true
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "row":
				inRow = false
			case "c":
				cellShared = false
			case "v":
				inV = false
			case "f":
				inFormula = false
			}
		case xml.CharData:
			if !inRow {
				outside += int64(len(t))
				if outside > maxOutsideRows {
					return fileError(CodeTooLarge, "a sheet of the workbook holds more than %s of text or spaces outside its rows, more than a spreadsheet program writes; save it again as an Excel workbook (.xlsx) or as CSV UTF-8", errs.Size(maxOutsideRows))
				}
				break
			}
			if inFormula {
				break
			}
			n := len(t)
			if inV && cellShared {
				n = 0
				if i, err := strconv.Atoi(string(bytes.TrimSpace(t))); err == nil && i >= 0 && i < len(lengths) {
					n = int(lengths[i])
				}
			}
			text += n
			if text > maxLine {
				return fileError(CodeLineTooLong, "%s: %s", where(), rowTooLong(maxLine))
			}
		}
		return nil
	})
}

// attr returns the value of the attribute named local, "" when it has none.
func attr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// tokenGuard passes XML through and fails with errTokenTooLong once more
// than max bytes come without a tag starting: encoding/xml would hold
// them all as one token. A comment, a processing instruction and a CDATA
// section are counted whole, "<" inside them included; a directive other
// than these (a DOCTYPE), which spreadsheet programs never write and
// whose length the count would miss, fails as unreadable XML.
type tokenGuard struct {
	r   io.Reader
	max int64
	run int64 // bytes since the last tag started
	// open holds what follows the last "<", up to what tells its kind.
	open  []byte
	end   string // what ends the comment, instruction or CDATA section being read; "" outside them
	match int    // how much of end the bytes last read match
	err   error
}

var errDirective = errors.New("tabular: an XML directive")

func (g *tokenGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	if gerr := g.scan(p[:n]); gerr != nil {
		g.err = gerr
		return 0, gerr
	}
	if err != nil {
		g.err = err
	}
	return n, err
}

func (g *tokenGuard) scan(p []byte) error {
	for len(p) > 0 {
		if g.end == "" && g.open == nil {
			// Plain text or a tag: only "<" matters.
			i := bytes.IndexByte(p, '<')
			if i < 0 {
				g.run += int64(len(p))
				break
			}
			g.run += int64(i)
			if g.run > g.max {
				return errTokenTooLong
			}
			g.run, g.open = 1, []byte{}
			p = p[i+1:]
			continue
		}
		c := p[0]
		p = p[1:]
		g.run++
		if g.end != "" {
			switch {
			case c == g.end[g.match]:
				g.match++
			case c == g.end[0] && g.match == 2 && g.end[1] == c:
				// "--" or "]]" one more: still two matched
			case c == g.end[0]:
				g.match = 1
			default:
				g.match = 0
			}
			if g.match == len(g.end) {
				g.end, g.match = "", 0
			}
			continue
		}
		g.open = append(g.open, c)
		switch o := string(g.open); {
		case o == "?":
			g.open, g.end = nil, "?>"
		case o == "!--":
			g.open, g.end = nil, "-->"
		case o == "![CDATA[":
			g.open, g.end = nil, "]]>"
		case strings.HasPrefix("!--", o) || strings.HasPrefix("![CDATA[", o):
		case o[0] == '!':
			return errDirective
		default:
			g.open = nil
		}
	}
	if g.run > g.max {
		return errTokenTooLong
	}
	return nil
}
