// Package cells keeps text written into a file that people open in a
// spreadsheet program from running there as a formula (CSV or formula
// injection): a contact types their own name into a webform, and an
// operator opens the export on their machine. Every file Consentry writes
// for a spreadsheet (the access export, the contact list's export) writes
// its cells through Defuse, so that the rule is one function, and every CSV
// file starts with NewCSV's byte order mark.
package cells

import (
	"encoding/csv"
	"io"
	"strings"
)

// triggers are the first characters that make a spreadsheet program read
// a cell as a formula (=, +, -, @) or that some of them strip before
// doing so (tab, carriage return).
const triggers = "=+-@\t\r"

// Defuse returns v with an apostrophe in front when it starts with = + -
// @, a tab or a carriage return, after any spaces or line feeds (which
// some spreadsheet programs trim as they read a file), so that a
// spreadsheet program shows it as text ('=HYPERLINK(...), '+46 70 123 45
// 67, ' =1+1); any other value comes back unchanged. Defusing a defused
// value changes nothing more.
func Defuse(v string) string {
	if t := strings.TrimLeft(v, " \n"); t != "" && strings.IndexByte(triggers, t[0]) >= 0 {
		return "'" + v
	}
	return v
}

// BOM is the UTF-8 byte order mark every CSV file Consentry writes starts
// with, so that spreadsheet programs read it as UTF-8 (å, ö and ë stay
// themselves instead of turning into Ã¶).
const BOM = "\ufeff"

// NewCSV writes the byte order mark to w and returns a CSV writer onto
// it: every CSV an operator downloads starts this way. The error is w's.
func NewCSV(w io.Writer) (*csv.Writer, error) {
	if _, err := io.WriteString(w, BOM); err != nil {
		return nil, err
	}
	return csv.NewWriter(w), nil
}
