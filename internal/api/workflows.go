package api

import (
	"io"
	"net/http"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/httpx"
	"github.com/consentry/consentry/internal/workflow"
)

// workflowRoutes serve workflow rules and their run log. A rule emails
// contacts and partners on its own whenever a contact changes: every route
// needs a token with the automation scope.
func (s *Server) workflowRoutes() []Route {
	const w, tag, sc = "/api/v1/workflows", "workflows", auth.ScopeAutomation
	id := w + "/{id}"
	runsQuery := []Param{{"status", "done, waiting, skipped, failed or depth_limit", "string"},
		{"limit", "1 to 500 (default 50)", "integer"}, {"after", "the next cursor of the previous page", "string"}}
	return []Route{
		{Method: "GET", Path: "/api/v1/workflow-triggers", Tag: tag, Scope: sc, Status: 200, Response: []Trigger{},
			Summary: "The event types a rule may be triggered by, with the facts its condition may read as event.NAME", handle: s.workflowTriggers},
		{Method: "GET", Path: w, Tag: tag, Scope: sc, Status: 200, Response: []workflow.Rule{},
			Summary: "List the workflow rules", handle: s.listWorkflows},
		{Method: "POST", Path: w, Tag: tag, Scope: sc, Status: 201, Request: workflow.Definition{}, Response: workflow.Rule{},
			Summary: "Create a workflow rule; its condition, lists, fields and endpoints are checked as it is saved", handle: s.createWorkflow},
		{Method: "GET", Path: id, Tag: tag, Scope: sc, Status: 200, Response: workflow.Rule{},
			Summary: "Get a workflow rule", handle: s.getWorkflow},
		{Method: "PUT", Path: id, Tag: tag, Scope: sc, Status: 200, Request: workflow.Definition{}, Response: workflow.Rule{},
			Summary: "Replace a workflow rule's definition; runs waiting for their delay act by the new one", handle: s.updateWorkflow},
		{Method: "DELETE", Path: id, Tag: tag, Scope: sc, Status: 204,
			Summary: "Delete a workflow rule with its run log", handle: s.deleteWorkflow},
		{Method: "GET", Path: id + "/runs", Tag: tag, Scope: sc, Status: 200, Response: RunPage{}, Query: runsQuery,
			Summary: "The rule's run log, newest first: each event it acted on, what it did and why", handle: s.workflowRuns},
		{Method: "GET", Path: "/api/v1/contacts/{id}/workflow-runs", Tag: tag, Scope: sc, Status: 200, Response: RunPage{}, Query: runsQuery,
			Summary: "The runs of every rule for one contact, newest first", handle: s.contactWorkflowRuns},
	}
}

// Trigger is an event type a rule may be triggered by.
type Trigger struct {
	Type  string   `json:"type"`
	Facts []string `json:"facts" doc:"what the rule's condition may read as event.NAME"`
}

// RunPage is one page of a run log.
type RunPage struct {
	Items []*workflow.Run `json:"items"`
	Next  string          `json:"next,omitempty" doc:"pass as after for the next page; absent on the last"`
}

func (s *Server) workflowTriggers(*http.Request, consent.Actor) (int, any, error) {
	out := []Trigger{}
	for _, t := range workflow.Triggers() {
		out = append(out, Trigger{Type: t, Facts: workflow.FactNames(t)})
	}
	return 200, out, nil
}

func (s *Server) listWorkflows(r *http.Request, _ consent.Actor) (int, any, error) {
	rules, err := s.Workflows.List(r.Context())
	return 200, rules, err
}

// readDefinition reads a rule's definition from the body with the rule's
// own decoder, whose errors name the action they are in
// ("actions[2].to"), and refuses a key given twice as every body is.
func readDefinition(r *http.Request) (workflow.Definition, error) {
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, workflow.MaxDefinitionBytes))
	if e := httpx.TooLarge(err); e != nil {
		return workflow.Definition{}, e
	}
	if err != nil {
		return workflow.Definition{}, errs.Invalid("definition", "could not be read: %v", err)
	}
	if len(data) == 0 {
		return workflow.Definition{}, errEmptyBody
	}
	d, err := workflow.ParseDefinition(data)
	if err != nil {
		return d, err
	}
	if path := duplicateKey(data); path != "" {
		return d, &errs.Error{Kind: errs.KindInvalid, Code: "duplicate_key", Field: path, Message: "is given more than once in its object (keys are compared regardless of case)"}
	}
	return d, nil
}

func (s *Server) createWorkflow(r *http.Request, caller consent.Actor) (int, any, error) {
	d, err := readDefinition(r)
	if err != nil {
		return 0, nil, err
	}
	rule, err := s.Workflows.Create(r.Context(), audit.Actor(caller), d)
	return 201, rule, err
}

func (s *Server) getWorkflow(r *http.Request, _ consent.Actor) (int, any, error) {
	rule, err := s.Workflows.Get(r.Context(), r.PathValue("id"))
	return pathResult(200, rule, err)
}

func (s *Server) updateWorkflow(r *http.Request, caller consent.Actor) (int, any, error) {
	if _, err := s.Workflows.Get(r.Context(), r.PathValue("id")); err != nil {
		return pathResult[any](0, nil, err)
	}
	d, err := readDefinition(r)
	if err != nil {
		return 0, nil, err
	}
	rule, err := s.Workflows.Update(r.Context(), audit.Actor(caller), r.PathValue("id"), d)
	return pathResult(200, rule, err)
}

func (s *Server) deleteWorkflow(r *http.Request, caller consent.Actor) (int, any, error) {
	return pathResult[any](204, nil, s.Workflows.Delete(r.Context(), audit.Actor(caller), r.PathValue("id")))
}

func (s *Server) workflowRuns(r *http.Request, _ consent.Actor) (int, any, error) {
	if _, err := s.Workflows.Get(r.Context(), r.PathValue("id")); err != nil {
		return pathResult[any](0, nil, err)
	}
	return s.runs(r, workflow.RunQuery{RuleID: r.PathValue("id")})
}

func (s *Server) contactWorkflowRuns(r *http.Request, _ consent.Actor) (int, any, error) {
	if _, err := s.Contacts.Get(r.Context(), r.PathValue("id")); err != nil {
		return pathResult[any](0, nil, err)
	}
	return s.runs(r, workflow.RunQuery{ContactID: r.PathValue("id")})
}

func (s *Server) runs(r *http.Request, q workflow.RunQuery) (int, any, error) {
	qs := r.URL.Query()
	q.Status, q.After = qs.Get("status"), qs.Get("after")
	var err error
	if q.Limit, err = queryLimit(qs, 50); err != nil {
		return 0, nil, err
	}
	items, next, err := s.Workflows.Runs(r.Context(), q)
	if err != nil {
		return 0, nil, err
	}
	return 200, RunPage{Items: items, Next: next}, nil
}
