package web

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/repermission"
)

// Re-permission (docs/imports.md#re-permission): those who may edit
// contacts ask the contacts an import wrote, or a condition selects, who
// lack a valid marketing consent to confirm it by double opt-in, and
// follow who confirmed and who lapsed. Every post redirects to the run's
// page; a refused one shows the form again with the reason next to the
// field.
func (s *Server) repermissionRoutes() {
	rp := func(h handler) http.HandlerFunc { return s.need(auth.PermEditContacts, h) }
	s.mux.HandleFunc("GET /admin/repermission", rp(s.repermissionsPage))
	s.post("/admin/repermission", longForm, rp(s.startRepermission))
	s.mux.HandleFunc("GET /admin/repermission/{id}", rp(s.repermissionPage))
	s.mux.HandleFunc("GET /admin/repermission/{id}/report.csv", rp(s.repermissionReport))
	s.post("/admin/imports/{id}/repermission", smallForm, rp(s.repermissionForImport))
}

// repermissionList is the re-permission page: the form that starts a run
// from a condition, and the runs.
type repermissionList struct {
	Runs []*repermission.Run
	Form url.Values
}

func (s *Server) repermissionsPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	s.showRepermissions(w, r, u, http.StatusOK, nil, url.Values{"days": {strconv.Itoa(repermission.DefaultDays)}, "condition": {r.URL.Query().Get("condition")}})
}

func (s *Server) showRepermissions(w http.ResponseWriter, r *http.Request, u *auth.User, status int, fe map[string]string, form url.Values) {
	runs, err := s.Repermission.List(r.Context(), 100)
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.render(w, status, "repermissions", page{Title: "Re-permission", User: u, Nav: "imports", Errors: fe,
		Data: repermissionList{Runs: runs, Form: form}})
}

// repermissionDays reads the days field of a form; a value that is not a
// number is refused by name, as the domain refuses one out of bounds.
func repermissionDays(form url.Values) (*int, error) {
	v := strings.TrimSpace(form.Get("days"))
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, errs.Invalid("days", "must be a whole number of days, %d to %d", repermission.MinDays, repermission.MaxDays)
	}
	return &n, nil
}

// startRun starts a run of in with the form's days, for u.
func (s *Server) startRun(r *http.Request, u *auth.User, in repermission.Input) (*repermission.Run, error) {
	days, err := repermissionDays(r.PostForm)
	if err != nil {
		return nil, err
	}
	in.Days = days
	return s.Repermission.Start(r.Context(), in, actor(u))
}

// runStarted leads to the run's page after a form started it.
func (s *Server) runStarted(w http.ResponseWriter, r *http.Request, u *auth.User, run *repermission.Run) {
	s.Log.InfoContext(r.Context(), "re-permission run started", "run", run.ID, "import", run.ImportID, "by", u.ID)
	http.Redirect(w, r, "/admin/repermission/"+url.PathEscape(run.ID)+"?done=started", http.StatusSeeOther)
}

// startRepermission starts a run for the contacts the condition selects
// and leads to its page.
func (s *Server) startRepermission(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	var run *repermission.Run
	err := error(errs.Required("condition"))
	if cond := r.PostForm.Get("condition"); strings.TrimSpace(cond) != "" {
		run, err = s.startRun(r, u, repermission.Input{Condition: cond})
	}
	if fe := fieldErrors(err); fe != nil {
		s.showRepermissions(w, r, u, httpx.Status(err), fe, r.PostForm)
		return
	}
	if err != nil {
		s.fail(w, err, u)
		return
	}
	s.runStarted(w, r, u, run)
}

// repermissionForImport starts a run for the contacts the import wrote
// (the button on the import's page) and leads to its page; a refusal is
// shown on the import's page, next to the days or above the button.
func (s *Server) repermissionForImport(w http.ResponseWriter, r *http.Request, u *auth.User) {
	if !s.parse(w, r, u) {
		return
	}
	run, err := s.startRun(r, u, repermission.Input{ImportID: r.PathValue("id")})
	if e := errs.As(err); e != nil {
		field := "repermission"
		if e.Field == "days" {
			field = "days"
		}
		s.showImport(w, r, u, httpx.Status(err), "", map[string]string{field: e.Message}, importView{})
		return
	}
	if err != nil {
		s.importFail(w, err, u)
		return
	}
	s.runStarted(w, r, u, run)
}

// repermissionView is a run's page.
type repermissionView struct {
	Run     *repermission.Run
	Skipped []reasonCount
	// Import is the file name of the import the run asked, when it is
	// still kept.
	Import string
}

func (s *Server) repermissionPage(w http.ResponseWriter, r *http.Request, u *auth.User) {
	run, err := s.Repermission.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.repermissionFail(w, err, u)
		return
	}
	v := repermissionView{Run: run}
	for reason, n := range run.Skipped {
		v.Skipped = append(v.Skipped, reasonCount{reason, n})
	}
	sort.Slice(v.Skipped, func(i, j int) bool { return v.Skipped[i].Reason < v.Skipped[j].Reason })
	if run.ImportID != "" {
		if imp, err := s.Imports.Get(r.Context(), run.ImportID); err == nil {
			v.Import = imp.FileName
		}
	}
	flash := ""
	if r.URL.Query().Get("done") == "started" {
		flash = "Re-permission started: the emails are on their way."
	}
	p := page{Title: "Re-permission run", User: u, Nav: "imports", Flash: flash, Data: v}
	if run.Status == repermission.StatusInviting {
		p.Refresh = 5
	}
	s.render(w, http.StatusOK, "repermission", p)
}

// repermissionFail shows err; an unknown run is the not-found page.
func (s *Server) repermissionFail(w http.ResponseWriter, err error, u *auth.User) {
	if errs.Is(err, errs.KindNotFound) {
		s.render(w, http.StatusNotFound, "message", page{Title: "Not found", User: u, Nav: "imports", Data: "There is no such re-permission run."})
		return
	}
	s.fail(w, err, u)
}

func (s *Server) repermissionReport(w http.ResponseWriter, r *http.Request, u *auth.User) {
	run, err := s.Repermission.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.repermissionFail(w, err, u)
		return
	}
	httpx.Attachment(w, "text/csv; charset=utf-8", "repermission-"+run.ID+".csv")
	if err := s.Repermission.WriteReport(r.Context(), run.ID, httpx.KeptWriting(w, time.Minute)); err != nil {
		s.Log.WarnContext(r.Context(), "re-permission report download not completed", "run", run.ID, "err", err)
	}
}
