package api

import (
	"net/http"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/repermission"
)

// repermissionRoutes serve re-permission runs: the double opt-in email
// sent again to contacts without a valid marketing consent, and who
// confirmed (docs/imports.md#re-permission).
func (s *Server) repermissionRoutes() []Route {
	const p, tag = "/api/v1/repermissions", "imports"
	id := p + "/{id}"
	return []Route{
		{Method: "POST", Path: p, Tag: tag, Status: 202, Request: repermission.Input{}, Response: repermission.Run{},
			Summary: "Ask the contacts an import wrote (import_id), or a condition selects (condition), who lack a valid marketing consent " +
				"to confirm it by double opt-in; those who do not within days (1 to 365, default 30) lapse and are flagged " +
				"repermission_lapsed. Contacts who opted out, stopped processing, were erased or cannot be reached are counted as skipped " +
				"by reason. The emails go out as a job; nothing is written on a refusal",
			handle: s.startRepermission},
		{Method: "GET", Path: p, Tag: tag, Status: 200, Response: []repermission.Run{},
			Query:   []Param{{"limit", "1 to 200 (default 50)", "integer"}},
			Summary: "List the re-permission runs, newest first, with their counts", handle: s.listRepermissions},
		{Method: "GET", Path: id, Tag: tag, Status: 200, Response: repermission.Run{},
			Summary: "Get a re-permission run: invited, skipped by reason, confirmed, lapsed and still waiting", handle: s.getRepermission},
		{Method: "GET", Path: id + "/report.csv", Tag: tag, Status: 200, Files: []string{"text/csv"},
			Summary: "Every contact of a re-permission run as CSV: id, address and names, outcome (skipped, pending, invited, confirmed, " +
				"lapsed), the reason a contact was skipped, and when they were invited, lapse, confirmed or lapsed",
			handle: s.repermissionReport},
	}
}

func (s *Server) startRepermission(r *http.Request, caller consent.Actor) (int, any, error) {
	var in repermission.Input
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	run, err := s.Repermission.Start(r.Context(), in, caller)
	return 202, run, err
}

func (s *Server) listRepermissions(r *http.Request, _ consent.Actor) (int, any, error) {
	limit, err := queryLimitUpTo(r.URL.Query(), 50, 200)
	if err != nil {
		return 0, nil, err
	}
	list, err := s.Repermission.List(r.Context(), limit)
	return 200, list, err
}

func (s *Server) getRepermission(r *http.Request, _ consent.Actor) (int, any, error) {
	run, err := s.Repermission.Get(r.Context(), r.PathValue("id"))
	return pathResult(200, run, err)
}

func (s *Server) repermissionReport(r *http.Request, _ consent.Actor) (int, any, error) {
	run, err := s.Repermission.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, inPath(err)
	}
	return 200, repermissionReport{s: s.Repermission, r: r, run: run}, nil
}

// repermissionReport is a run's report sent as a CSV file.
type repermissionReport struct {
	s   *repermission.Service
	r   *http.Request
	run *repermission.Run
}

func (x repermissionReport) writeFile(w http.ResponseWriter, status int) error {
	httpx.Attachment(w, "text/csv; charset=utf-8", "repermission-"+x.run.ID+".csv")
	w.WriteHeader(status)
	return x.s.WriteReport(x.r.Context(), x.run.ID, httpx.KeptWriting(w, time.Minute))
}
