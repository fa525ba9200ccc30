package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// A token without a scope syncs contacts: it reads settings, purposes and
// holds, but changing the settings, a purpose or a hold needs the admin
// scope, and erasing or deleting a contact, or undoing an import, the
// erasure scope. A refusal is
// a 403 naming the scope, and changes nothing; each scope opens its own
// routes and not the other's.
func TestAdminAndErasureNeedTheirScopes(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		r := e.do(t, "POST", "/api/v1/contacts", `{"email":"held@example.com"}`, "")
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		c := "/api/v1/contacts/" + decodeAs[struct {
			ID string `json:"id"`
		}](t, r.body).ID
		token := func(scopes ...string) string {
			t.Helper()
			secret, _, err := e.a.Tokens.Create(context.Background(), audit.Actor{Kind: "user"}, "scoped", nil, scopes...)
			if err != nil {
				t.Fatal(err)
			}
			return "Bearer " + secret
		}
		refused := func(who, method, path, body, scope string) {
			t.Helper()
			before, settings, purposes := e.state(t), string(e.get(t, "/api/v1/settings")), string(e.get(t, "/api/v1/purposes"))
			holds := string(e.get(t, c+"/holds"))
			r := e.do(t, method, path, body, who)
			if r.status != http.StatusForbidden {
				t.Fatalf("%s %s: %d %s, want 403", method, path, r.status, r.body)
			}
			checkError(t, r, "forbidden", "")
			if msg := decodeAs[struct{ Error struct{ Message string } }](t, r.body).Error.Message; !strings.Contains(msg, "the "+scope+" scope") {
				t.Errorf("%s %s: the refusal does not name the %s scope: %s", method, path, scope, msg)
			}
			if e.state(t) != before || string(e.get(t, "/api/v1/settings")) != settings ||
				string(e.get(t, "/api/v1/purposes")) != purposes || string(e.get(t, c+"/holds")) != holds {
				t.Errorf("%s %s: a refused request changed something", method, path)
			}
		}
		ok := func(who, method, path, body string, want int) []byte {
			t.Helper()
			r := e.do(t, method, path, body, who)
			if r.status != want {
				t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, want)
			}
			return r.body
		}
		hold := `{"reason":"open invoice","legal_basis":"legal_obligation"}`
		// Undoing an import deletes the contacts it created.
		const noImport = "01a239f3-0000-7000-8000-000000000000"

		// The ordinary token reads, and changes none of it.
		for _, path := range []string{"/api/v1/settings", "/api/v1/purposes", "/api/v1/purposes/E-marketing", "/api/v1/purposes/E-marketing/texts",
			"/api/v1/settings/preferences-page", c + "/holds"} {
			ok("", "GET", path, "", 200)
		}
		for _, rt := range []struct{ method, path, body, scope string }{
			{"PATCH", "/api/v1/settings", `{"campaign_opt_in_policy":"double_user_and_webform"}`, "admin"},
			{"PUT", "/api/v1/settings/preferences-page", `{"access_condition":"","offers":[],"statement":"x","policies":[],
				"footer":{"enabled":false},"access_email":false,"allow_stop_processing":true,"allow_erasure":true}`, "admin"},
			{"POST", "/api/v1/purposes", `{"name":"Profiling","legal_basis":"legitimate_interests","text":"We profile."}`, "admin"},
			{"PATCH", "/api/v1/purposes/E-marketing", `{"legal_basis":"legitimate_interests"}`, "admin"},
			{"PUT", "/api/v1/purposes/E-marketing/texts/1/translations/sv", `{"text":"Ja"}`, "admin"},
			{"POST", c + "/holds", hold, "admin"},
			{"POST", c + "/holds/no-such-hold/lift", `{"reason":"paid"}`, "admin"},
			{"POST", c + "/erase", ``, "erasure"},
			{"DELETE", c, ``, "erasure"},
			{"POST", "/api/v1/imports/" + noImport + "/undo", ``, "erasure"},
		} {
			refused("", rt.method, rt.path, rt.body, rt.scope)
		}

		// The admin scope opens settings, purposes and holds, not erasure.
		admin := token("admin")
		ok(admin, "PATCH", "/api/v1/settings", `{"soft_bounce_limit":4}`, 200)
		ok(admin, "PATCH", "/api/v1/purposes/E-marketing", `{"description":"Our newsletter."}`, 200)
		h := decodeAs[struct {
			ID string `json:"id"`
		}](t, ok(admin, "POST", c+"/holds", hold, 201)).ID
		ok(admin, "POST", c+"/holds/"+h+"/lift", `{"reason":"paid"}`, 200)
		refused(admin, "POST", c+"/erase", ``, "erasure")
		refused(admin, "DELETE", c, ``, "erasure")
		refused(admin, "POST", "/api/v1/imports/"+noImport+"/undo", ``, "erasure")

		// The erasure scope erases and deletes, and changes no setting.
		erasure := token("erasure")
		refused(erasure, "PATCH", "/api/v1/settings", `{"soft_bounce_limit":5}`, "admin")
		refused(erasure, "POST", c+"/holds", hold, "admin")
		ok(erasure, "POST", c+"/erase", ``, 200)
		ok(erasure, "DELETE", c, ``, 204)
		ok(erasure, "POST", "/api/v1/imports/"+noImport+"/undo", ``, 404)
	})
}
