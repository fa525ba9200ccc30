package app_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
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
