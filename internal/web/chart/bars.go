package chart

import (
	"html/template"
	"strings"
)

// Bar is one bar of a bar chart. Value is its figure, shown beside the
// bar; NoFigure draws no bar and no figure, only the note on the bar's
// line (say, a purpose whose legal basis is not consent), and Detail under
// it. Note is shown under the bar: a share, a second figure, a reason.
// Detail is for bars without a figure only: a drawn bar's line under it
// is its Note's.
type Bar struct {
	Label  string
	Value  int64
	Note   string
	Detail string
}

// Bar geometry, in user units of a chart width units wide.
const (
	barSpan      = width - 74 // the longest bar; the figure goes after it
	barHeight    = 14
	labelChars   = 44 // what fits on a line at the label's size
	noteChars    = 50
	rowWithNote  = 56
	rowPlain     = 40
	chartPadding = 4
)

type barRow struct {
	Label, Figure, Note, Detail, Whole             string
	LabelY, BarY, FigureX, FigureY, NoteY, DetailY string
	Width, Top                                     string
	Drawn                                          bool
}

type barChart struct {
	Title, Desc, Height, Span, Width string
	Rows                             []barRow
}

// Bars draws bars as long as their values against the largest one, each
// with its label above it and its figure beside it. No bars draws the
// title and "No figures yet."
func Bars(title string, bars []Bar) template.HTML {
	var most int64
	for _, b := range bars {
		most = max(most, b.Value)
	}
	return BarsOf(title, most, bars)
}

// BarsOf draws bars as long as their values against whole (say, all
// contacts), so that a full bar is all of it; a value above whole draws a
// full bar. A whole of 0 or less draws no bar, only the figures.
func BarsOf(title string, whole int64, bars []Bar) template.HTML {
	c := barChart{Title: title, Span: num(barSpan), Width: num(width)}
	row := float64(rowPlain)
	for _, b := range bars {
		if b.Note != "" || b.Detail != "" {
			row = rowWithNote
		}
	}
	var desc []string
	for i, b := range bars {
		top := chartPadding + float64(i)*row
		r := barRow{Label: fit(b.Label, labelChars), Note: fit(b.Note, noteChars), Whole: b.Label, Drawn: b.Value >= 0,
			Top: num(top), LabelY: num(top + 13), BarY: num(top + 19), FigureY: num(top + 30), NoteY: num(top + 47), FigureX: "0"}
		line := b.Label
		if r.Drawn {
			r.Figure = Figure(b.Value)
			line += ": " + r.Figure
			w := 0.0
			if whole > 0 && b.Value > 0 {
				w = min(max(float64(b.Value)/float64(whole)*barSpan, 1.5), barSpan)
				r.Width = num(w)
			}
			r.FigureX = num(w + 6)
		} else {
			// No bar: the note takes the bar's line, the detail the note's.
			r.Detail = fit(b.Detail, noteChars)
			r.DetailY = r.NoteY
			r.NoteY = r.FigureY
		}
		if b.Note != "" {
			line += " (" + b.Note
			if !r.Drawn && b.Detail != "" {
				line += ", " + b.Detail
			}
			line += ")"
		}
		desc = append(desc, line)
		c.Rows = append(c.Rows, r)
	}
	c.Desc = strings.Join(desc, "; ") + "."
	c.Height = num(float64(len(bars))*row + chartPadding)
	return render("bars", c)
}
