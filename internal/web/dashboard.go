package web

import (
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/tally"
	"github.com/consentry/consentry/internal/web/chart"
)

// historyPeriods are the periods, in days, the opt-in statuses over time
// can be shown for; the first is the default.
var historyPeriods = []int{30, 90}

// dashboard shows the latest daily figures (package tally), counted every
// tally.Interval, so that it reads a few rows whatever the number of
// contacts; before the first count it counts them itself.
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, u *auth.User) {
	ctx := r.Context()
	latest, found, err := s.Tally.Latest(ctx)
	if err == nil && !found {
		if err = s.Tally.Count(ctx); err == nil {
			latest, _, err = s.Tally.Latest(ctx)
		}
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	purposes, err := s.Consent.Purposes(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	open, err := s.OptIn.OpenCounts(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	days := historyPeriods[0]
	for _, p := range historyPeriods {
		if r.URL.Query().Get("days") == chart.Figure(int64(p)) {
			days = p
		}
	}
	first := latest.Day.AddDate(0, 0, 1-days)
	history, err := s.Tally.Since(ctx, tally.MeasureOptIn, first)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	total := latest.Contacts()
	waiting := chart.Bars("Double opt-in invitations waiting", []chart.Bar{
		{Label: "Invited", Value: open["invited"]}, {Label: "Reminded", Value: open["reminded"]}})
	data := map[string]any{"Contacts": chart.Figure(total), "CountedAt": latest.CountedAt, "Every": tally.Interval.String(),
		"Charts":  []template.HTML{coverageChart(latest, purposes), optInChart(latest), waiting},
		"History": optInHistory(history, first, days), "Days": days, "Periods": historyPeriods}
	if u.Can(auth.PermRequests) {
		var rq struct{ Open, Overdue int }
		if rq.Open, rq.Overdue, err = s.Requests.CountOpen(ctx); err != nil {
			s.fail(w, err, u)
			return
		}
		data["Requests"] = rq
	}
	s.render(w, http.StatusOK, "dashboard", page{Title: "Dashboard", User: u, Nav: "dashboard", Data: data})
}

// coverageChart has a bar per purpose: the contacts who granted it, out of
// all, with its share and the withdrawals beside it. A purpose on another
// legal basis needs no consent, so it gets no bar and no share, which
// would read as a poor consent rate: only its basis and the contacts who
// objected (a withdrawal recorded for it). One made since the last count
// has no figure yet.
func coverageChart(f *tally.Figures, purposes []*consent.Purpose) template.HTML {
	total := f.Contacts()
	var bars []chart.Bar
	for _, p := range purposes {
		granted, counted := f.Counts[tally.MeasureGranted][p.ID]
		withdrawn := f.Count(tally.MeasureWithdrawn, p.ID)
		b := chart.Bar{Label: p.Name, Value: granted}
		switch {
		case p.LegalBasis != consent.BasisConsent:
			b.Value = chart.NoFigure
			b.Note = "Legal basis: " + strings.ToLower(basisLabel(p.LegalBasis))
			b.Detail = countOf(withdrawn, "objection", "objections") + ", no consent asked"
		case !counted:
			b.Value = chart.NoFigure
			b.Note = "Not counted yet"
		default:
			b.Note = chart.Percent(granted, total) + " of " + chart.Figure(total) + " contacts granted; " + chart.Figure(withdrawn) + " withdrawn"
		}
		bars = append(bars, b)
	}
	return chart.BarsOf("Consent coverage per purpose", total, bars)
}

// optInChart has a bar per opt-in status, out of all contacts.
func optInChart(f *tally.Figures) template.HTML {
	total := f.Contacts()
	var bars []chart.Bar
	for _, st := range contactstate.OptInStatuses {
		n := f.Count(tally.MeasureOptIn, st)
		bars = append(bars, chart.Bar{Label: optInLabel(st), Value: n, Note: chart.Percent(n, total) + " of contacts"})
	}
	return chart.BarsOf("Email opt-in status", total, bars)
}

// optInHistory draws a line per opt-in status over the days from first;
// a day without figures is a gap.
func optInHistory(history []*tally.Figures, first time.Time, days int) template.HTML {
	series := make([]chart.Series, len(contactstate.OptInStatuses))
	for i, st := range contactstate.OptInStatuses {
		series[i] = chart.Series{Label: optInLabel(st), Values: make([]int64, days)}
		for d := range series[i].Values {
			series[i].Values[d] = chart.NoFigure
		}
	}
	for _, f := range history {
		d := int(f.Day.Sub(first).Hours() / 24)
		if d < 0 || d >= days {
			continue
		}
		for i, st := range contactstate.OptInStatuses {
			series[i].Values[d] = f.Count(tally.MeasureOptIn, st)
		}
	}
	return chart.Lines("Email opt-in status per day, last "+chart.Figure(int64(days))+" days", first, series)
}

// countOf writes n with the noun in the singular for one, else in the
// plural: "1 objection", "12 objections".
func countOf(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return chart.Figure(n) + " " + many
}
