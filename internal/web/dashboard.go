package web

import (
	"fmt"
	"net/http"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/contactstate"
)

// chart is a horizontal bar chart drawn as inline SVG by the "bars"
// template: no script, no chart library.
type chart struct {
	Title string
	Bars  []bar
}

type bar struct {
	Label string
	Text  string  // the figure shown after the bar
	Width float64 // percent of the chart's width
}

// barWidth is n against total in percent, with a sliver for a non-zero n so
// that it stays visible.
func barWidth(n, total int64) float64 {
	if total <= 0 || n <= 0 {
		return 0
	}
	return max(float64(n)*100/float64(total), 0.5)
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, u *auth.User) {
	ctx := r.Context()
	coverage, err := s.Consent.CoverageByPurpose(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	optIns, err := s.Consent.OptInCounts(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	open, err := s.OptIn.OpenCounts(ctx)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	var total int64
	for _, n := range optIns {
		total += n
	}
	cov := chart{Title: "Consent coverage per purpose"}
	for _, c := range coverage {
		cov.Bars = append(cov.Bars, bar{Label: c.Purpose, Width: barWidth(c.Granted, c.Contacts),
			Text: fmt.Sprintf("%s granted (%d of %d), %d withdrawn", percent(c.Granted, c.Contacts), c.Granted, c.Contacts, c.Withdrawn)})
	}
	dist := chart{Title: "Email opt-in status"}
	for _, st := range contactstate.OptInStatuses {
		dist.Bars = append(dist.Bars, bar{Label: optInLabel(st), Width: barWidth(optIns[st], total),
			Text: fmt.Sprintf("%d (%s)", optIns[st], percent(optIns[st], total))})
	}
	pending := chart{Title: "Double opt-in invitations waiting"}
	waiting := open["invited"] + open["reminded"]
	for _, st := range []struct{ key, label string }{{"invited", "Invited"}, {"reminded", "Reminded"}} {
		pending.Bars = append(pending.Bars, bar{Label: st.label, Width: barWidth(open[st.key], waiting), Text: fmt.Sprint(open[st.key])})
	}
	data := map[string]any{"Contacts": total, "Charts": []chart{cov, dist, pending}}
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

func percent(n, total int64) string {
	if total == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.0f%%", float64(n)*100/float64(total))
}
