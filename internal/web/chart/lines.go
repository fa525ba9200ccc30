package chart

import (
	"html/template"
	"strings"
	"time"
)

// Series is one line of a chart over days: Values holds its figure of each
// day from the chart's first day on; a negative value (NoFigure) is a day
// without a figure, drawn as a gap.
type Series struct {
	Label  string
	Values []int64
}

// Line geometry, in user units of a chart width units wide.
const (
	plotLeft   = 40.0
	plotRight  = width - 8.0
	plotTop    = 8.0
	plotBottom = 150.0
	legendTop  = 176.0
	legendRow  = 20.0
	legendChar = 44
)

type tick struct{ Y, Label string }

type dayLabel struct{ X, Anchor, Label string }

type legendEntry struct {
	Y, TextY, Colour, Dash, Label string
}

type line struct {
	Path, Colour, Dash string
	Dots               []struct{ X, Y string }
}

type dayRow struct {
	Day     string
	Figures []string
}

type lineChart struct {
	Title, Desc, Height, Width, PlotRight string
	Ticks                                 []tick
	Days                                  []dayLabel
	Lines                                 []line
	Legend                                []legendEntry
	Labels                                []string
	Table                                 []dayRow
}

// Lines draws one line per series over days, the first day being first,
// with a legend that gives each series' latest figure, and a table of
// every day's figures under the chart (folded away, for whoever wants the
// numbers). No series or no days draws the title and "No figures yet."
func Lines(title string, first time.Time, series []Series) template.HTML {
	c := lineChart{Title: title, Width: num(width), PlotRight: num(plotRight)}
	days := 0
	var most int64
	for _, s := range series {
		days = max(days, len(s.Values))
		for _, v := range s.Values {
			most = max(most, v)
		}
	}
	if days == 0 {
		return render("lines", c)
	}
	top := niceCeiling(most)
	for _, f := range []int64{0, top / 2, top} {
		c.Ticks = append(c.Ticks, tick{Y: num(yOf(f, top)), Label: compact(f)})
	}
	day := func(i int) time.Time { return first.AddDate(0, 0, i) }
	c.Days = []dayLabel{{X: num(plotLeft), Anchor: "start", Label: day(0).Format("2 Jan")}}
	if days > 2 {
		c.Days = append(c.Days, dayLabel{X: num(xOf(days/2, days)), Anchor: "middle", Label: day(days / 2).Format("2 Jan")})
	}
	if days > 1 {
		c.Days = append(c.Days, dayLabel{X: num(plotRight), Anchor: "end", Label: day(days - 1).Format("2 Jan")})
	}
	var latest []string
	for i, s := range series {
		p := palette[i%len(palette)]
		l := line{Colour: p.Colour, Dash: p.Dash}
		var path strings.Builder
		last := int64(NoFigure)
		for d := range days {
			v := valueAt(s.Values, d)
			if v < 0 {
				continue
			}
			last = v
			x, y := num(xOf(d, days)), num(yOf(v, top))
			joined := d > 0 && valueAt(s.Values, d-1) >= 0
			if joined {
				path.WriteString(" L" + x + " " + y)
			} else {
				path.WriteString(" M" + x + " " + y)
			}
			// A day with no neighbour draws no line: it gets a dot.
			if !joined && valueAt(s.Values, d+1) < 0 {
				l.Dots = append(l.Dots, struct{ X, Y string }{x, y})
			}
		}
		l.Path = strings.TrimSpace(path.String())
		c.Lines = append(c.Lines, l)
		figure := "no figure"
		if last >= 0 {
			figure = Figure(last)
		}
		y := legendTop + float64(i)*legendRow
		c.Legend = append(c.Legend, legendEntry{Y: num(y), TextY: num(y + 4), Colour: p.Colour, Dash: p.Dash,
			Label: fit(s.Label+": "+figure, legendChar)})
		c.Labels = append(c.Labels, s.Label)
		latest = append(latest, s.Label+" "+figure)
	}
	for d := range days {
		r := dayRow{Day: day(d).Format("Mon 2 Jan 2006")}
		for _, s := range series {
			f := "no figure"
			if v := valueAt(s.Values, d); v >= 0 {
				f = Figure(v)
			}
			r.Figures = append(r.Figures, f)
		}
		c.Table = append(c.Table, r)
	}
	c.Desc = "Daily figures from " + day(0).Format("2 Jan 2006") + " to " + day(days-1).Format("2 Jan 2006") +
		". Latest: " + strings.Join(latest, ", ") + ". The table of figures under the chart gives every day."
	c.Height = num(legendTop + float64(len(series))*legendRow)
	return render("lines", c)
}

// valueAt is the figure of day d, NoFigure when there is none.
func valueAt(values []int64, d int) int64 {
	if d < 0 || d >= len(values) || values[d] < 0 {
		return NoFigure
	}
	return values[d]
}

func xOf(d, days int) float64 {
	if days <= 1 {
		return (plotLeft + plotRight) / 2
	}
	return plotLeft + float64(d)*(plotRight-plotLeft)/float64(days-1)
}

func yOf(v, top int64) float64 {
	return plotBottom - float64(v)/float64(top)*(plotBottom-plotTop)
}

// niceCeiling is the smallest of 2, 4, 10, 20, 40, 100, ... (an even
// number, so that half of it is a whole tick) at or above n.
func niceCeiling(n int64) int64 {
	step := int64(1)
	for {
		for _, m := range []int64{2, 4, 10} {
			if m*step >= n {
				return m * step
			}
		}
		step *= 10
	}
}
