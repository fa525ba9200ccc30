package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/api"
	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webhook/webhooktest"
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
		do := e.expecting(t, op)
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

// expecting returns a function that sends a request with auth and
// returns the answer's body, failing t unless the status is want.
func (e *env) expecting(t testing.TB, auth string) func(method, path, body string, want int) []byte {
	return func(method, path, body string, want int) []byte {
		t.Helper()
		r := e.do(t, method, path, body, auth)
		if r.status != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, want)
		}
		return r.body
	}
}

// Every change of how the service treats contacts gets entries in the
// audit log, in its own transaction, naming who made it, the object (its
// kind, id and name) and each field before and after: purposes, users,
// API tokens, webhook endpoints and webforms. A refused change, one that
// fails inside its transaction and one that changes nothing write none;
// no secret, password or hash is written anywhere in the log. The log
// filters by kind and by actor, and an unknown kind is refused by name.
func TestEveryKindOfChangeIsAudited(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		e.a.Webhooks.Policy.AllowHTTPLocalhost = true
		var before int // the test's own tokens have entries too
		if err := db.Read.QueryRow(`SELECT count(*) FROM audit_log`).Scan(&before); err != nil {
			t.Fatal(err)
		}
		secret, tok, err := e.a.Tokens.Create(ctx, audit.Actor{Kind: audit.ActorCommandLine}, "operator", nil,
			auth.ScopeAdmin, auth.ScopeAutomation)
		if err != nil {
			t.Fatal(err)
		}
		op := "Bearer " + secret
		byToken := audit.Actor{Kind: "api_token", ID: tok.ID}
		do := e.expecting(t, op)
		log := auditLog{t: t, do: do}
		entries, count := log.entries, log.count
		// expect checks the entries written since the count was n: all of
		// action on the object id by by, with exactly the fields in want
		// (old -> new; "*" matches any value).
		expect := func(n int, action, id string, by audit.Actor, want map[string][2]string) {
			t.Helper()
			log.expect(n, audit.Object{ID: id}, action, by, want)
		}

		// The token made at the command line.
		expect(before, audit.ActionAPITokenCreated, tok.ID, audit.Actor{Kind: audit.ActorCommandLine},
			map[string][2]string{"name": {"", `"operator"`}, "scopes": {"", `["admin","automation"]`}})

		// Purposes.
		n := count()
		p := decodeAs[struct{ ID string }](t, do("POST", "/api/v1/purposes", `{"name":"Profiling","legal_basis":"consent","text":"We profile."}`, 201))
		expect(n, audit.ActionPurposeCreated, p.ID, byToken, map[string][2]string{"name": {"", `"Profiling"`}, "legal_basis": {"", `"consent"`},
			"description": {"", `""`}, "retention_days": {"", "0"}, "retention_action": {"", `"erase"`}, "default_selected": {"", "false"},
			"marketing_email": {"", "false"}, "text_version": {"", "1"}, "text": {"", `"We profile."`}, "text_language": {"", `"en"`},
			"translations": {"", "{}"}})
		n = count()
		do("POST", "/api/v1/purposes", `{"name":"profiling","legal_basis":"consent","text":"Again."}`, 409) // fails inside its transaction
		do("PATCH", "/api/v1/purposes/"+p.ID, `{"legal_basis":"maybe"}`, 400)
		do("PATCH", "/api/v1/purposes/"+p.ID, `{"text":"We profile."}`, 200) // the same
		if got := count(); got != n {
			t.Fatalf("refused or empty changes of a purpose wrote %d entries", got-n)
		}
		do("PATCH", "/api/v1/purposes/"+p.ID, `{"legal_basis":"legitimate_interests","retention_days":30,"text":"We profile you."}`, 200)
		expect(n, audit.ActionPurposeChanged, p.ID, byToken, map[string][2]string{"legal_basis": {`"consent"`, `"legitimate_interests"`},
			"retention_days": {"0", "30"}, "text_version": {"1", "2"}, "text": {`"We profile."`, `"We profile you."`}})
		n = count()
		do("PUT", "/api/v1/purposes/"+p.ID+"/texts/2/translations/sv", `{"text":"Vi profilerar dig."}`, 200)
		expect(n, audit.ActionPurposeChanged, p.ID, byToken, map[string][2]string{"text_version": {"2", "3"},
			"translations": {"{}", `{"sv":"Vi profilerar dig."}`}})

		// Webhook endpoints: the secret is named, never written.
		rc := webhooktest.NewReceiver(t)
		n = count()
		do("POST", "/api/v1/webhooks", `{"url":"http://crm.example/hook"}`, 400)
		if got := count(); got != n {
			t.Fatalf("a refused endpoint wrote %d entries", got-n)
		}
		ep := decodeAs[api.NewEndpoint](t, do("POST", "/api/v1/webhooks", `{"url":"`+rc.URL+`","event_types":["contact.created"]}`, 201))
		expect(n, audit.ActionWebhookCreated, ep.ID, byToken, map[string][2]string{"url": {"", `"` + rc.URL + `"`}, "description": {"", `""`},
			"event_types": {"", `["contact.created"]`}, "enabled": {"", "true"}, "secret": {"", ""}})
		n = count()
		do("PATCH", "/api/v1/webhooks/"+ep.ID, `{"event_types":["nope"]}`, 400)
		do("PATCH", "/api/v1/webhooks/"+ep.ID, `{"enabled":false,"event_types":[]}`, 200)
		expect(n, audit.ActionWebhookChanged, ep.ID, byToken, map[string][2]string{"enabled": {"true", "false"},
			"event_types": {`["contact.created"]`, "[]"}})
		n = count()
		rot := decodeAs[api.RotatedSecret](t, do("POST", "/api/v1/webhooks/"+ep.ID+"/rotate-secret", "", 200))
		expect(n, audit.ActionWebhookSecretRotated, ep.ID, byToken, map[string][2]string{"secret": {"", ""}})
		n = count()
		do("DELETE", "/api/v1/webhooks/"+ep.ID, "", 204)
		expect(n, audit.ActionWebhookDeleted, ep.ID, byToken, map[string][2]string{"url": {`"` + rc.URL + `"`, ""}, "description": {`""`, ""},
			"event_types": {"[]", ""}, "enabled": {"false", ""}})
		if en := entries("")[0]; en.ObjectName != rc.URL {
			t.Errorf("a deleted endpoint's entries name it %q", en.ObjectName)
		}

		// Webforms.
		n = count()
		do("POST", "/api/v1/webforms", `{"name":"Signup","title":"Sign\nup","privacy_policy_url":"https://acme.example/p"}`, 400)
		if got := count(); got != n {
			t.Fatalf("a refused webform wrote %d entries", got-n)
		}
		wf := decodeAs[struct{ ID string }](t, do("POST", "/api/v1/webforms", `{"name":"Signup","title":"Sign up","privacy_policy_url":"https://acme.example/p"}`, 201))
		created := entries("&kind=webform")
		if len(created) == 0 || created[0].Action != audit.ActionWebformCreated || created[0].ObjectName != "Signup" || created[0].Actor != byToken {
			t.Fatalf("webform created: %+v", created)
		}
		n = count()
		do("PATCH", "/api/v1/webforms/"+wf.ID, `{"title":"Join us"}`, 200)
		expect(n, audit.ActionWebformChanged, wf.ID, byToken, map[string][2]string{"title": {`"Sign up"`, `"Join us"`}})
		n = count()
		do("DELETE", "/api/v1/webforms/"+wf.ID, "", 204)
		deleted := entries("")[:count()-n]
		if len(deleted) == 0 || deleted[0].Action != audit.ActionWebformDeleted || deleted[0].ObjectName != "Signup" {
			t.Fatalf("webform deleted: %+v", deleted)
		}

		// Users, by a user of the admin pages; a password is named only.
		admin := audit.Actor{Kind: "user", ID: "admin-1"}
		n = count()
		if _, err := e.a.Users.Create(ctx, admin, auth.NewUser{Email: "x", Role: auth.RoleAgent, Password: "correct horse battery"}); err == nil {
			t.Fatal("a bad address was taken")
		}
		u, err := e.a.Users.Create(ctx, admin, auth.NewUser{Email: "dana@acme.example", Name: "Dana", Role: auth.RoleAgent, Password: "correct horse battery"})
		if err != nil {
			t.Fatal(err)
		}
		expect(n, audit.ActionUserCreated, u.ID, admin, map[string][2]string{"email": {"", `"dana@acme.example"`}, "name": {"", `"Dana"`},
			"role": {"", `"agent"`}, "disabled": {"", "false"}})
		n = count()
		if err := e.a.Users.SetRole(ctx, admin, u.ID, "boss"); err == nil {
			t.Fatal("an unknown role was taken")
		}
		if err := e.a.Users.SetRole(ctx, admin, u.ID, auth.RoleAgent); err != nil { // the same
			t.Fatal(err)
		}
		if err := e.a.Users.SetRole(ctx, admin, "no-such-user", auth.RoleAdmin); err == nil {
			t.Fatal("an unknown user's role changed")
		}
		if got := count(); got != n {
			t.Fatalf("refused or empty changes of a user wrote %d entries", got-n)
		}
		if err := e.a.Users.SetRole(ctx, admin, u.ID, auth.RolePrivacyOfficer); err != nil {
			t.Fatal(err)
		}
		expect(n, audit.ActionUserRoleChanged, u.ID, admin, map[string][2]string{"role": {`"agent"`, `"privacy_officer"`}})
		n = count()
		if err := e.a.Users.Disable(ctx, admin, u.ID); err != nil {
			t.Fatal(err)
		}
		expect(n, audit.ActionUserDisabled, u.ID, admin, map[string][2]string{"disabled": {"false", "true"}})
		n = count()
		if err := e.a.Users.Enable(ctx, admin, u.ID); err != nil {
			t.Fatal(err)
		}
		expect(n, audit.ActionUserEnabled, u.ID, admin, map[string][2]string{"disabled": {"true", "false"}})
		n = count()
		if err := e.a.Users.ChangePassword(ctx, u.ID, "wrong password!", "a new long password", ""); err == nil {
			t.Fatal("a wrong current password was taken")
		}
		if err := e.a.Users.ChangePassword(ctx, u.ID, "correct horse battery", "a new long password", ""); err != nil {
			t.Fatal(err)
		}
		expect(n, audit.ActionUserPasswordChanged, u.ID, audit.Actor{Kind: "user", ID: u.ID}, map[string][2]string{"password": {"", ""}})

		// API tokens: revoking twice writes once.
		other, tok2, err := e.a.Tokens.Create(ctx, admin, "crm", nil)
		if err != nil {
			t.Fatal(err)
		}
		n = count()
		if _, _, err := e.a.Tokens.Create(ctx, admin, "bad", nil, "root"); err == nil {
			t.Fatal("an unknown scope was taken")
		}
		if err := e.a.Tokens.Revoke(ctx, admin, "no-such-token"); err == nil {
			t.Fatal("an unknown token was revoked")
		}
		if got := count(); got != n {
			t.Fatalf("refused token changes wrote %d entries", got-n)
		}
		for range 2 {
			if err := e.a.Tokens.Revoke(ctx, admin, tok2.ID); err != nil {
				t.Fatal(err)
			}
		}
		expect(n, audit.ActionAPITokenRevoked, tok2.ID, admin, map[string][2]string{"revoked_at": {"", "*"}})

		// No secret, password or hash anywhere in the log.
		var hash string
		if err := db.Read.QueryRow(`SELECT password_hash FROM users WHERE id = $1`, u.ID).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		rows, err := db.Read.Query(`SELECT actor_kind || actor_id || kind || object_id || object_name || action || subject || old_value || new_value
			FROM audit_log`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		lines := 0
		for rows.Next() {
			var text string
			if err := rows.Scan(&text); err != nil {
				t.Fatal(err)
			}
			lines++
			for _, s := range []string{secret, other, ep.Secret, rot.Secret, hash, hexSHA256(secret), hexSHA256(other),
				"correct horse battery", "a new long password", "argon2", "whsec_", auth.TokenPrefix} {
				if strings.Contains(text, s) {
					t.Errorf("the audit log holds a secret (%.12s...): %s", s, text)
				}
			}
		}
		if err := rows.Err(); err != nil || lines < 30 {
			t.Fatalf("read %d entries: %v", lines, err)
		}

		// Filters.
		for _, kind := range audit.Kinds {
			for _, en := range entries("&kind=" + kind) {
				if en.Kind != kind {
					t.Errorf("kind=%s gave %+v", kind, en)
				}
			}
		}
		if hooks := entries("&kind=" + audit.KindWebhook); len(hooks) != 12 {
			t.Errorf("kind=webhook: %d entries, want 12", len(hooks))
		}
		mine := entries("&actor=" + tok.ID)
		for _, en := range mine {
			if en.Actor != byToken {
				t.Errorf("actor=%s gave %+v", tok.ID, en)
			}
		}
		if both := entries("&actor=" + admin.ID + "&kind=" + audit.KindAPIToken); len(both) != 3 || len(mine) < 20 {
			t.Errorf("actor and kind: %d entries (%d by the token)", len(both), len(mine))
		}
		r := e.do(t, "GET", "/api/v1/audit-log?kind=contact", "", op)
		if r.status != http.StatusBadRequest {
			t.Fatalf("an unknown kind: %d %s", r.status, r.body)
		}
		checkError(t, r, "invalid", "kind")
	})
}

// auditLog reads the audit log through the API with do, as a token with
// the admin scope.
type auditLog struct {
	t  testing.TB
	do func(method, path, body string, want int) []byte
}

// entries returns every entry that matches query ("&kind=source"),
// newest first, page after page.
func (l auditLog) entries(query string) []audit.Entry {
	l.t.Helper()
	var all []audit.Entry
	for after := ""; ; {
		p := decodeAs[api.AuditPage](l.t, l.do("GET", "/api/v1/audit-log?limit=500&after="+after+query, "", 200))
		all = append(all, p.Items...)
		if after = p.Next; after == "" {
			return all
		}
	}
}

// count is how many entries the log holds.
func (l auditLog) count() int { l.t.Helper(); return len(l.entries("")) }

// wantField is what an entry says of one field: its action, and its
// values before and after ("*" matches any value).
type wantField struct{ action, old, new string }

// expectEach checks the entries written since the count was n: each of
// them about obj (its kind and name are not checked when empty) by by,
// one for each field in want, as want says it.
func (l auditLog) expectEach(n int, obj audit.Object, by audit.Actor, want map[string]wantField) {
	l.t.Helper()
	got := l.entries("")
	got = got[:len(got)-n]
	fields := map[string]bool{}
	for _, en := range got {
		w, ok := want[en.Subject]
		if !ok || en.Action != w.action || en.ObjectID != obj.ID || (obj.Kind != "" && en.Kind != obj.Kind) ||
			(obj.Name != "" && en.ObjectName != obj.Name) || en.Actor != by || en.At.IsZero() {
			l.t.Errorf("entry %+v: want %+v on %+v by %+v", en, w, obj, by)
			continue
		}
		if (w.old != "*" && en.OldValue != w.old) || (w.new != "*" && en.NewValue != w.new) {
			l.t.Errorf("%s: %s %q -> %q, want %q -> %q", en.Action, en.Subject, en.OldValue, en.NewValue, w.old, w.new)
		}
		fields[en.Subject] = true
	}
	if len(fields) != len(want) || len(got) != len(want) {
		l.t.Errorf("%d entries for %v, want %v", len(got), fields, want)
	}
}

// expect is expectEach with one action for every field, and the values
// as old -> new.
func (l auditLog) expect(n int, obj audit.Object, action string, by audit.Actor, want map[string][2]string) {
	l.t.Helper()
	each := map[string]wantField{}
	for f, v := range want {
		each[f] = wantField{action, v[0], v[1]}
	}
	l.expectEach(n, obj, by, each)
}

func hexSHA256(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
