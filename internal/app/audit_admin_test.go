package app_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/workflow"
)

// A change of a purpose made in the admin pages shows on the audit log
// page, with who made it (by their address), what (the purpose, by name),
// the field and its value before and after; the filters keep what they
// name, an unknown kind is refused by name, and a user without the audit
// permission may not see the page.
func TestAuditLogPageShowsAdminChanges(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		agent := e.signIn(admin, "agent@acme.example", auth.RoleAgent)
		purpose := "/admin/settings/purposes/" + purposeID(e, "E-marketing")
		if code, body := admin.post(e.srv.URL+purpose, url.Values{"retention_days": {"90"}}); code != 200 {
			t.Fatalf("changing the purpose: %d %s", code, body)
		}

		code, body := admin.get(e.srv.URL + "/admin/audit-log?kind=purpose")
		row := rowWith(body, "<code>retention_days</code>")
		if code != 200 || !strings.Contains(row, "ada@acme.example") || !strings.Contains(row, "Purpose “E-marketing” changed") ||
			!strings.Contains(row, "<code>0</code> → <code>90</code>") {
			t.Fatalf("the audit log page: %d, row %q in %s", code, row, body)
		}
		if strings.Contains(body, "agent@acme.example</td>") {
			t.Errorf("kind=purpose shows a user's creation: %s", body)
		}
		code, body = admin.get(e.srv.URL + "/admin/audit-log?kind=user")
		if row := rowWith(body, "<code>email</code>"); code != 200 || !strings.Contains(row, "User “agent@acme.example” created") ||
			strings.Contains(body, "retention_days") {
			t.Fatalf("kind=user: %d %s", code, body)
		}
		if code, body := admin.get(e.srv.URL + "/admin/audit-log?kind=contact"); code != 400 || !strings.Contains(body, `id="kind-error"`) {
			t.Fatalf("an unknown kind: %d %s", code, body)
		}
		if code, _ := agent.get(e.srv.URL + "/admin/audit-log"); code != 403 {
			t.Fatalf("an agent saw the audit log: %d", code)
		}
	})
}

// Changes made in the admin pages to sources, custom fields, lists,
// workflow rules, campaigns and campaign templates show on the audit log
// page, each under its kind in words, by the user who made it, with its
// action and its fields; a campaign's body and a template's layout as
// their digests. The filter offers each of these kinds.
func TestAuditLogPageListsOperatorChanges(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		ok := func(what, path string, form url.Values) string {
			t.Helper()
			code, body := admin.post(e.srv.URL+path, form)
			if code != 200 {
				t.Fatalf("%s: %d %s", what, code, body)
			}
			return strings.Split(admin.last.Request.URL.Path, "?")[0]
		}
		ok("a source", "/admin/settings/sources", url.Values{"name": {"Trade fair"}})
		ok("a field", "/admin/settings/fields", url.Values{"name": {"shoe_size"}, "label": {"Shoe size"}, "type": {"number"}})
		ok("a list", "/admin/lists", url.Values{"name": {"Newsletter"}, "description": {"Monthly news"}})
		rule := ok("a workflow rule", "/admin/workflows", rulePost("Welcome", "contact.created", "",
			map[string]string{"type": workflow.ListAdd, "list": listID(e, "Newsletter")}))
		ok("turning the rule off", rule+"/enabled", url.Values{"enabled": {"off"}})
		const layout = `<div>{{content}}</div><p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>`
		ok("a template", "/admin/campaign-templates", url.Values{"name": {"Plain"}, "html": {layout}})
		draft := ok("a campaign", "/admin/campaigns", campaignForm("Spring news"))
		ok("deleting the campaign", draft+"/delete", url.Values{})

		code, body := admin.get(e.srv.URL + "/admin/audit-log")
		for _, kind := range []string{"source", "field", "list", "workflow_rule", "campaign", "campaign_template"} {
			if code != 200 || !strings.Contains(body, `<option value="`+kind+`">`) {
				t.Errorf("the filter does not offer %s: %d", kind, code)
			}
		}
		for _, c := range []struct{ kind, subject, what, values string }{
			{"source", "name", "Source “Trade fair” created", `<span class="meta">none</span> → <code>&#34;Trade fair&#34;</code>`},
			{"field", "type", "Custom field “Shoe size” created", "<code>&#34;number&#34;</code>"},
			{"list", "description", "List “Newsletter” created", "<code>&#34;Monthly news&#34;</code>"},
			{"workflow_rule", "enabled", "Workflow rule “Welcome” turned off", "<code>true</code> → <code>false</code>"},
			{"campaign", "variants.en.html", "Campaign “Spring news” deleted", "<code>&#34;sha256:"},
			{"campaign_template", "html", "Campaign template “Plain” created", "<code>&#34;sha256:"},
		} {
			code, body := admin.get(e.srv.URL + "/admin/audit-log?kind=" + c.kind)
			row := rowWith(body, "<code>"+c.subject+"</code>")
			if code != 200 || !strings.Contains(row, "ada@acme.example") || !strings.Contains(row, c.what) || !strings.Contains(row, c.values) {
				t.Errorf("kind=%s: %d, row %q in %s", c.kind, code, row, body)
			}
			if strings.Contains(body, "Hello {{first_name}}") || strings.Contains(body, "{{content}}") {
				t.Errorf("kind=%s shows a body: %s", c.kind, body)
			}
		}
	})
}

// rowWith returns the table row of body that holds s, or "".
func rowWith(body, s string) string {
	i := strings.Index(body, s)
	if i < 0 {
		return ""
	}
	start := strings.LastIndex(body[:i], "<tr>")
	end := strings.Index(body[i:], "</tr>")
	if start < 0 || end < 0 {
		return ""
	}
	return body[start : i+end]
}
