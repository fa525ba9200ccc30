// Package chart draws small charts as inline SVG for server-rendered pages:
// a horizontal bar chart (Bars, BarsOf) and daily figures as lines (Lines).
//
// The charts need no script and carry no style attributes, which the admin
// pages' Content-Security-Policy would block: colours and sizes are SVG
// presentation attributes, and the stylesheet only sizes the figure. Every
// figure is also text (beside its bar, in the legend, in the chart's
// description and, for lines, in a table of figures), so nothing is told by
// colour alone, and screen readers get the numbers. Each chart scales to
// its container through its viewBox, from a phone's width up.
//
// Every label and note is escaped: the output is built by html/template.
package chart

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"strconv"
	"strings"
)

//go:embed chart.html
var files embed.FS

var tmpl = template.Must(template.ParseFS(files, "chart.html"))

// NoFigure, as a Value, is a bar or a day with no figure: nothing is drawn
// for it but its note (a bar) or a gap (a line). Any negative value is
// taken as NoFigure.
const NoFigure int64 = -1

// width is the charts' width in user units; the viewBox scales it to the
// container, so that sizes below are relative to it.
const width = 320

// palette are the colours of the lines and their legend, each with at
// least 3:1 contrast against white, paired with dash patterns so that two
// lines differ by more than colour.
var palette = []struct{ Colour, Dash string }{
	{"#1d4ed8", ""}, {"#b45309", "6 3"}, {"#047857", "2 2"},
	{"#7c3aed", "8 3 2 3"}, {"#be123c", "4 4"}, {"#374151", "1 3"},
}

// render runs the named template; the templates are fixed and the data
// ours, so a failure is a programming error.
func render(name string, data any) template.HTML {
	var b bytes.Buffer
	if err := tmpl.ExecuteTemplate(&b, name, data); err != nil {
		panic(fmt.Sprintf("chart: %s: %v", name, err))
	}
	return template.HTML(b.String())
}

// Figure writes n with a comma between each group of three digits:
// 1,234,567.
func Figure(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Percent is n of whole in whole percent ("17%"); "0%" when whole is 0.
func Percent(n, whole int64) string {
	if whole <= 0 {
		return "0%"
	}
	return fmt.Sprintf("%.0f%%", float64(n)*100/float64(whole))
}

// compact writes an axis figure in at most five characters: 950, 12k,
// 1.5M.
func compact(n int64) string {
	switch {
	case n >= 1_000_000:
		return strings.TrimSuffix(strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64), ".0") + "M"
	case n >= 10_000:
		return strconv.FormatInt(n/1000, 10) + "k"
	case n >= 1000:
		return strings.TrimSuffix(strconv.FormatFloat(float64(n)/1e3, 'f', 1, 64), ".0") + "k"
	}
	return strconv.FormatInt(n, 10)
}

// fit cuts s to at most n characters, ending in "…" when cut: SVG text
// does not wrap, and the whole text stays in the chart's description.
func fit(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// num writes a coordinate with at most one decimal.
func num(f float64) string {
	return strings.TrimSuffix(strconv.FormatFloat(f, 'f', 1, 64), ".0")
}
