package app_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// sourceID returns the id of the source named name.
func sourceID(e *env, name string) string {
	e.t.Helper()
	var sources []struct{ ID, Name string }
	e.api("GET", "/api/v1/sources", "", 200, &sources)
	for _, s := range sources {
		if s.Name == name {
			return s.ID
		}
	}
	e.t.Fatalf("no source %q", name)
	return ""
}

// redirectOf posts form as v's browser would, without following the
// redirect, and returns where the redirect leads.
func (v *visitor) redirectOf(u string, form url.Values) string {
	v.e.t.Helper()
	client := *v.client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Mozilla/5.0 (visitor)")
	res, err := client.Do(req)
	if err != nil {
		v.e.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		v.e.t.Fatalf("POST %s answered %d, want a redirect", u, res.StatusCode)
	}
	return v.e.srv.URL + res.Header.Get("Location")
}

// TestNewContactWithOptInStatusAndConsents: the new contact page offers
// the starting opt-in statuses a user may set (R5, R6) and a consent line
// per purpose; bad input names its field, keeps what was typed and writes
// nothing; a good form creates the contact, its opt-in status and its
// consents, and redirects to the record, which a reload does not repeat.
func TestNewContactWithOptInStatusAndConsents(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		marketing, service, phone := purposeID(e, "E-marketing"), purposeID(e, "Sales and service"), sourceID(e, "Phone")
		_, body := admin.get(e.srv.URL + "/admin/contacts/new")
		for _, want := range []string{`<option value="none">None</option>`, `<option value="single_opt_in_user">Single opt-in (user)</option>`,
			`<option value="opt_out_user">Opted out (user)</option>`, `id="consent.` + marketing + `.state"`, `Legal basis: Contract, the purpose's own`} {
			if !strings.Contains(body, want) {
				t.Fatalf("the new contact page lacks %s: %s", want, body)
			}
		}
		if strings.Contains(body, `value="double_opt_in"`) || strings.Contains(body, `value="single_opt_in_webform"`) {
			t.Fatal("the new contact page offers a status only the contact can reach")
		}
		form := func(kv ...string) url.Values {
			f := url.Values{"email": {"lisa@example.com"}, "first_name": {"Lisa"}, "kind": {"contact"}, "opt_in_status": {"single_opt_in_user"},
				"consent." + marketing + ".state": {"granted"}, "consent." + marketing + ".source": {phone}}
			for i := 0; i+1 < len(kv); i += 2 {
				f.Set(kv[i], kv[i+1])
			}
			return f
		}
		nothingWritten := func(what string) {
			t.Helper()
			if n := count(t, db, `SELECT count(*) FROM contacts`) + count(t, db, `SELECT count(*) FROM consent_records`) +
				count(t, db, `SELECT count(*) FROM opt_in_changes`); n != 0 {
				t.Fatalf("%s wrote %d rows", what, n)
			}
		}
		for _, c := range []struct {
			name    string
			form    url.Values
			field   string
			message string // "": any
		}{
			{"a status only a confirmation sets", form("opt_in_status", "double_opt_in"), "opt_in_status", ""},
			{"an unknown status", form("opt_in_status", "maybe"), "opt_in_status",
				"must be one of none, single_opt_in_user, single_opt_in_webform, double_opt_in, opt_out_user, opt_out_contact"},
			{"an unknown kind", form("kind", "alien"), "kind", "must be lead or contact"},
			{"a consent with no source", form("consent."+marketing+".source", ""), "consent." + marketing + ".source", ""},
			{"a bad address", form("email", "not an address"), "email", ""},
		} {
			code, body := admin.post(e.srv.URL+"/admin/contacts", c.form)
			msg := regexp.MustCompile(`<p class="error" id="` + regexp.QuoteMeta(c.field) + `-error" role="alert">([^<]*)</p>`).FindStringSubmatch(body)
			if code < 400 || code >= 500 || msg == nil {
				t.Fatalf("%s: %d, no error next to %s: %s", c.name, code, c.field, body)
			}
			if c.message != "" && msg[1] != c.message {
				t.Fatalf("%s: the error reads %q, want %q", c.name, msg[1], c.message)
			}
			// The field itself says it is wrong, and where it is said why.
			tag := regexp.MustCompile(`<(?:input|select|textarea) [^>]*id="` + regexp.QuoteMeta(c.field) + `"[^>]*>`).FindString(body)
			if !strings.Contains(tag, `aria-invalid="true"`) || !regexp.MustCompile(`aria-describedby="[^"]*\b`+regexp.QuoteMeta(c.field)+`-error\b`).MatchString(tag) {
				t.Fatalf("%s: the field is not marked invalid with its error: %s", c.name, tag)
			}
			// What was typed is on the page again.
			wants := []string{`value="Lisa"`, `<option value="granted" selected>`}
			if c.field != "kind" {
				wants = append(wants, `<option value="contact" selected>`)
			}
			for _, want := range wants {
				if !strings.Contains(body, want) {
					t.Fatalf("%s: the form lost %s: %s", c.name, want, body)
				}
			}
			nothingWritten(c.name)
		}

		// A legal basis posted (the form has none: a consent record's is its
		// purpose's) is not taken.
		code, body := admin.post(e.srv.URL+"/admin/contacts", form("consent."+service+".state", "withdrawn", "consent."+service+".source", phone,
			"consent."+service+".legal_basis", "consent"))
		if code != 200 || admin.last.Request.Method != "GET" || !strings.HasPrefix(admin.last.Request.URL.Path, "/admin/contacts/") ||
			admin.last.Request.URL.Query().Get("done") != "created" || !strings.Contains(body, "Contact created.") {
			t.Fatalf("create: %d at %s %s: %s", code, admin.last.Request.Method, admin.last.Request.URL, body)
		}
		if !strings.Contains(body, `<strong id="optin-status">Single opt-in (user)</strong>`) {
			t.Fatalf("the record does not show the starting opt-in status: %s", body)
		}
		if row := consentRowOf(t, body, "E-marketing"); !strings.Contains(row, "state-granted") || !strings.Contains(row, "Phone") || !strings.Contains(row, "Ada Admin") {
			t.Fatalf("E-marketing row: %s", row)
		}
		if row := consentRowOf(t, body, "Sales and service"); !strings.Contains(row, "state-withdrawn") || !strings.Contains(row, "Contract") {
			t.Fatalf("Sales and service row: %s", row)
		}
		if n := count(t, db, `SELECT count(*) FROM consent_records WHERE source_id = $1`, phone); n != 2 {
			t.Fatalf("%d consent records from the phone", n)
		}
		if n := count(t, db, `SELECT count(*) FROM opt_in_changes WHERE to_status = 'single_opt_in_user'`); n != 1 {
			t.Fatalf("%d opt-in changes", n)
		}
		admin.get(admin.last.Request.URL.String())
		if n := count(t, db, `SELECT count(*) FROM contacts`); n != 1 {
			t.Fatalf("reloading the record made %d contacts", n)
		}
		e.ledgerVerifies()
	})
}

var revealedAt = regexp.MustCompile(`^/admin/contacts/[^/]+/reveal/national_id/[A-Za-z0-9_-]{43}$`)

// TestRevealAsksAReasonAndShowsOnce: a reveal needs a reason; it redirects
// to a page that shows the value once and logs it once, with the reason;
// reloading that page, or another user opening it, shows nothing and logs
// nothing. The access log page then says what happened in words.
func TestRevealAsksAReasonAndShowsOnce(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		ids := withSensitive(e)
		billing := e.signIn(admin, "billing@acme.example", auth.RoleBilling)
		record := e.srv.URL + "/admin/contacts/" + ids[0]
		reveal := record + "/reveal/national_id"

		code, body := billing.post(reveal, url.Values{"reason": {"  "}})
		if code != 400 || !strings.Contains(body, `id="reason.national_id-error" role="alert"`) || strings.Contains(body, "198501011234") {
			t.Fatalf("no reason: %d %s", code, body)
		}
		if n := count(t, db, `SELECT count(*) FROM access_log`) + count(t, db, `SELECT count(*) FROM one_time_grants`); n != 0 {
			t.Fatalf("a reveal without a reason wrote %d rows", n)
		}

		code, body = billing.post(reveal, url.Values{"reason": {"Customer called about invoice 77"}})
		shown := billing.last.Request.URL
		if code != 200 || billing.last.Request.Method != "GET" || !revealedAt.MatchString(shown.Path) ||
			!strings.Contains(body, `<span class="revealed"`) || !strings.Contains(body, "198501011234") {
			t.Fatalf("reveal: %d at %s %s: %s", code, billing.last.Request.Method, shown, body)
		}
		if n := count(t, db, `SELECT count(*) FROM access_log WHERE field = 'national_id' AND contact_id = $1 AND reason = 'Customer called about invoice 77'`, ids[0]); n != 1 {
			t.Fatalf("the reveal is logged %d times with its reason", n)
		}
		// Reloading shows nothing and logs nothing.
		code, body = billing.get(shown.String())
		if code != 200 || billing.last.Request.URL.Path != "/admin/contacts/"+ids[0] || strings.Contains(body, "198501011234") ||
			!strings.Contains(body, "That value was shown once.") {
			t.Fatalf("reload: %d at %s: %s", code, billing.last.Request.URL, body)
		}
		if n := count(t, db, `SELECT count(*) FROM access_log`); n != 1 {
			t.Fatalf("after a reload the access log holds %d entries", n)
		}
		// A grant is its user's: another user opening it sees nothing, and
		// the grant stays for its owner, until it is used.
		target := billing.redirectOf(reveal, url.Values{"reason": {"Second look"}})
		if strings.Contains(grantsText(t, db), "Second look") {
			t.Fatal("a grant holds its reason in the clear")
		}
		if _, body := admin.get(target); strings.Contains(body, "198501011234") {
			t.Fatal("another user's grant revealed the value")
		}
		if _, body := billing.get(target); !strings.Contains(body, "198501011234") {
			t.Fatalf("the owner could not use their grant after someone else tried: %s", body)
		}
		if n := count(t, db, `SELECT count(*) FROM access_log`); n != 2 {
			t.Fatalf("the access log holds %d entries, want 2", n)
		}

		// A look-up with a sensitive value, then the access log in words.
		admin.get(e.srv.URL + "/admin/contacts?filter=" + url.QueryEscape(`national_id == "199006155678"`))
		_, body = admin.get(e.srv.URL + "/admin/access-log")
		for _, want := range []string{"Revealed national_id", "a@example.com", "Customer called about invoice 77", "Second look",
			"Looked up contacts by national_id", "no one contact", "billing@acme.example", "Ada Admin"} {
			if !strings.Contains(body, want) {
				t.Fatalf("the access log lacks %q: %s", want, body)
			}
		}
		if strings.Contains(body, ">"+ids[0]+"<") {
			t.Fatal("the access log shows a contact id instead of their name")
		}
	})
}

// grantsText returns what one-time grants hold, as text, for a test that
// nothing is in the clear.
func grantsText(t testing.TB, db *store.DB) string {
	t.Helper()
	rows, err := db.Read.Query(`SELECT hash, user_id, subject, sealed FROM one_time_grants`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var all strings.Builder
	for rows.Next() {
		var a, b, c, d string
		if err := rows.Scan(&a, &b, &c, &d); err != nil {
			t.Fatal(err)
		}
		all.WriteString(a + b + c + d)
	}
	return all.String()
}

var tokenSecretRE = regexp.MustCompile(`<code class="secret" id="token-secret">(cst_[A-Za-z0-9_-]{43})</code>`)

// TestTokenSecretShownOnce: creating an API token redirects to a page that
// shows its secret once; the secret works, is not in the database in the
// clear while waiting, and a reload does not show it again.
func TestTokenSecretShownOnce(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		tokens := e.srv.URL + "/admin/settings/tokens"
		if code, body := admin.post(tokens, url.Values{"name": {""}}); code != 400 || !strings.Contains(body, `id="name-error"`) {
			t.Fatalf("no name: %d %s", code, body)
		}
		target := admin.redirectOf(tokens, url.Values{"name": {"CRM sync"}})
		if strings.Contains(grantsText(t, db), "cst_") {
			t.Fatal("the grant holds the token's secret in the clear")
		}
		code, body := admin.get(target)
		m := tokenSecretRE.FindStringSubmatch(body)
		if code != 200 || m == nil || !strings.Contains(body, "Copy it now") {
			t.Fatalf("the new token's page: %d %s", code, body)
		}
		e2 := *e
		e2.token = m[1]
		e2.api("GET", "/api/v1/purposes", "", 200, nil)
		code, body = admin.get(target)
		if code != 200 || admin.last.Request.URL.Path != "/admin/settings/tokens" || strings.Contains(body, m[1]) ||
			!strings.Contains(body, "That token was shown once") {
			t.Fatalf("reload: %d at %s: %s", code, admin.last.Request.URL, body)
		}
		// Revoking redirects too.
		id := strings.Split(strings.TrimPrefix(target, tokens+"/"), "/")[0]
		admin.post(tokens+"/"+id+"/revoke", url.Values{})
		if admin.last.Request.Method != "GET" || admin.last.Request.URL.Query().Get("done") != "token_revoked" {
			t.Fatalf("revoking ends on %s %s", admin.last.Request.Method, admin.last.Request.URL)
		}
		e2.api("GET", "/api/v1/purposes", "", 401, nil)
	})
}

// TestErasedFieldShowsLocked: a field erased because its storage consent
// was withdrawn says so on the record, with the date, and its input is
// disabled, so saving the other fields works.
func TestErasedFieldShowsLocked(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		c := cardOnFile(e, "k@example.com", "granted")
		e.api("POST", "/api/v1/contacts/"+c.ID+"/consents", `{"purpose":"Card on file","state":"withdrawn","source":"Email"}`, 201, nil)
		record := e.srv.URL + "/admin/contacts/" + c.ID
		_, body := admin.get(record)
		if !strings.Contains(body, `id="erased-card_number">erased and locked (consent withdrawn 20`) ||
			!regexp.MustCompile(`<input type="text" id="e-card_number" value="" disabled`).MatchString(body) {
			t.Fatalf("the record does not show the locked field: %s", body)
		}
		// The form as the browser sends it: a disabled input is left out.
		code, body := admin.post(record, url.Values{"first_name": {"Karin"}})
		if code != 200 || !strings.Contains(body, "Saved.") {
			t.Fatalf("saving beside a locked field: %d %s", code, body)
		}
	})
}

// TestAdminFormsRedirect: the users, account and settings forms redirect
// after a change (post/redirect/get) with a notice, so that a reload
// repeats nothing.
func TestAdminFormsRedirect(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		e.signIn(admin, "agent@acme.example", auth.RoleAgent)
		var agentID string
		if err := db.Read.QueryRow(`SELECT id FROM users WHERE email = 'agent@acme.example'`).Scan(&agentID); err != nil {
			t.Fatal(err)
		}
		purpose := "/admin/settings/purposes/" + purposeID(e, "E-marketing")
		for _, c := range []struct {
			v        *visitor
			path     string
			form     url.Values
			endsAt   string
			notice   string
			countSQL string
		}{
			{admin, "/admin/users", url.Values{"email": {"new@acme.example"}, "role": {"agent"}, "password": {"a long enough password"}},
				"/admin/users", "User created", `SELECT count(*) FROM users`},
			{admin, "/admin/users/" + agentID + "/role", url.Values{"role": {"billing"}}, "/admin/users", "Role changed.", ""},
			{admin, "/admin/users/" + agentID + "/disable", url.Values{}, "/admin/users", "User disabled", ""},
			{admin, "/admin/users/" + agentID + "/enable", url.Values{}, "/admin/users", "User enabled.", ""},
			{admin, "/admin/settings/sources", url.Values{"name": {"Trade fair"}}, "/admin/settings/sources", "Source saved.", `SELECT count(*) FROM sources`},
			{admin, "/admin/settings/fields", url.Values{"name": {"shoe_size"}, "label": {"Shoe size"}, "type": {"number"}},
				"/admin/settings/fields", "Field saved.", `SELECT count(*) FROM field_definitions`},
			{admin, purpose, url.Values{"name": {"E-marketing"}, "legal_basis": {"consent"}, "text": {"Send me news"}}, purpose, "Purpose saved.",
				`SELECT count(*) FROM purpose_texts`},
			{admin, "/admin/settings/preferences-page", url.Values{"statement": {"We keep your choices."}}, "/admin/settings/preferences-page",
				"Preferences page saved.", ""},
			{admin, "/admin/account", url.Values{"current_password": {"correct horse battery"}, "password": {"another long password"},
				"password2": {"another long password"}}, "/admin/account", "Password changed", ""},
		} {
			code, body := c.v.post(e.srv.URL+c.path, c.form)
			if code != 200 || c.v.last.Request.Method != "GET" || c.v.last.Request.URL.Path != c.endsAt || !strings.Contains(body, c.notice) {
				t.Fatalf("POST %s: %d, ends on %s %s: %s", c.path, code, c.v.last.Request.Method, c.v.last.Request.URL, body)
			}
			if c.countSQL != "" {
				before := count(t, db, c.countSQL)
				c.v.get(c.v.last.Request.URL.String())
				if after := count(t, db, c.countSQL); after != before {
					t.Fatalf("reloading after POST %s changed %d to %d", c.path, before, after)
				}
			}
		}
	})
}
