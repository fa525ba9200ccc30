package export

import (
	"archive/zip"
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/consentry/consentry/internal/cells"
	"github.com/consentry/consentry/internal/errs"
)

// Format is a file format of the export.
type Format string

// The formats.
const (
	JSON Format = "json"
	CSV  Format = "csv"
	XLSX Format = "xlsx"
)

// Formats lists the formats.
var Formats = []string{string(JSON), string(CSV), string(XLSX)}

// ParseFormat reads a format's name; empty is JSON. Anything else is an
// invalid-input error on "format".
func ParseFormat(s string) (Format, error) {
	if s == "" {
		return JSON, nil
	}
	if !slices.Contains(Formats, s) {
		return "", errs.Invalid("format", "must be one of %s", strings.Join(Formats, ", "))
	}
	return Format(s), nil
}

// ContentType is the media type of a file in the format.
func (f Format) ContentType() string {
	switch f {
	case CSV:
		return "application/zip"
	case XLSX:
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	return "application/json"
}

// extension is the file name's ending: the CSV files come in a zip.
func (f Format) extension() string {
	if f == CSV {
		return "csv.zip"
	}
	return string(f)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9-]+`)

// FileName is the name to offer the export's file under: only letters,
// digits, hyphens and dots, whatever the contact id holds.
func (e *Export) FileName(f Format) string {
	id := unsafeName.ReplaceAllString(e.Contact.ID, "")
	if len(id) > 64 {
		id = id[:64]
	}
	return "consentry-export-" + id + "-" + e.GeneratedAt.Format("20060102-150405") + "." + f.extension()
}

// Write writes the export to w in format f. Errors come from w, or from a
// format that cannot be written; nothing is read here.
func (e *Export) Write(w io.Writer, f Format) error {
	switch f {
	case JSON:
		bw := bufio.NewWriterSize(w, 64<<10)
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(e); err != nil {
			return err
		}
		return bw.Flush()
	case CSV:
		return e.writeCSV(w)
	case XLSX:
		return e.writeXLSX(w)
	}
	return fmt.Errorf("export: unknown format %q", f)
}

// writeCSV writes a zip with one CSV file per section.
func (e *Export) writeCSV(w io.Writer) error {
	zw := zip.NewWriter(w)
	for _, t := range e.tables() {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: t.name + ".csv", Method: zip.Deflate, Modified: e.GeneratedAt})
		if err != nil {
			return err
		}
		if err := writeCSVTable(fw, t); err != nil {
			return err
		}
	}
	return zw.Close()
}

// writeCSVTable writes t as one CSV file: a byte order mark, the header
// and the rows, each cell defused (cells.Defuse: docs/export.md says so),
// buffered so that a long table reaches w in large writes. It returns
// w's error, or the one reading the rows ended with (t.err).
func writeCSVTable(w io.Writer, t table) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	cw, err := cells.NewCSV(bw) // writes into bw itself: it is a bufio.Writer already
	if err != nil {
		return err
	}
	if err := cw.Write(t.header); err != nil {
		return err
	}
	for row := range t.rows {
		for i, v := range row {
			row[i] = cells.Defuse(v)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	if cw.Flush(); cw.Error() != nil {
		return cw.Error()
	}
	return t.failed()
}

// writeXLSX writes a workbook with one sheet per section.
func (e *Export) writeXLSX(w io.Writer) error { return writeWorkbook(w, e.tables()) }

// writeWorkbook writes a workbook with a sheet per table, each written by
// a stream writer, so that its rows are not held as cells in memory
// (excelize keeps a long sheet in a temporary file instead). Cells are
// text, never formulas. Nothing reaches w until every sheet is written:
// a table whose rows fail to read (t.err) writes nothing at all.
func writeWorkbook(w io.Writer, tables []table) error {
	f := excelize.NewFile()
	defer f.Close()
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return err
	}
	first := f.GetSheetName(0)
	for i, t := range tables {
		if i == 0 {
			if err := f.SetSheetName(first, t.name); err != nil {
				return err
			}
		} else if _, err := f.NewSheet(t.name); err != nil {
			return err
		}
		if err := writeSheet(f, t, bold); err != nil {
			return fmt.Errorf("export: sheet %s: %w", t.name, err)
		}
	}
	// The first sheet is the active one already. (Setting it would read
	// every streamed sheet back in.)
	return f.Write(w)
}

func writeSheet(f *excelize.File, t table, headerStyle int) error {
	sw, err := f.NewStreamWriter(t.name)
	if err != nil {
		return err
	}
	if err := sw.SetColWidth(1, len(t.header), 22); err != nil {
		return err
	}
	// The header row stays in sight while scrolling.
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	vals := make([]any, len(t.header))
	set := func(n int, row []string, opts ...excelize.RowOpts) error {
		for i, v := range row {
			vals[i] = v
		}
		name, err := excelize.CoordinatesToCellName(1, n)
		if err != nil {
			return err
		}
		return sw.SetRow(name, vals[:len(row)], opts...)
	}
	if err := set(1, t.header, excelize.RowOpts{StyleID: headerStyle}); err != nil {
		return err
	}
	n := 2
	for row := range t.rows {
		if err := set(n, row); err != nil {
			return err
		}
		n++
	}
	if err := t.failed(); err != nil {
		return err
	}
	return sw.Flush()
}

// timeText writes a time as the JSON does: RFC 3339 in UTC, to the
// microsecond.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
