package app_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/workflow"
)

// rulePost is an editor post of a rule named name on trigger with
// condition, its action rows as given (each "type", "list", ... without
// the row's prefix) and the editor's empty row after them.
func rulePost(name, trigger, condition string, rows ...map[string]string) url.Values {
	f := url.Values{"name": {name}, "trigger": {trigger}, "condition": {condition}, "delay": {"0"}, "unit": {"minutes"},
		"enabled": {"off", "on"}}
	for i, row := range append(rows, map[string]string{"type": ""}) {
		p := "a" + string(rune('0'+i)) + "-"
		for k, v := range row {
			if k == "fields" || k == "roles" {
				f[p+k] = strings.Split(v, ",")
				continue
			}
			f.Set(p+k, v)
		}
		f.Add(p+"subject", "")
	}
	return f
}

// TestWorkflowPages: a rule is made and changed through its editor, which
// checks the condition and the actions as it saves: a misspelt fact is
// refused next to the condition with its position, an action's bad input
// next to that action's own input, with what was typed kept and nothing
// saved. The editor's every input goes with every row, and only the
// inputs of the row's type are kept. A rule is turned off and deleted
// from its page; its run log shows what it did to a contact, as does a
// contact's own link. An agent may not see them.
func TestWorkflowPages(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		ctx := context.Background()
		if _, err := e.a.WorkflowRunner.RunDue(ctx); err != nil { // the runner reads from here on
			t.Fatal(err)
		}
		admin := e.firstAdmin()
		base := e.srv.URL + "/admin/workflows"
		var list struct{ ID string }
		e.api("POST", "/api/v1/lists", `{"name":"Newsletter","description":"Monthly news"}`, 201, &list)

		if code, body := admin.get(base); code != 200 || !strings.Contains(body, "No workflow rule yet.") ||
			!strings.Contains(body, `href="/admin/workflows" aria-current="page"`) || !strings.Contains(body, `href="/admin/docs/workflows"`) {
			t.Fatalf("no rules: %d %s", code, body)
		}
		if code, body := admin.get(base + "/new"); code != 200 || !strings.Contains(body, `<option value="consent.granted">Consent granted (consent.granted)</option>`) ||
			!strings.Contains(body, "<code>event.purpose</code>") || !strings.Contains(body, `<legend>Add an action</legend>`) {
			t.Fatalf("new rule: %d %s", code, body)
		}
		nothingSaved := func(what string) {
			t.Helper()
			if all, err := e.a.Workflows.List(ctx); err != nil || len(all) != 0 {
				t.Fatalf("%s: saved %d rules, %v", what, len(all), err)
			}
		}
		subscribe := map[string]string{"type": workflow.ListAdd, "list": list.ID}

		// A misspelt fact: refused at its place in the condition.
		code, body := admin.post(base, rulePost("Welcome", "consent.granted", `event.purpos == "Share with partners"`, subscribe))
		if code != 400 || !strings.Contains(body, `id="condition-error" role="alert"`) || !strings.Contains(body, "position 7: the event has no fact purpos, did you mean purpose?") ||
			!strings.Contains(body, `aria-describedby="condition-help condition-error"`) || !strings.Contains(body, `value="Welcome"`) ||
			!strings.Contains(body, "event.purpos == &#34;Share with partners&#34;</textarea>") {
			t.Fatalf("a misspelt fact: %d %s", code, body)
		}
		nothingSaved("a misspelt fact")

		// A bad address in the third row, with the first removed: the
		// error is next to that action's input, numbered as shown again.
		partner := map[string]string{"type": workflow.EmailAddress, "to": "not an address", "subject": "A lead", "fields": "first_name,email"}
		code, body = admin.post(base, rulePost("Welcome", "contact.created", "", map[string]string{"type": workflow.ListRemove, "list": list.ID, "remove": "on"},
			subscribe, partner))
		if code != 400 || !strings.Contains(body, `id="a1-to-error" role="alert"`) || !strings.Contains(body, `aria-describedby="a1-to-error"`) ||
			!strings.Contains(body, `id="a1-to" name="a1-to" value="not an address"`) || !strings.Contains(body, `<legend>Action 2</legend>`) ||
			strings.Contains(body, `<legend>Action 3</legend>`) || !strings.Contains(body, `id="a1-fields-first_name" name="a1-fields" value="first_name" checked`) {
			t.Fatalf("a bad address: %d %s", code, body)
		}
		nothingSaved("a bad address")
		bad := rulePost("Welcome", "contact.created", "", subscribe)
		bad.Set("delay", "soon")
		if code, body := admin.post(base, bad); code != 400 || !strings.Contains(body, `id="delay-error" role="alert"`) {
			t.Fatalf("a delay that is no number: %d %s", code, body)
		}
		nothingSaved("a bad delay")

		// Saved, every input of the row posted: only the list is kept.
		full := map[string]string{"type": workflow.ListAdd, "list": list.ID, "subject": "not for a list", "text": "nor this", "to": "x@example.com",
			"fields": "email", "field": "city", "value": "Oslo", "endpoint_id": "e1"}
		code, body = admin.post(base, rulePost("Welcome", "contact.created", "", full))
		rules, err := e.a.Workflows.List(ctx)
		if err != nil || len(rules) != 1 {
			t.Fatalf("rules: %v %v", rules, err)
		}
		rule := rules[0]
		page := base + "/" + rule.ID
		if code != 200 || admin.last.Request.URL.String() != page+"?done=saved" || !strings.Contains(body, "Rule saved.") {
			t.Fatalf("saving: %d at %s: %s", code, admin.last.Request.URL, body)
		}
		if a := rule.Actions; len(a) != 1 || a[0].Type != workflow.ListAdd || a[0].List != list.ID || a[0].Subject != "" || len(a[0].Fields) != 0 || a[0].Value != nil ||
			!*rule.Enabled || rule.Trigger != "contact.created" {
			t.Fatalf("saved rule: %+v", rule)
		}

		// A contact is created: the rule subscribes them, and the run log
		// says so.
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"anna@example.com"}`, 201, &c)
		if _, err := e.a.WorkflowRunner.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			runs, _, err := e.a.Workflows.Runs(ctx, workflow.RunQuery{RuleID: rule.ID})
			return err == nil && len(runs) == 1
		})
		for _, u := range []string{page + "/runs", base + "/runs?contact=" + c.ID} {
			if code, body := admin.get(u); code != 200 || !strings.Contains(body, `<a href="/admin/contacts/`+c.ID+`">`) ||
				!strings.Contains(body, "<code>contact.created</code>") || !strings.Contains(body, "Subscribe to a list: Newsletter") ||
				!strings.Contains(body, `class="run-done">done`) {
				t.Fatalf("run log %s: %d %s", u, code, body)
			}
		}
		if _, body := admin.get(base + "/runs?contact=no-such-contact"); !strings.Contains(body, "No run yet.") {
			t.Fatalf("another contact's runs: %s", body)
		}
		if _, body := admin.get(e.srv.URL + "/admin/contacts/" + c.ID); !strings.Contains(body, `href="/admin/workflows/runs?contact=`+c.ID+`"`) {
			t.Fatalf("the contact's page has no link to its runs: %s", body)
		}
		if _, body := admin.get(base); !strings.Contains(body, `<a href="/admin/workflows/`+rule.ID+`">Welcome</a>`) ||
			!strings.Contains(body, `<a href="/admin/workflows/`+rule.ID+`/runs">`) {
			t.Fatalf("rules: %s", body)
		}

		// Edited: a delay of two days, shown again in days; an action
		// ticked to be removed is gone.
		if _, body := admin.get(page); !strings.Contains(body, `id="name" name="name" value="Welcome"`) ||
			!strings.Contains(body, `<option value="`+list.ID+`" selected>Newsletter</option>`) || !strings.Contains(body, "The facts of contact.created:") {
			t.Fatalf("edit page: %s", body)
		}
		edit := rulePost("Welcome back", "contact.created", "", subscribe, map[string]string{"type": workflow.DoubleOptIn, "remove": "on"},
			map[string]string{"type": workflow.NotifyUsers, "subject": "New contact", "roles": "admin,privacy_officer"})
		edit.Set("delay", "2")
		edit.Set("unit", "days")
		if code, body := admin.post(page, edit); code != 200 || !strings.Contains(body, "Rule saved.") || !strings.Contains(body, `<option value="days" selected>`) ||
			!strings.Contains(body, `id="delay" name="delay" value="2"`) {
			t.Fatalf("editing: %d %s", code, body)
		}
		if r, err := e.a.Workflows.Get(ctx, rule.ID); err != nil || r.Name != "Welcome back" || r.DelayMinutes != 2*24*60 || len(r.Actions) != 2 ||
			r.Actions[1].Type != workflow.NotifyUsers || strings.Join(r.Actions[1].Roles, ",") != "admin,privacy_officer" {
			t.Fatalf("edited rule: %+v %v", r, err)
		}
		if _, body := admin.get(page); !strings.Contains(body, `name="a1-roles" value="privacy_officer" checked`) ||
			strings.Contains(body, `name="a1-roles" value="agent" checked`) {
			t.Fatalf("the roles ticked are not shown again: %s", body)
		}

		// Off, then deleted.
		if code, body := admin.post(page+"/enabled", url.Values{"enabled": {"off"}}); code != 200 || !strings.Contains(body, "Rule turned off.") ||
			!strings.Contains(body, "This rule is off") {
			t.Fatalf("turning off: %d %s", code, body)
		}
		if r, _ := e.a.Workflows.Get(ctx, rule.ID); *r.Enabled {
			t.Fatal("the rule is still on")
		}
		if _, body := admin.get(base); !strings.Contains(body, "<td>off</td>") || !strings.Contains(body, "<td>2 days</td>") {
			t.Fatalf("rules: %s", body)
		}
		if code, body := admin.post(page+"/delete", url.Values{}); code != 200 || !strings.Contains(body, "Rule deleted.") || !strings.Contains(body, "No workflow rule yet.") {
			t.Fatalf("deleting: %d %s", code, body)
		}
		if code, _ := admin.get(page); code != 404 {
			t.Fatalf("a deleted rule's page: %d", code)
		}

		agent := e.signIn(admin, "agent@acme.example", auth.RoleAgent)
		if code, _ := agent.get(base); code != 403 {
			t.Fatalf("an agent's rules: %d", code)
		}
		if code, _ := agent.post(base, rulePost("Agents", "contact.created", "", subscribe)); code != 403 {
			t.Fatalf("an agent's new rule: %d", code)
		}
		if _, body := agent.get(e.srv.URL + "/admin/contacts/" + c.ID); strings.Contains(body, "/admin/workflows") {
			t.Fatal("an agent is offered the workflow pages")
		}
		if _, body := admin.get(e.srv.URL + "/admin/"); !strings.Contains(body, `<a href="/admin/workflows">Workflows</a>`) {
			t.Fatal("the admin's menu lacks workflows")
		}
	})
}
