package app_test

import (
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestGuidesAreServedByTheProgram: the condition language guide is a page
// of the admin UI, rendered from the guide itself, and the condition
// fields link there rather than to a site outside the installation.
func TestGuidesAreServedByTheProgram(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		for _, path := range []string{"/admin/docs/conditions", "/admin/docs/conditions.md"} {
			code, body := admin.get(e.srv.URL + path)
			if code != 200 || !strings.Contains(body, "<h1>Conditions</h1>") || !strings.Contains(body, `<h2 id="fields">Fields</h2>`) ||
				!strings.Contains(body, "<table>") || strings.Count(body, "<h1") != 1 {
				t.Fatalf("%s: %d %s", path, code, body)
			}
		}
		if code, body := admin.get(e.srv.URL + "/admin/docs/conditions"); code != 200 || !strings.Contains(body, `<a href="retention.md">`) {
			t.Fatalf("a link to another guide: %s", body)
		}
		if code, _ := admin.get(e.srv.URL + "/admin/docs/retention.md"); code != 200 {
			t.Fatalf("the linked guide: %d", code)
		}
		if code, body := admin.get(e.srv.URL + "/admin/docs/nothing"); code != 404 || !strings.Contains(body, "No such guide") {
			t.Fatalf("an unknown guide: %d %s", code, body)
		}
		for _, path := range []string{"/admin/contacts", "/admin/campaigns/new"} {
			if _, body := admin.get(e.srv.URL + path); !strings.Contains(body, `href="/admin/docs/conditions"`) || strings.Contains(body, "github.com") {
				t.Fatalf("%s does not link the guide: %s", path, body)
			}
		}
		if code, body := admin.get(e.srv.URL + "/admin/contacts?filter=" + "region%20%3D%20%22EU%22"); !strings.Contains(body, "write == to compare") || strings.Contains(body, "token") {
			t.Fatalf("a condition error: %d %s", code, body)
		}
	})
}
