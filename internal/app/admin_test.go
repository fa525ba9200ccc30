package app_test

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

var setupLinkRE = regexp.MustCompile(`url=(http\S+/admin/setup/[A-Za-z0-9_-]{43})`)

// setupLink is the one-time link the start-up log prints while no user
// exists.
func (e *env) setupLink() string {
	e.t.Helper()
	m := setupLinkRE.FindStringSubmatch(e.log.String())
	if m == nil {
		e.t.Fatalf("no set-up link in the log:\n%s", e.log.String())
	}
	return m[1]
}

// firstAdmin follows the set-up link and returns the admin's browser.
func (e *env) firstAdmin() *visitor {
	e.t.Helper()
	v := e.visitor()
	link := e.setupLink()
	if code, body := v.get(link); code != 200 || !strings.Contains(body, "Create the first admin") {
		e.t.Fatalf("set-up page: %d %s", code, body)
	}
	code, body := v.post(link, url.Values{"name": {"Ada Admin"}, "email": {"ada@acme.example"}, "password": {"correct horse battery"}, "password2": {"correct horse battery"}})
	if code != 200 || v.last.Request.URL.Path != "/admin/" || !strings.Contains(body, "Dashboard") {
		e.t.Fatalf("creating the first admin: %d at %s: %s", code, v.last.Request.URL, body)
	}
	return v
}

// signIn returns a browser signed in as a new user with role.
func (e *env) signIn(admin *visitor, email, role string) *visitor {
	e.t.Helper()
	if code, body := admin.post(e.srv.URL+"/admin/users", url.Values{"email": {email}, "role": {role}, "password": {"a long enough password"}}); code != 200 {
		e.t.Fatalf("adding %s: %d %s", role, code, body)
	}
	v := e.visitor()
	if code, body := v.post(e.srv.URL+"/admin/login", url.Values{"email": {email}, "password": {"a long enough password"}}); code != 200 || v.last.Request.URL.Path != "/admin/" {
		e.t.Fatalf("signing in as %s: %d %s", role, code, body)
	}
	return v
}

// TestFirstAdminAndSignIn: the start-up log holds a one-time link while no
// user exists; it creates an admin once, and then sign-in, sign-out and
// the rate limit on sign-in work.
func TestFirstAdminAndSignIn(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		link := e.setupLink()
		v := e.visitor()
		// A bad form writes nothing and says why next to the field.
		code, body := v.post(link, url.Values{"email": {"ada@acme.example"}, "password": {"short"}, "password2": {"short"}})
		if code != 400 || !strings.Contains(body, `id="password-error" role="alert"`) {
			t.Fatalf("short password: %d %s", code, body)
		}
		// The front door leads to sign-in.
		front := e.visitor()
		if code, _ := front.get(e.srv.URL + "/"); code != 200 || front.last.Request.URL.Path != "/admin/login" {
			t.Fatalf("GET / ends at %s (%d)", front.last.Request.URL, code)
		}
		admin := e.firstAdmin()
		// The link works once.
		if code, _ := e.visitor().get(link); code != 410 {
			t.Fatalf("a used set-up link answered %d", code)
		}
		if n, _ := e.a.Users.SetupLink(context.Background()); n != "" {
			t.Fatal("a set-up link was made while a user exists")
		}
		// Sign out, then sign in again.
		admin.post(e.srv.URL+"/admin/logout", url.Values{})
		if _, body := admin.get(e.srv.URL + "/admin/contacts"); !strings.Contains(body, "Sign in") {
			t.Fatal("signed out, the contacts page still shows")
		}
		if code, _ := admin.post(e.srv.URL+"/admin/login", url.Values{"email": {"ada@acme.example"}, "password": {"wrong password!!"}}); code != 401 {
			t.Fatalf("wrong password: %d", code)
		}
		code, _ = admin.post(e.srv.URL+"/admin/login", url.Values{"email": {"ADA@acme.example"}, "password": {"correct horse battery"}, "next": {"/admin/contacts"}})
		if code != 200 || admin.last.Request.URL.Path != "/admin/contacts" {
			t.Fatalf("sign-in: %d at %s", code, admin.last.Request.URL)
		}
		u, _ := url.Parse(e.srv.URL + "/admin/")
		c := admin.client.Jar.Cookies(u)
		if len(c) != 1 || c[0].Name != "consentry_session" {
			t.Fatalf("cookies: %v", c)
		}
		// An open redirect after sign-in is refused.
		other := e.visitor()
		other.post(e.srv.URL+"/admin/login", url.Values{"email": {"ada@acme.example"}, "password": {"correct horse battery"}, "next": {"//evil.example/"}})
		if other.last.Request.URL.Host != u.Host || other.last.Request.URL.Path != "/admin/" {
			t.Fatalf("next led to %s", other.last.Request.URL)
		}
		// Guessing is cut off.
		var last int
		for range 12 {
			last, _ = e.visitor().post(e.srv.URL+"/admin/login", url.Values{"email": {"ada@acme.example"}, "password": {"guess guess guess"}})
		}
		if last != http.StatusTooManyRequests {
			t.Fatalf("the twelfth wrong guess answered %d", last)
		}
		// A cross-site post is refused.
		if code := admin.crossSitePost(e.srv.URL+"/admin/contacts", url.Values{"email": {"x@example.com"}}); code != 403 {
			t.Fatalf("cross-site post: %d", code)
		}
		if strings.Contains(e.log.String(), "correct horse battery") {
			t.Fatal("the log holds a password")
		}
	})
}

// TestRolesDecideWhatShows: only billing and admin may reveal, each reveal
// is logged, an agent may edit but not reveal, billing may not edit, and
// every main page renders for every role.
func TestRolesDecideWhatShows(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		ids := withSensitive(e)
		agent := e.signIn(admin, "agent@acme.example", auth.RoleAgent)
		billing := e.signIn(admin, "billing@acme.example", auth.RoleBilling)
		officer := e.signIn(admin, "dpo@acme.example", auth.RolePrivacyOfficer)
		record := e.srv.URL + "/admin/contacts/" + ids[0]
		reveal := record + "/reveal/national_id"

		for name, v := range map[string]*visitor{"admin": admin, "agent": agent, "billing": billing, "privacy officer": officer} {
			for _, path := range []string{"/admin/", "/admin/contacts", "/admin/contacts/" + ids[0], "/admin/contacts?filter=" + url.QueryEscape(`region == "EU"`)} {
				code, body := v.get(e.srv.URL + path)
				if code != 200 || !strings.Contains(body, "</main>") {
					t.Fatalf("%s %s: %d %s", name, path, code, body)
				}
			}
			code, body := v.get(record)
			if strings.Contains(body, "198501011234") || !strings.Contains(body, "••••••••1234") {
				t.Fatalf("%s sees the record unmasked: %s", name, body)
			}
			hasReveal := strings.Contains(body, `id="reveal-national_id"`)
			if hasReveal != (name == "admin" || name == "billing") || code != 200 {
				t.Fatalf("%s: reveal button %v", name, hasReveal)
			}
		}
		// The agent is refused, and nothing is logged.
		if code, body := agent.post(reveal, url.Values{}); code != 403 || strings.Contains(body, "198501011234") {
			t.Fatalf("agent reveal: %d", code)
		}
		if n := count(t, db, `SELECT count(*) FROM access_log`); n != 0 {
			t.Fatalf("a refused reveal was logged: %d", n)
		}
		code, body := billing.post(reveal, url.Values{"reason": {"Customer called about an invoice"}})
		if code != 200 || !strings.Contains(body, "198501011234") {
			t.Fatalf("billing reveal: %d %s", code, body)
		}
		if n := count(t, db, `SELECT count(*) FROM access_log l JOIN users u ON u.id = l.actor_id WHERE u.email = 'billing@acme.example' AND l.field = 'national_id'`); n != 1 {
			t.Fatalf("billing's reveal is logged %d times", n)
		}
		// Billing may not edit; an agent may.
		if code, _ := billing.post(record, url.Values{"first_name": {"Eve"}}); code != 403 {
			t.Fatalf("billing edit: %d", code)
		}
		if code, body := agent.post(record, url.Values{"first_name": {"Ann"}}); code != 200 || !strings.Contains(body, "Saved.") {
			t.Fatalf("agent edit: %d %s", code, body)
		}
		// Only an admin manages users.
		if code, _ := officer.get(e.srv.URL + "/admin/users"); code != 403 {
			t.Fatalf("privacy officer on the users page: %d", code)
		}
	})
}

// TestContactRecordAndConsentsBlock: creating a contact, recording a
// consent and changing the opt-in status through the pages, with the
// Consents block and history showing who did what; a filter error is
// shown with its position; a locked record refuses edits.
func TestContactRecordAndConsentsBlock(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		code, body := admin.post(e.srv.URL+"/admin/contacts", url.Values{"email": {"not an address"}})
		if code != 400 || !strings.Contains(body, `id="email-error" role="alert"`) {
			t.Fatalf("bad email: %d %s", code, body)
		}
		if n := count(t, db, `SELECT count(*) FROM contacts`); n != 0 {
			t.Fatal("a refused form wrote a contact")
		}
		code, body = admin.post(e.srv.URL+"/admin/contacts", url.Values{"email": {"lisa@example.com"}, "first_name": {"Lisa"}, "region": {"EU"}, "kind": {"contact"}})
		if code != 200 || !strings.HasPrefix(admin.last.Request.URL.Path, "/admin/contacts/") {
			t.Fatalf("create: %d %s", code, body)
		}
		record := e.srv.URL + admin.last.Request.URL.Path
		code, body = admin.post(record+"/consents", url.Values{"purpose": {purposeID(e, "E-marketing")}, "state": {"granted"}, "source": {"Phone"}})
		if code != 200 || !strings.Contains(body, "Consent recorded.") {
			t.Fatalf("record consent: %d %s", code, body)
		}
		for _, want := range []string{`<td class="state-granted">granted</td>`, "Ada Admin", "Phone", "v1", "Full history (1 records)", "entered by user"} {
			if !strings.Contains(body, want) {
				t.Fatalf("the Consents block lacks %q: %s", want, body)
			}
		}
		// The post redirected to the record: reloading it records nothing.
		if req := admin.last.Request; req.Method != "GET" || req.URL.Path != strings.TrimPrefix(record, e.srv.URL) {
			t.Fatalf("recording a consent ends on %s %s, want a redirect to the record", req.Method, req.URL)
		}
		before := count(t, db, `SELECT count(*) FROM ledger_events`)
		if _, body := admin.get(admin.last.Request.URL.String()); !strings.Contains(body, "Full history (1 records)") ||
			count(t, db, `SELECT count(*) FROM ledger_events`) != before {
			t.Fatalf("reloading after recording a consent: %s", body)
		}
		// The dashboard counts her, once the day's figures are counted.
		if err := e.a.Tally.Count(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, body := admin.get(e.srv.URL + "/admin/"); !strings.Contains(body, "1 contacts.") ||
			!strings.Contains(body, "E-marketing: 1 (100% of 1 contacts granted; 0 withdrawn)") || !strings.Contains(body, "None: 1 (100% of contacts)") {
			t.Fatalf("dashboard: %s", body)
		}
		code, body = admin.post(record+"/opt-in", url.Values{"status": {"opt_out_user"}})
		if code != 200 || !strings.Contains(body, `<strong id="optin-status">Opted out (user)</strong>`) {
			t.Fatalf("opt-in: %d %s", code, body)
		}
		if code, _ := admin.post(record+"/opt-in", url.Values{"status": {"double_opt_in"}}); code != 422 {
			t.Fatalf("a transition users may not make answered %d", code)
		}
		// The list finds her by a condition, and says where one is wrong.
		_, body = admin.get(e.srv.URL + "/admin/contacts?filter=" + url.QueryEscape(`region == "EU" && consent("E-marketing") == "granted"`))
		if !strings.Contains(body, "lisa@example.com") {
			t.Fatalf("filter: %s", body)
		}
		code, body = admin.get(e.srv.URL + "/admin/contacts?filter=" + url.QueryEscape(`regoin == "EU"`))
		if code != 400 || !strings.Contains(body, "did you mean region") || !strings.Contains(body, "\n^</pre>") {
			t.Fatalf("filter error: %d %s", code, body)
		}
		_, body = admin.get(e.srv.URL + "/admin/contacts?q=LIS")
		if !strings.Contains(body, "lisa@example.com") {
			t.Fatalf("search: %s", body)
		}
		// A record locked by the contact says so and refuses edits.
		id := record[strings.LastIndexByte(record, '/')+1:]
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			return contactstate.StopProcessingTx(tx, id, time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		_, body = admin.get(record)
		if !strings.Contains(body, "asked to stop processing") || strings.Contains(body, "Edit fields") {
			t.Fatalf("locked record: %s", body)
		}
		if code, _ := admin.post(record, url.Values{"first_name": {"Other"}}); code != 423 {
			t.Fatalf("editing a locked record answered %d", code)
		}
	})
}

// TestSettingsAndAuditPages: every settings and audit page renders, and
// their forms change what they say, refusing bad input next to the field.
func TestSettingsAndAuditPages(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		ids := withSensitive(e)
		admin.post(e.srv.URL+"/admin/contacts/"+ids[0]+"/reveal/national_id", url.Values{"reason": {"Checking the import"}})
		page := func(path string, want ...string) string {
			t.Helper()
			code, body := admin.get(e.srv.URL + path)
			if code != 200 || !strings.Contains(body, "</main>") {
				t.Fatalf("%s: %d %s", path, code, body)
			}
			for _, w := range want {
				if !strings.Contains(body, w) {
					t.Fatalf("%s lacks %q: %s", path, w, body)
				}
			}
			return body
		}
		post := func(path string, form url.Values, wantCode int, want ...string) {
			t.Helper()
			code, body := admin.post(e.srv.URL+path, form)
			if code != wantCode {
				t.Fatalf("POST %s: %d %s", path, code, body)
			}
			for _, w := range want {
				if !strings.Contains(body, w) {
					t.Fatalf("POST %s lacks %q: %s", path, w, body)
				}
			}
		}
		page("/admin/settings", "Double opt-in only (recommended)")
		post("/admin/settings", url.Values{"double_opt_in_reminder_days": {"20"}, "double_opt_in_expiry_days": {"10"}}, 400, `id="double_opt_in_reminder_days-error"`)
		post("/admin/settings", url.Values{"double_opt_in_reminder_days": {"2"}, "right_to_be_informed": {"off", "on"}, "campaign_opt_in_policy": {"double_and_user"}}, 200, "Settings saved.")
		var st struct {
			Reminder int    `json:"double_opt_in_reminder_days"`
			Informed bool   `json:"right_to_be_informed"`
			Policy   string `json:"campaign_opt_in_policy"`
		}
		e.api("GET", "/api/v1/settings", "", 200, &st)
		if st.Reminder != 2 || !st.Informed || st.Policy != "double_and_user" {
			t.Fatalf("settings after saving: %+v", st)
		}
		// The audit log has each setting saved, in the admin's name.
		users, err := e.a.Users.List(context.Background())
		if err != nil || len(users) != 1 {
			t.Fatalf("users: %v %v", users, err)
		}
		var audited struct {
			Items []struct {
				Actor    struct{ Kind, ID string }
				Subject  string
				OldValue string `json:"old_value"`
				NewValue string `json:"new_value"`
			}
		}
		e.api("GET", "/api/v1/audit-log?kind=setting", "", 200, &audited)
		changed := map[string]string{}
		for _, en := range audited.Items {
			if en.Actor.Kind != "user" || en.Actor.ID != users[0].ID {
				t.Errorf("audit entry %+v, want by the admin %s", en, users[0].ID)
			}
			changed[en.Subject] = en.OldValue + " -> " + en.NewValue
		}
		if want := map[string]string{"double_opt_in_reminder_days": "3 -> 2", "right_to_be_informed": "false -> true",
			"campaign_opt_in_policy": `"double_only" -> "double_and_user"`}; !maps.Equal(changed, want) {
			t.Errorf("audit log %v, want %v", changed, want)
		}

		page("/admin/settings/purposes", "E-marketing", "Sales and service")
		post("/admin/settings/purposes", url.Values{"name": {""}, "legal_basis": {"consent"}, "text": {"x"}}, 400, `id="name-error"`)
		code, _ := admin.post(e.srv.URL+"/admin/settings/purposes", url.Values{"name": {"Share with partners"}, "legal_basis": {"consent"}, "text": {"Share my details"}})
		if code != 200 || !strings.HasPrefix(admin.last.Request.URL.Path, "/admin/settings/purposes/") {
			t.Fatalf("create purpose: %d", code)
		}
		purpose := admin.last.Request.URL.Path
		post(purpose, url.Values{"name": {"Share with partners"}, "legal_basis": {"consent"}, "text": {"Share my details with named partners"}}, 200, "Purpose saved.", "v2", "v1")
		// The current version's translations: missing ones marked, with the
		// fallback stated; saving one makes a new version.
		page(purpose, "No translation yet into: Swedish (sv), Dutch (nl)", "Swedish (sv): missing, English (en) is shown")
		post(purpose+"/translations/sv", url.Values{"version": {"2"}, "text": {""}}, 400, `id="translation-sv-error"`)
		post(purpose+"/translations/sv", url.Values{"version": {"1"}, "text": {"Dela mina uppgifter"}}, 409, `id="translation-sv-error"`)
		post(purpose+"/translations/sv", url.Values{"version": {"2"}, "text": {"Dela mina uppgifter med namngivna partner"}}, 200,
			"the current consent text is version 3", "No translation yet into: Dutch (nl)", "Dela mina uppgifter med namngivna partner")
		post("/admin/settings", url.Values{"default_language": {"de"}}, 400, `id="default_language-error"`)
		post("/admin/settings", url.Values{"default_language": {"sv"}}, 200, `<option value="sv" selected>`)
		post("/admin/settings", url.Values{"default_language": {"en"}}, 200, "Settings saved.")

		page("/admin/settings/sources", "Web form")
		post("/admin/settings/sources", url.Values{"name": {"Trade fair"}}, 200, "Trade fair")

		page("/admin/settings/fields", "national_id", "cannot be undone")
		post("/admin/settings/fields", url.Values{"name": {"Bad Name"}, "type": {"text"}}, 400, "name")
		post("/admin/settings/fields", url.Values{"name": {"iban"}, "label": {"IBAN"}, "type": {"text"}, "sensitive": {"off", "on"}, "mask": {"last:4"}}, 200, "Field saved.", "IBAN")

		page("/admin/settings/preferences-page", "Share with partners")
		post("/admin/settings/preferences-page", url.Values{"access_condition": {`regoin == "EU"`}}, 400, `id="access_condition-error"`, "did you mean region")
		post("/admin/settings/preferences-page", url.Values{"access_condition": {`region == "EU"`}, "offer": {purposeID(e, "Share with partners")},
			"condition." + purposeID(e, "Share with partners"): {`stage == "ready to buy"`}, "policies": {"Privacy policy | https://acme.example/privacy"}}, 200, "Preferences page saved.")
		var cfg struct {
			Access   string `json:"access_condition"`
			Offers   []struct{ Purpose, Condition string }
			Policies []struct{ Title, URL string }
		}
		e.api("GET", "/api/v1/settings/preferences-page", "", 200, &cfg)
		if cfg.Access != `region == "EU"` || len(cfg.Offers) != 1 || cfg.Offers[0].Condition != `stage == "ready to buy"` || len(cfg.Policies) != 1 {
			t.Fatalf("preferences page settings: %+v", cfg)
		}

		page("/admin/settings/tokens", "test")
		code, body := admin.post(e.srv.URL+"/admin/settings/tokens", url.Values{"name": {"crm"}, "reveal": {"on"}})
		secret := regexp.MustCompile(`cst_[A-Za-z0-9_-]+`).FindString(body)
		if code != 200 || secret == "" {
			t.Fatalf("create token: %d %s", code, body)
		}
		crmRow := func() string {
			t.Helper()
			body := page("/admin/settings/tokens")
			if strings.Contains(body, secret) {
				t.Fatal("the token is shown twice")
			}
			row := regexp.MustCompile(`<tr><td>crm</td>.*?</tr>`).FindString(strings.ReplaceAll(body, "\n", ""))
			if !strings.Contains(row, "use the contacts API, reveal sensitive values") {
				t.Fatalf("the token's row: %q", row)
			}
			return row
		}
		if row := crmRow(); strings.Count(row, "<td>never</td>") != 2 {
			t.Fatalf("a new token without expiry: %q", row)
		}
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/contacts", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
			t.Fatalf("use the token: %v %v", res, err)
		} else {
			res.Body.Close()
		}
		if row := crmRow(); strings.Count(row, "<td>never</td>") != 1 {
			t.Fatalf("a used token's row: %q", row)
		}
		// The crm token may not change settings; one with the admin and
		// erasure boxes ticked may, and its row says so.
		patch := func(secret string) int {
			t.Helper()
			req, _ := http.NewRequest("PATCH", e.srv.URL+"/api/v1/settings", strings.NewReader(`{"soft_bounce_limit":4}`))
			req.Header.Set("Authorization", "Bearer "+secret)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		if code := patch(secret); code != 403 {
			t.Fatalf("settings changed by a token without the admin scope: %d", code)
		}
		_, body = admin.post(e.srv.URL+"/admin/settings/tokens", url.Values{"name": {"operator"}, "admin": {"on"}, "erasure": {"on"}})
		operator := regexp.MustCompile(`cst_[A-Za-z0-9_-]+`).FindString(body)
		if code := patch(operator); operator == "" || code != 200 {
			t.Fatalf("settings changed by a token with the admin scope: %d", code)
		}
		if row := regexp.MustCompile(`<tr><td>operator</td>.*?</tr>`).FindString(strings.ReplaceAll(page("/admin/settings/tokens"), "\n", "")); !strings.Contains(row,
			"use the contacts API, change settings, purposes and legal holds, erase and delete contacts") {
			t.Fatalf("the operator token's row: %q", row)
		}

		page("/admin/outbox")
		page("/admin/mailbox")
		page("/admin/access-log", "Revealed national_id", "Checking the import", "Ada Admin")
		code, body = admin.get(e.srv.URL + "/admin/access-log?from=yesterday")
		if code != 400 || !strings.Contains(body, `id="from-error"`) {
			t.Fatalf("bad date: %d %s", code, body)
		}
		page("/admin/ledger", "Not verified yet")
		post("/admin/ledger/verify", url.Values{}, 200, "intact</strong> up to event", "Verified.", "No event was added since.")
		if req := admin.last.Request; req.Method != "GET" || req.URL.Path != "/admin/ledger" {
			t.Fatalf("verifying ends on %s %s, want a redirect to the ledger page", req.Method, req.URL)
		}
		// A change after the verification is shown as not verified yet.
		if _, err := e.a.Consent.Record(context.Background(), ids[0], consent.RecordInput{Purpose: "E-marketing", State: consent.StateGranted,
			Source: "API", Actor: consent.Actor{Kind: consent.ActorSystem}, Evidence: consent.Evidence{Method: "api"}}); err != nil {
			t.Fatal(err)
		}
		page("/admin/ledger", "intact</strong> up to event", "1 event was added since and is not verified yet.")
	})
}

// TestAdminEdgeCases: values that are false or 0 survive an edit; a
// locked record takes opt-outs only; parallel wrong passwords are cut
// off; search finds names with letters beyond A to Z; agents cannot
// delete; users change their own password, ending their other sessions.
func TestAdminEdgeCases(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		e.api("POST", "/api/v1/fields", `{"name":"newsletter_ok","type":"boolean"}`, 201, nil)
		e.api("POST", "/api/v1/fields", `{"name":"score","type":"number"}`, 201, nil)
		var c struct {
			ID     string
			Fields map[string]any
		}
		e.api("POST", "/api/v1/contacts", `{"email":"asa@example.com","first_name":"Åsa","last_name":"Öberg","fields":{"newsletter_ok":false,"score":0}}`, 201, &c)
		record := e.srv.URL + "/admin/contacts/" + c.ID
		_, body := admin.get(record)
		if !strings.Contains(body, `id="e-score" name="fields.score" value="0"`) || !strings.Contains(body, `<option value="false" selected>no</option>`) {
			t.Fatalf("edit form loses false or 0: %s", body)
		}
		admin.post(record, url.Values{"first_name": {"Åsa"}, "fields.score": {"0"}, "fields.newsletter_ok": {"false"}})
		e.api("GET", "/api/v1/contacts/"+c.ID, "", 200, &c)
		if c.Fields["score"] != float64(0) || c.Fields["newsletter_ok"] != false {
			t.Fatalf("after an edit: %v", c.Fields)
		}
		if code, _ := admin.post(record, url.Values{"fields.newsletter_ok": {"yes"}}); code != 400 {
			t.Fatalf("a bad boolean answered %d", code)
		}
		if _, body := admin.get(e.srv.URL + "/admin/contacts?q=" + url.QueryEscape("Åsa Ö")); strings.Contains(body, "asa@example.com") {
			t.Fatal("search matched words that are not together")
		}
		if _, body := admin.get(e.srv.URL + "/admin/contacts?q=" + url.QueryEscape("Öberg")); !strings.Contains(body, "asa@example.com") {
			t.Fatalf("search for Öberg: %s", body)
		}

		// Locked: only opt-outs.
		e.api("POST", "/api/v1/contacts/"+c.ID+"/opt-in", `{"status":"opt_out_user"}`, 200, nil)
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			return contactstate.StopProcessingTx(tx, c.ID, time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		e.api("POST", "/api/v1/contacts/"+c.ID+"/opt-in", `{"status":"none"}`, 423, nil)
		if _, body := admin.get(record); strings.Contains(body, `<option value="none">`) {
			t.Fatalf("a locked record offers lifting the opt-out: %s", body)
		}

		// Agents may not delete.
		agent := e.signIn(admin, "agent@acme.example", auth.RoleAgent)
		if code, _ := agent.post(record+"/delete", url.Values{"confirm": {"yes"}}); code != 403 {
			t.Fatalf("agent delete: %d", code)
		}

		// Parallel wrong passwords are cut off, not let through.
		if refused := parallelWrongPasswords(e, "agent@acme.example"); refused < 20 {
			t.Fatalf("only %d of 30 parallel wrong passwords were refused", refused)
		}

		// Changing one's own password ends one's other sessions.
		other := e.visitor()
		other.post(e.srv.URL+"/admin/login", url.Values{"email": {"ada@acme.example"}, "password": {"correct horse battery"}})
		if code, _ := admin.post(e.srv.URL+"/admin/account", url.Values{"current_password": {"wrong"}, "password": {"a brand new password"}, "password2": {"a brand new password"}}); code != 400 {
			t.Fatalf("wrong current password: %d", code)
		}
		code, body := admin.post(e.srv.URL+"/admin/account", url.Values{"current_password": {"correct horse battery"}, "password": {"a brand new password"}, "password2": {"a brand new password"}})
		if code != 200 || !strings.Contains(body, "Password changed") {
			t.Fatalf("change password: %d %s", code, body)
		}
		if _, body := other.get(e.srv.URL + "/admin/contacts"); !strings.Contains(body, "Sign in") {
			t.Fatal("the other session survived the password change")
		}
		if code, _ := admin.get(e.srv.URL + "/admin/contacts"); code != 200 {
			t.Fatal("the session that changed the password ended")
		}
	})
}

// consentRowOf returns the Consents block's row of a purpose on a record
// page, failing the test when there is none.
func consentRowOf(t testing.TB, body, purpose string) string {
	t.Helper()
	_, rest, ok := strings.Cut(body, `<th scope="row">`+purpose+`</th>`)
	if !ok {
		t.Fatalf("no Consents row for %s: %s", purpose, body)
	}
	row, _, _ := strings.Cut(rest, "</tr>")
	return row
}

// TestConsentsBlockNamesEachRecordsActor: two purposes granted by different
// actors, a user on the page and an API token through the API, each show
// their own actor in the Consents block, the token by its name.
func TestConsentsBlockNamesEachRecordsActor(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"mia@example.com","kind":"lead"}`, 201, &c)
		record := e.srv.URL + "/admin/contacts/" + c.ID
		if code, body := admin.post(record+"/consents", url.Values{"purpose": {purposeID(e, "E-marketing")}, "state": {"granted"}, "source": {"Phone"}}); code != 200 {
			t.Fatalf("record consent: %d %s", code, body)
		}
		e.api("POST", "/api/v1/contacts/"+c.ID+"/consents", `{"purpose":"Sales and service","state":"granted","source":"API"}`, 201, nil)
		_, body := admin.get(record)
		if row := consentRowOf(t, body, "E-marketing"); !strings.Contains(row, "<td>Ada Admin</td>") {
			t.Fatalf("the E-marketing row does not name the user who granted it: %s", row)
		}
		if row := consentRowOf(t, body, "Sales and service"); !strings.Contains(row, "<td>API client “test”</td>") {
			t.Fatalf("the Sales and service row does not name the API token that granted it: %s", row)
		}
	})
}

// TestDoubleOptInLineShowsWhenConfirmed: a confirmed double opt-in shows
// the time of the confirmation as confirmed, and the invitation's time as
// invited.
func TestDoubleOptInLineShowsWhenConfirmed(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"noor@example.com","kind":"lead"}`, 201, &c)
		e.api("POST", "/api/v1/double-opt-in", `{"contact_ids":["`+c.ID+`"]}`, 200, nil)
		link := e.smtp.Wait(t, 1)[0].Links()[0]
		// The invitation went out two hours before the click.
		invited := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Minute)
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			_, err := tx.Exec(`UPDATE optin_invitations SET invited_at = $1 WHERE contact_id = $2`, store.Micros(invited), c.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if code, body := e.page("POST", link, "en"); code != 200 {
			t.Fatalf("confirming: %d %s", code, body)
		}
		var ended int64
		if err := db.Read.QueryRow(`SELECT ended_at FROM optin_invitations WHERE contact_id = $1 AND status = 'confirmed'`, c.ID).Scan(&ended); err != nil {
			t.Fatal(err)
		}
		minute := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
		_, body := admin.get(e.srv.URL + "/admin/contacts/" + c.ID)
		_, line, _ := strings.Cut(body, `id="double-opt-in">`)
		line, _, _ = strings.Cut(line, "</p>")
		want := "Double opt-in: invited " + minute(invited) + ", confirmed " + minute(store.FromMicros(ended))
		if line != want {
			t.Fatalf("double opt-in line = %q, want %q", line, want)
		}
		// A confirmed contact is not offered another invitation, and is
		// told why; a contact who can be invited is offered the button.
		if strings.Contains(body, "Send double opt-in email") ||
			!strings.Contains(body, "No double opt-in email can be sent: the contact has already confirmed their address.") {
			t.Fatalf("a confirmed contact's record: %s", body)
		}
		var other struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"omar@example.com","kind":"lead"}`, 201, &other)
		if _, body := admin.get(e.srv.URL + "/admin/contacts/" + other.ID); !strings.Contains(body, "Send double opt-in email") ||
			strings.Contains(body, "No double opt-in email can be sent") {
			t.Fatalf("an unconfirmed contact's record: %s", body)
		}
	})
}

// parallelWrongPasswords signs in to the account 30 times at once with a
// wrong password, each from a new visitor, and returns how many attempts
// were refused (too many, or too many at once).
func parallelWrongPasswords(e *env, email string) int {
	codes := make(chan int, 30)
	for range 30 {
		go func() {
			code, _ := e.visitor().post(e.srv.URL+"/admin/login", url.Values{"email": {email}, "password": {"not the password!"}})
			codes <- code
		}()
	}
	refused := 0
	for range 30 {
		if c := <-codes; c == http.StatusTooManyRequests || c == http.StatusServiceUnavailable {
			refused++
		}
	}
	return refused
}
