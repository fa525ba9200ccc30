package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/api"
	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// Each setting a change through the API changes gets an entry in the audit
// log, in its transaction: who (the token), which setting, the value before
// and after. A change that changes nothing, and a refused one, write none;
// the preferences page's settings are logged part by part. The log reads
// newest first, a page at a time, with the admin scope only.
func TestSettingsChangesAreAudited(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		secret, tok, err := e.a.Tokens.Create(context.Background(), audit.Actor{Kind: "user"}, "operator", nil, auth.ScopeAdmin)
		if err != nil {
			t.Fatal(err)
		}
		op := "Bearer " + secret
		do := func(method, path, body string, want int) []byte {
			t.Helper()
			r := e.do(t, method, path, body, op)
			if r.status != want {
				t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, want)
			}
			return r.body
		}
		log := func(query string) api.AuditPage { // the settings' entries: making a token has one too
			t.Helper()
			return decodeAs[api.AuditPage](t, do("GET", "/api/v1/audit-log?kind=setting"+strings.Replace(query, "?", "&", 1), "", 200))
		}
		if got := log(""); len(got.Items) != 0 {
			t.Fatalf("a new installation's audit log: %+v", got)
		}

		do("PATCH", "/api/v1/settings", `{"campaign_opt_in_policy":"double_and_user","soft_bounce_limit":5,"right_to_be_informed":false}`, 200)
		got := log("").Items
		want := map[string][2]string{"campaign_opt_in_policy": {`"double_only"`, `"double_and_user"`}, "soft_bounce_limit": {"3", "5"}}
		if len(got) != len(want) {
			t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
		}
		for _, en := range got {
			if en.Actor != (audit.Actor{Kind: "api_token", ID: tok.ID}) || en.Action != audit.ActionSettingChanged || en.At.IsZero() {
				t.Errorf("entry %+v: want setting_changed by the token %s", en, tok.ID)
			}
			if w, ok := want[en.Subject]; !ok || en.OldValue != w[0] || en.NewValue != w[1] {
				t.Errorf("entry %s: %s -> %s, want %v", en.Subject, en.OldValue, en.NewValue, w)
			}
		}

		do("PATCH", "/api/v1/settings", `{"campaign_opt_in_policy":"double_and_user"}`, 200)
		do("PATCH", "/api/v1/settings", `{"privacy_address":"privacy@acme.example","soft_bounce_limit":0}`, 400)
		if n := len(log("").Items); n != 2 {
			t.Fatalf("a change that changes nothing, or a refused one, was logged: %d entries", n)
		}

		do("PUT", "/api/v1/settings/preferences-page", `{"access_condition":"region == \"EU\"","offers":[],"statement":"We are Acme.",
			"policies":[],"footer":{"enabled":false},"access_email":false,"allow_stop_processing":true,"allow_erasure":true}`, 200)
		page := log("?limit=2")
		if len(page.Items) != 2 || page.Next == "" || page.Items[0].Seq < page.Items[1].Seq {
			t.Fatalf("first page: %+v", page)
		}
		subjects := map[string]audit.Entry{}
		for p := page; ; p = log("?limit=2&after=" + p.Next) {
			for _, en := range p.Items {
				subjects[en.Subject] = en
			}
			if p.Next == "" {
				break
			}
		}
		if en := subjects["preferences_page.access_condition"]; en.OldValue != `""` || en.NewValue != `"region == \"EU\""` || en.Actor.ID != tok.ID {
			t.Errorf("preferences page access condition: %+v (all: %v)", en, subjects)
		}
		if _, ok := subjects["preferences_page.statement"]; !ok || len(subjects) < 4 {
			t.Errorf("the preferences page's statement was not logged: %v", subjects)
		}

		r := e.do(t, "GET", "/api/v1/audit-log", "", "")
		if r.status != http.StatusForbidden {
			t.Fatalf("the audit log without the admin scope: %d %s", r.status, r.body)
		}
		checkError(t, r, "forbidden", "")
	})
}
