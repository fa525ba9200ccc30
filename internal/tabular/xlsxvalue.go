package tabular

import (
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"
)

// dateMark is the number format every date format of the workbook is
// changed to before its rows are read, so that a date cell can be told
// from its shown value whatever format it was given (mm/dd/yyyy,
// d-mmm-yy, dd.mm.yyyy ...). Its value is then taken from the cell's
// serial number (exactDate), never from the text Excel would show: a
// month-first date reads as day-first as often as not, and the date is
// a consent's collection date.
const dateMark = `yyyy-mm-dd"T"hh:mm:ss`

var markedDate = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`)

// builtInDate reports whether a built-in number format id is a date or a
// time: 14-22 and 45-47, and the East Asian dates 27-36 and 50-58.
func builtInDate(id int) bool {
	return id >= 14 && id <= 22 || id >= 27 && id <= 36 || id >= 45 && id <= 47 || id >= 50 && id <= 58
}

// dateCode reports whether a custom number format code shows a date or a
// time: its first section has a year, month, day, hour or second outside
// quoted text, escapes and brackets (colours, locales, elapsed [h]).
func dateCode(code string) bool {
	var b strings.Builder
	quoted, bracket := false, false
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch {
		case quoted:
			quoted = c != '"'
		case bracket:
			bracket = c != ']'
		case c == '"':
			quoted = true
		case c == '[':
			bracket = true
		case c == '\\' || c == '_' || c == '*':
			i++
		case c == ';':
			i = len(code)
		default:
			b.WriteByte(c)
		}
	}
	return strings.ContainsAny(strings.ToLower(b.String()), "ydmhs")
}

// markDates changes the number format of every cell style that shows a
// date to dateMark. It returns the style sheet's error.
func markDates(f *excelize.File) error {
	if _, err := f.GetStyle(0); err != nil && f.Styles == nil {
		return err
	}
	ss := f.Styles
	if ss == nil || ss.CellXfs == nil {
		return nil
	}
	custom := map[int]string{}
	if ss.NumFmts != nil {
		for _, n := range ss.NumFmts.NumFmt {
			code := n.FormatCode
			if n.FormatCode16 != "" {
				code = n.FormatCode16
			}
			custom[n.NumFmtID] = code
		}
	}
	var dates []int
	for i, xf := range ss.CellXfs.Xf {
		if xf.NumFmtID == nil {
			continue
		}
		id := *xf.NumFmtID
		if code, ok := custom[id]; ok && dateCode(code) || !ok && builtInDate(id) {
			dates = append(dates, i)
		}
	}
	if len(dates) == 0 {
		return nil
	}
	code := dateMark
	style, err := f.NewStyle(&excelize.Style{CustomNumFmt: &code})
	if err != nil {
		return err
	}
	mark := *ss.CellXfs.Xf[style].NumFmtID
	for _, i := range dates {
		ss.CellXfs.Xf[i].NumFmtID = &mark
	}
	return nil
}

// exactValue is the value of a cell shown as shown, read as raw (its
// stored value). A date cell (markDates) gives its date as YYYY-MM-DD, or
// as RFC 3339 in UTC when it has a time of day, from its serial number. A
// number Excel would show with an exponent because it has more than 15
// digits (a 16-digit identifier) gives its digits. Any other cell gives
// what Excel shows.
func exactValue(shown, raw string, date1904 bool) string {
	if shown == raw {
		return shown
	}
	v, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return shown
	}
	if markedDate.MatchString(shown) {
		t, err := excelize.ExcelDateToTime(v, date1904)
		if err != nil {
			return shown
		}
		if t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 {
			return t.Format("2006-01-02")
		}
		return t.UTC().Format("2006-01-02T15:04:05Z07:00")
	}
	if strings.ContainsAny(shown, "Ee") {
		if _, err := strconv.ParseFloat(shown, 64); err == nil {
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	return shown
}
