package imports

import (
	"unicode/utf8"

	"github.com/consentry/consentry/internal/contact"
)

// What the report keeps of a row's cells. The report is read by anyone who
// may import, for thirty days, so it holds no more of a row than an
// operator needs to see why the row was not written and to correct it:
//
//   - a cell of a sensitive field is masked as the field's mask says, as
//     everywhere a value is shown without being revealed (R11); a row
//     with more or fewer cells than the header keeps its cells only when
//     no column is of a sensitive field, as a cell missing in the middle
//     moves the sensitive value to the column before;
//   - a row skipped because its address was erased, or because the
//     contact asked to stop processing, keeps no cells at all: the import
//     must not keep what the person had removed or frozen; nor does a
//     row that failed with an erased address (writer.markErased), and an
//     erasure removes the cells of the rows reported before it
//     (ForgetAddressesTx);
//   - a cell is cut at maxReportCell bytes, and a row's cells at
//     maxReportRow bytes in all, so that a file built to blow up (one huge
//     shared string in a workbook, say) cannot blow up the report.
const (
	maxReportCell = 4 << 10
	maxReportRow  = 64 << 10
)

// cut marks a cell the report shortened.
const cut = "…"

// reportCells returns what the report keeps of row's cells for an outcome
// with code; nil keeps none.
func (r *resolved) reportCells(row *readRow, code string) []string {
	switch code {
	case contact.SkipErasedAddress, contact.SkipLocked:
		return nil
	}
	if row.cells == nil || row.erased || row.ragged && r.mapsSensitive() {
		return nil
	}
	out := append([]string(nil), row.cells...)
	for _, f := range r.fields {
		if d := r.defs[f.field]; d != nil && d.Sensitive && f.index < len(out) && out[f.index] != "" {
			out[f.index] = d.MaskValue(out[f.index])
		}
	}
	left := maxReportRow
	for i, c := range out {
		if len(c) > min(maxReportCell, left) {
			c = shorten(c, min(maxReportCell, left))
		}
		left -= len(c)
		out[i] = c
	}
	return out
}

// mapsSensitive reports whether a column is of a sensitive field.
func (r *resolved) mapsSensitive() bool {
	for _, f := range r.fields {
		if d := r.defs[f.field]; d != nil && d.Sensitive {
			return true
		}
	}
	return false
}

// shorten cuts s to at most n bytes, at a character boundary, ending
// with cut; "" when not even cut fits.
func shorten(s string, n int) string {
	if n < len(cut) {
		return ""
	}
	n -= len(cut)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + cut
}
