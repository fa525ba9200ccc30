package api_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/consentry/consentry/internal/api"
	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/workflow"
)

// automation returns the Authorization header of a token with the
// automation scope.
func (e *env) automation(t testing.TB) string {
	t.Helper()
	secret, _, err := e.a.Tokens.Create(context.Background(), audit.Actor{Kind: "user"}, "automation", nil, auth.ScopeAutomation)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + secret
}

// Workflow rules through the API: only a token with the automation scope
// keeps them; a bad definition is refused by the field it is about and
// saves nothing; a saved rule acts on the API's own changes, and its run
// log says what it did.
func TestWorkflowsThroughTheAPI(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		auto := e.automation(t)
		checkError(t, e.do(t, "GET", "/api/v1/workflows", "", ""), "forbidden", "")

		triggers := decodeAs[[]api.Trigger](t, e.do(t, "GET", "/api/v1/workflow-triggers", "", auto).body)
		i := slices.IndexFunc(triggers, func(tr api.Trigger) bool { return tr.Type == "consent.granted" })
		if i < 0 || !slices.Contains(triggers[i].Facts, "purpose") || !slices.Contains(triggers[i].Facts, "state") {
			t.Fatalf("triggers: %+v", triggers)
		}

		for _, bad := range []struct{ body, code, field string }{
			{`{"name":"R","trigger":"consent.granted","actions":[{"type":"email_address","subject":"x","fields":["email"]}]}`, "required", "actions[0].to"},
			{`{"name":"R","trigger":"consent.maybe","actions":[{"type":"double_opt_in"}]}`, "invalid", "trigger"},
			{`{"name":"R","trigger":"consent.granted","actions":[{"type":"double_opt_in"}],"name":"S"}`, "duplicate_key", "name"},
			{``, "malformed_json", ""},
		} {
			r := e.do(t, "POST", "/api/v1/workflows", bad.body, auto)
			if r.status != http.StatusBadRequest {
				t.Errorf("%s: status %d %s", bad.body, r.status, r.body)
				continue
			}
			checkError(t, r, bad.code, bad.field)
		}
		r := e.do(t, "POST", "/api/v1/workflows", `{"name":"R","trigger":"consent.granted","condition":"event.purpos == \"x\"","actions":[{"type":"double_opt_in"}]}`, auto)
		if cond := decodeAs[struct {
			Error struct {
				Code, Field string
				Position    int
			}
		}](t, r.body).Error; r.status != http.StatusBadRequest || cond.Code != "invalid_condition" || cond.Field != "condition" || cond.Position != 7 {
			t.Errorf("a misspelt fact: %d %s", r.status, r.body)
		}
		if got := decodeAs[[]workflow.Rule](t, e.do(t, "GET", "/api/v1/workflows", "", auto).body); len(got) != 0 {
			t.Fatalf("refused definitions saved %d rules", len(got))
		}

		r = e.do(t, "POST", "/api/v1/workflows", `{"name":"Subscribers","trigger":"consent.granted",
			"condition":"event.purpose == \"E-marketing\" && event.state == \"granted\"",
			"actions":[{"type":"set_field","field":"stage","value":"subscriber"}]}`, auto)
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		rule := decodeAs[workflow.Rule](t, r.body)
		if got := decodeAs[workflow.Rule](t, e.do(t, "GET", "/api/v1/workflows/"+rule.ID, "", auto).body); got.Name != "Subscribers" {
			t.Fatalf("get: %+v", got)
		}
		checkError(t, e.do(t, "GET", "/api/v1/workflows/no-such-rule", "", auto), "workflow_rule_not_found", "")

		c := decodeAs[struct{ ID string }](t, e.do(t, "POST", "/api/v1/contacts", `{"email":"wf@example.com"}`, "").body)
		if r := e.do(t, "POST", "/api/v1/contacts/"+c.ID+"/consents", `{"purpose":"E-marketing","state":"granted","source":"Phone"}`, ""); r.status != 201 {
			t.Fatalf("grant: %d %s", r.status, r.body)
		}
		if _, err := e.a.WorkflowRunner.RunDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := decodeAs[struct{ Stage string }](t, e.get(t, "/api/v1/contacts/"+c.ID))
		if got.Stage != "subscriber" {
			t.Fatalf("the rule did not act: stage %q", got.Stage)
		}
		runs := decodeAs[api.RunPage](t, e.do(t, "GET", "/api/v1/workflows/"+rule.ID+"/runs", "", auto).body)
		if len(runs.Items) != 1 || runs.Items[0].Status != workflow.StatusDone || runs.Items[0].ContactID != c.ID || len(runs.Items[0].Done) != 1 {
			t.Fatalf("runs: %+v", runs)
		}
		byContact := decodeAs[api.RunPage](t, e.do(t, "GET", "/api/v1/contacts/"+c.ID+"/workflow-runs?limit=10", "", auto).body)
		if len(byContact.Items) != 1 || byContact.Items[0].RuleID != rule.ID {
			t.Fatalf("runs by contact: %+v", byContact)
		}
		checkError(t, e.do(t, "GET", "/api/v1/workflows/"+rule.ID+"/runs?limit=0", "", auto), "invalid", "limit")

		r = e.do(t, "PUT", "/api/v1/workflows/"+rule.ID, `{"name":"Subscribers","trigger":"consent.granted","enabled":false,
			"actions":[{"type":"set_field","field":"stage","value":"again"}]}`, auto)
		if en := decodeAs[workflow.Rule](t, r.body).Enabled; r.status != http.StatusOK || en == nil || *en {
			t.Fatalf("update: %d %s", r.status, r.body)
		}
		if r := e.do(t, "DELETE", "/api/v1/workflows/"+rule.ID, "", auto); r.status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		checkError(t, e.do(t, "GET", "/api/v1/workflows/"+rule.ID, "", auto), "workflow_rule_not_found", "")
	})
}
