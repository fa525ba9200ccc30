package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/api"
	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/clientip"
	"github.com/consentry/consentry/internal/config"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/vault/vaulttest"
)

// noAuth as a scenario's auth sends no Authorization header at all.
const noAuth = "-"

// env is one running service on a fresh database, with a valid API token.
type env struct {
	a     *app.App
	srv   *httptest.Server
	token string
	tokID string
	// vars are values captured by earlier scenarios ({{name}} in a later
	// scenario's url and body).
	vars map[string]string
}

func newEnv(t testing.TB, db *store.DB) *env { return newEnvConfig(t, db, nil) }

// newEnvSMTP is newEnv with email sent to smtpURL ("": the dev mailbox).
func newEnvSMTP(t testing.TB, db *store.DB, smtpURL string) *env {
	t.Helper()
	return newEnvConfig(t, db, func(c *config.Config) { c.SMTPURL = smtpURL })
}

// newEnvConfig is newEnv with the configuration changed by configure
// (nil: as it is).
func newEnvConfig(t testing.TB, db *store.DB, configure func(*config.Config)) *env {
	t.Helper()
	keyset, master := vaulttest.Files(t)
	cfg := &config.Config{BaseURL: "http://test", MailFrom: "Acme <privacy@acme.example>", KeysetFile: keyset, MasterKey: master}
	// The scenarios read the whole state around every request (state),
	// well over the token's burst of 600 within a second on a fast
	// machine: the API's rate limit, tested on its own in
	// ratelimit_test.go, is set out of their way.
	cfg.Rates.API = clientip.Rate{PerMinute: 6_000_000, Burst: 100_000}
	if configure != nil {
		configure(cfg)
	}
	a, err := app.New(cfg, slog.New(slog.DiscardHandler), db)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	secret, tok, err := a.Tokens.Create(context.Background(), audit.Actor{Kind: "user"}, "test", nil)
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	admin, _, err := a.Tokens.Create(context.Background(), audit.Actor{Kind: "user"}, "operator", nil, auth.ScopeAdmin, auth.ScopeErasure)
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	// secret, short (a prefix of it) and tok (its id) are there for
	// scenarios; admin is the Authorization header of a token that may
	// change settings and purposes and erase contacts.
	vars := map[string]string{"secret": secret, "short": secret[:20], "tok": tok.ID, "admin": "Bearer " + admin}
	return &env{a: a, srv: srv, token: secret, tokID: tok.ID, vars: vars}
}

func (e *env) expand(s string) string {
	for k, v := range e.vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	return s
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request. auth "" sends the test token, noAuth sends none and
// anything else is sent as the Authorization header as it is.
func (e *env) do(t testing.TB, method, path, body, auth string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	switch auth {
	case "":
		req.Header.Set("Authorization", "Bearer "+e.token)
	case noAuth:
	default:
		req.Header.Set("Authorization", auth)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// get sends an authenticated GET and fails the test unless it answers 200.
func (e *env) get(t testing.TB, path string) []byte {
	t.Helper()
	r := e.do(t, "GET", path, "", "")
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, r.status, r.body)
	}
	return r.body
}

func decodeAs[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, body)
	}
	return v
}

// state is what a refused request must leave as it was, read through the
// API itself.
type state struct {
	contacts int    // every contact, counted through the paged list
	events   int64  // ledger events, from /api/v1/ledger/verify
	history  int    // consent records of the watched contact
	optIns   int    // opt-in changes of the watched contact
	watched  string // the watched contact as GET returns it
}

func (e *env) state(t testing.TB) state {
	t.Helper()
	var s state
	after := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("contact paging does not end")
		}
		p := decodeAs[api.ContactPage](t, e.get(t, "/api/v1/contacts?limit=500&after="+url.QueryEscape(after)))
		s.contacts += len(p.Items)
		if p.Next == "" {
			break
		}
		after = p.Next
	}
	s.events = decodeAs[ledger.Report](t, e.get(t, "/api/v1/ledger/verify")).Events
	if id := e.vars["c1"]; id != "" {
		s.history = len(decodeAs[api.ConsentsResponse](t, e.get(t, "/api/v1/contacts/"+id+"/consents")).History)
		s.optIns = len(decodeAs[api.OptInResponse](t, e.get(t, "/api/v1/contacts/"+id+"/opt-in")).History)
		s.watched = string(e.get(t, "/api/v1/contacts/"+id))
	}
	return s
}

// scenario is one request and what must come back.
type scenario struct {
	name     string
	method   string
	url      string // {{var}} is replaced by a value an earlier scenario captured
	body     string // likewise
	auth     string // "": the test token; noAuth: none; else the Authorization header
	status   int
	contains []string // substrings the body must hold
	absent   []string // substrings the body must not hold
	errCode  string   // for errors: error.code
	errField string   // for errors: error.field ("" means the field must be absent)
	events   int      // ledger events the request must append (0 for every refused request)
	check    func(t testing.TB, body []byte)
}

// run plays the scenarios in order on one service. Every refused request
// (status 400 and up) must answer {"error":{"code","message","field"}} and
// leave contacts, the watched contact's consent and opt-in history, the
// watched contact itself and the ledger as they were.
func (e *env) run(t testing.TB, list []scenario) {
	tt := t.(*testing.T)
	for _, sc := range list {
		tt.Run(sc.name, func(t *testing.T) {
			path, body, auth := e.expand(sc.url), e.expand(sc.body), sc.auth
			if auth != noAuth {
				auth = e.expand(auth)
			}
			before := e.state(t)
			r := e.do(t, sc.method, path, body, auth)
			if r.status != sc.status {
				t.Fatalf("%s %s: status %d, want %d: %s", sc.method, path, r.status, sc.status, r.body)
			}
			for _, s := range sc.contains {
				if !bytes.Contains(r.body, []byte(e.expand(s))) {
					t.Errorf("body lacks %q: %s", e.expand(s), r.body)
				}
			}
			for _, s := range sc.absent {
				if bytes.Contains(r.body, []byte(e.expand(s))) {
					t.Errorf("body holds %q: %s", e.expand(s), r.body)
				}
			}
			// Every answer, the catch-all for unknown routes included.
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
			if got := r.header.Get("Content-Security-Policy"); got != "default-src 'none'; frame-ancestors 'none'" {
				t.Errorf("Content-Security-Policy %q", got)
			}
			if r.header.Get("Referrer-Policy") != "no-referrer" || r.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers %v", r.header)
			}
			if r.status >= 400 {
				checkError(t, r, sc.errCode, sc.errField)
			} else if sc.errCode != "" {
				t.Fatalf("scenario expects error %s but status is %d", sc.errCode, r.status)
			}
			if r.status == http.StatusNoContent {
				if len(r.body) != 0 {
					t.Errorf("204 with a body: %s", r.body)
				}
			} else if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			after := e.state(t)
			if r.status >= 400 {
				if after != before {
					t.Errorf("refused request wrote something:\nbefore %+v\nafter  %+v", before, after)
				}
			} else if got := after.events - before.events; got != int64(sc.events) {
				t.Errorf("ledger grew by %d events, want %d", got, sc.events)
			}
			if sc.check != nil && !t.Failed() {
				sc.check(t, r.body)
			}
		})
	}
}

// checkError checks the error body: exactly {"error":{"code","message"[,"field"]}}.
func checkError(t testing.TB, r response, code, field string) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &top); err != nil || len(top) != 1 || top["error"] == nil {
		t.Fatalf("error body is not {\"error\":{...}}: %s", r.body)
	}
	var detail map[string]any
	if err := json.Unmarshal(top["error"], &detail); err != nil {
		t.Fatalf("error is not an object: %s", r.body)
	}
	for k := range detail {
		if k != "code" && k != "message" && k != "field" && k != "row" && k != "byte" {
			t.Errorf("error has an unexpected member %q: %s", k, r.body)
		}
	}
	if c, _ := detail["code"].(string); c != code {
		t.Errorf("error.code %q, want %q: %s", c, code, r.body)
	}
	if m, _ := detail["message"].(string); strings.TrimSpace(m) == "" {
		t.Errorf("error.message is empty: %s", r.body)
	}
	f, has := detail["field"]
	switch {
	case field == "" && has:
		t.Errorf("error.field %v, want none: %s", f, r.body)
	case field != "" && f != field:
		t.Errorf("error.field %v, want %q: %s", f, field, r.body)
	}
	if r.status == http.StatusUnauthorized {
		if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
			t.Errorf("401 without a Bearer WWW-Authenticate challenge: %q", got)
		}
	}
}

func TestAPIScenarios(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		var created, paged []string // contact ids in creation order; ids seen while paging
		capture := func(name string) func(t testing.TB, body []byte) {
			return func(t testing.TB, body []byte) {
				var v struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal(body, &v); err != nil || v.ID == "" {
					t.Fatalf("no id in %s", body)
				}
				e.vars[name] = v.ID
			}
		}
		newContact := func(name string) func(t testing.TB, body []byte) {
			return func(t testing.TB, body []byte) {
				c := decodeAs[contact.Contact](t, body)
				if c.ID == "" || c.LedgerRef == "" || c.CreatedAt.IsZero() {
					t.Fatalf("created contact lacks id, ledger_ref or created_at: %s", body)
				}
				e.vars[name] = c.ID
				created = append(created, c.ID)
			}
		}
		page := func(n int, next bool, saveAs string) func(t testing.TB, body []byte) {
			return func(t testing.TB, body []byte) {
				p := decodeAs[api.ContactPage](t, body)
				if len(p.Items) != n || (p.Next != "") != next {
					t.Fatalf("page has %d items and next %q, want %d items and next %v", len(p.Items), p.Next, n, next)
				}
				for _, c := range p.Items {
					paged = append(paged, c.ID)
				}
				if next {
					if p.Next != p.Items[n-1].ID {
						t.Errorf("next cursor %q is not the page's last id %q", p.Next, p.Items[n-1].ID)
					}
					e.vars[saveAs] = p.Next
				}
			}
		}
		lookup := func(want string) func(t testing.TB, body []byte) {
			return func(t testing.TB, body []byte) {
				p := decodeAs[api.ContactPage](t, body)
				if want == "" {
					if len(p.Items) != 0 {
						t.Fatalf("look-up found %d contacts, want none", len(p.Items))
					}
					return
				}
				if len(p.Items) != 1 || p.Items[0].ID != e.vars[want] || p.Next != "" {
					t.Fatalf("look-up found %s, want only %s", body, e.vars[want])
				}
			}
		}
		const (
			emarketing = "01930000-0000-7000-8000-000000000002"
			sales      = "01930000-0000-7000-8000-000000000001"
			badToken   = "Bearer cst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // well formed, never issued
		)
		grant := `{"purpose":"E-marketing","state":"granted","source":"Web form"}`

		e.run(t, []scenario{
			// Contacts: create, read, change, list, page, look up, delete.
			{name: "create contact", method: "POST", url: "/api/v1/contacts",
				body:   `{"email":" Anna.Berg@Example.com ","kind":"lead","first_name":"Anna","phone":"+46 70 123 45 67"}`,
				status: 201, contains: []string{`"id":"`, `"email":"Anna.Berg@Example.com"`, `"kind":"lead"`, `"opt_in_status":"none"`, `"first_name":"Anna"`},
				check: newContact("c1")},
			{name: "get contact", method: "GET", url: "/api/v1/contacts/{{c1}}", status: 200,
				contains: []string{`"id":"{{c1}}"`, `"email":"Anna.Berg@Example.com"`, `"phone":"+46 70 123 45 67"`, `"fields":{}`}},
			{name: "patch contact", method: "PATCH", url: "/api/v1/contacts/{{c1}}",
				body:   `{"kind":"contact","last_name":"Berg","country":"se","language":"sv"}`,
				status: 200, contains: []string{`"kind":"contact"`, `"last_name":"Berg"`, `"country":"SE"`, `"language":"sv"`, `"first_name":"Anna"`},
				check: func(t testing.TB, body []byte) {
					c := decodeAs[contact.Contact](t, body)
					if !c.UpdatedAt.After(c.CreatedAt) && !c.UpdatedAt.Equal(c.CreatedAt) {
						t.Errorf("updated_at %v before created_at %v", c.UpdatedAt, c.CreatedAt)
					}
				}},
			{name: "get contact after patch keeps every field", method: "GET", url: "/api/v1/contacts/{{c1}}", status: 200,
				contains: []string{`"kind":"contact"`, `"last_name":"Berg"`, `"first_name":"Anna"`, `"country":"SE"`, `"phone":"+46 70 123 45 67"`}},
			{name: "create second contact", method: "POST", url: "/api/v1/contacts", body: `{"email":"p1@example.com"}`,
				status: 201, contains: []string{`"kind":"lead"`}, check: newContact("p1")},
			{name: "create third contact", method: "POST", url: "/api/v1/contacts", body: `{"email":"p2@example.com","kind":"contact"}`,
				status: 201, check: newContact("p2")},
			{name: "create fourth contact", method: "POST", url: "/api/v1/contacts", body: `{"email":"p3@example.com"}`,
				status: 201, check: newContact("p3")},
			{name: "create fifth contact", method: "POST", url: "/api/v1/contacts", body: `{"email":"p4@example.com"}`,
				status: 201, check: newContact("p4")},
			{name: "list page 1 of 3", method: "GET", url: "/api/v1/contacts?limit=2", status: 200,
				contains: []string{`"next":"`}, check: page(2, true, "next1")},
			{name: "list page 2 of 3", method: "GET", url: "/api/v1/contacts?limit=2&after={{next1}}", status: 200,
				contains: []string{`"next":"`}, check: page(2, true, "next2")},
			{name: "list page 3 of 3", method: "GET", url: "/api/v1/contacts?limit=2&after={{next2}}", status: 200,
				absent: []string{`"next"`}, check: func(t testing.TB, body []byte) {
					page(1, false, "")(t, body)
					if !slices.Equal(paged, created) {
						t.Errorf("paging gave %v, want every contact once in creation order %v", paged, created)
					}
				}},
			{name: "list default page holds all", method: "GET", url: "/api/v1/contacts", status: 200, absent: []string{`"next"`},
				check: func(t testing.TB, body []byte) {
					if n := len(decodeAs[api.ContactPage](t, body).Items); n != 5 {
						t.Errorf("%d contacts, want 5", n)
					}
				}},
			{name: "look up email in lower case", method: "GET", url: "/api/v1/contacts?email=anna.berg%40example.com", status: 200, check: lookup("c1")},
			{name: "look up email in upper case", method: "GET", url: "/api/v1/contacts?email=ANNA.BERG%40EXAMPLE.COM", status: 200, check: lookup("c1")},
			{name: "look up email with paging", method: "GET", url: "/api/v1/contacts?email=P3%40example.com&limit=1", status: 200, check: lookup("p3")},
			{name: "look up unknown email", method: "GET", url: "/api/v1/contacts?email=nobody%40example.com", status: 200,
				contains: []string{`"items":[]`}, check: lookup("")},
			{name: "delete contact", method: "DELETE", auth: "{{admin}}", url: "/api/v1/contacts/{{p4}}", status: 204, events: 1},
			{name: "deleted contact is gone", method: "GET", url: "/api/v1/contacts/{{p4}}", status: 404, errCode: "contact_not_found"},
			{name: "deleted contact has no consents", method: "GET", url: "/api/v1/contacts/{{p4}}/consents", status: 404, errCode: "contact_not_found"},
			{name: "delete contact twice", method: "DELETE", auth: "{{admin}}", url: "/api/v1/contacts/{{p4}}", status: 404, errCode: "contact_not_found"},
			{name: "deleted contact is not found by email", method: "GET", url: "/api/v1/contacts?email=p4%40example.com", status: 200, check: lookup("")},

			// Custom fields.
			{name: "define sensitive field", method: "POST", url: "/api/v1/fields",
				body:   `{"name":"customer_no","type":"text","label":"Customer number","personal":true,"sensitive":true}`,
				status: 201, contains: []string{`"name":"customer_no"`, `"sensitive":true`, `"personal":true`, `"mask":"last:4"`}},
			{name: "define number field", method: "POST", url: "/api/v1/fields", body: `{"name":"score","type":"number"}`,
				status: 201, contains: []string{`"label":"score"`, `"sensitive":false`}},
			{name: "get field", method: "GET", url: "/api/v1/fields/customer_no", status: 200, contains: []string{`"label":"Customer number"`}},
			{name: "list fields", method: "GET", url: "/api/v1/fields", status: 200,
				check: func(t testing.TB, body []byte) {
					var names []string
					for _, f := range decodeAs[[]contact.FieldDefinition](t, body) {
						names = append(names, f.Name)
					}
					if !slices.Equal(names, []string{"customer_no", "score"}) {
						t.Errorf("fields %v", names)
					}
				}},
			{name: "relabel field", method: "PATCH", url: "/api/v1/fields/customer_no", body: `{"label":"Customer no."}`,
				status: 200, contains: []string{`"label":"Customer no."`, `"sensitive":true`}},
			{name: "set custom fields", method: "PATCH", url: "/api/v1/contacts/{{c1}}", body: `{"fields":{"customer_no":"12345678","score":"4.5"}}`,
				status: 200, contains: []string{`"customer_no":"••••5678"`, `"score":4.5`}, absent: []string{"12345678"}},
			{name: "sensitive field stays masked on read", method: "GET", url: "/api/v1/contacts/{{c1}}", status: 200,
				contains: []string{`"customer_no":"••••5678"`}, absent: []string{"12345678"}},
			{name: "null removes a custom field", method: "PATCH", url: "/api/v1/contacts/{{c1}}", body: `{"fields":{"score":null}}`,
				status: 200, contains: []string{`"customer_no":"••••5678"`}, absent: []string{`"score"`}},

			// Purposes and their versioned consent texts.
			{name: "list seeded purposes", method: "GET", url: "/api/v1/purposes", status: 200,
				contains: []string{`"name":"E-marketing"`, `"name":"Sales and service"`, `"legal_basis":"contract"`}},
			{name: "create purpose", method: "POST", auth: "{{admin}}", url: "/api/v1/purposes",
				body:   `{"name":"Share with partners","legal_basis":"consent","description":"Partners may contact you.","text":"Share v1","retention_days":365}`,
				status: 201, contains: []string{`"text_version":1`, `"text":"Share v1"`, `"retention_days":365`}, check: capture("share")},
			{name: "change purpose text makes version 2", method: "PATCH", auth: "{{admin}}", url: "/api/v1/purposes/{{share}}", body: `{"text":"Share v2"}`,
				status: 200, contains: []string{`"text_version":2`, `"text":"Share v2"`, `"description":"Partners may contact you."`}},
			{name: "same text makes no new version", method: "PATCH", auth: "{{admin}}", url: "/api/v1/purposes/{{share}}", body: `{"text":"Share v2","default_selected":false}`,
				status: 200, contains: []string{`"text_version":2`}},
			{name: "texts keep both versions", method: "GET", url: "/api/v1/purposes/{{share}}/texts", status: 200,
				check: func(t testing.TB, body []byte) {
					texts := decodeAs[[]consent.PurposeText](t, body)
					if len(texts) != 2 || texts[0].Version != 1 || texts[0].Text != "Share v1" || texts[1].Version != 2 || texts[1].Text != "Share v2" {
						t.Errorf("texts %s, want v1 Share v1 and v2 Share v2", body)
					}
				}},
			{name: "get purpose by name", method: "GET", url: "/api/v1/purposes/share%20WITH%20partners", status: 200,
				contains: []string{`"id":"{{share}}"`, `"text_version":2`, `"text":"Share v2"`}},

			// Sources.
			{name: "create source", method: "POST", url: "/api/v1/sources", body: `{"name":"Trade fair"}`,
				status: 201, contains: []string{`"name":"Trade fair"`, `"active":true`}, check: capture("fair")},
			{name: "record consent with the source by name", method: "POST", url: "/api/v1/contacts/{{c1}}/consents",
				body:   `{"purpose":"Sales and service","state":"granted","source":"trade FAIR"}`,
				status: 201, events: 1, contains: []string{`"source":"Trade fair"`, `"legal_basis":"contract"`, `"purpose":"Sales and service"`}},
			{name: "deactivate source", method: "PATCH", url: "/api/v1/sources/{{fair}}", body: `{"active":false}`,
				status: 200, contains: []string{`"active":false`, `"name":"Trade fair"`}},
			{name: "inactive source is listed", method: "GET", url: "/api/v1/sources", status: 200,
				contains: []string{`"name":"Trade fair","active":false`, `"name":"Web form","active":true`}},
			{name: "inactive source is refused for a new consent", method: "POST", url: "/api/v1/contacts/{{c1}}/consents",
				body:   `{"purpose":"E-marketing","state":"granted","source":"Trade fair"}`,
				status: 422, errCode: "source_inactive", errField: "source"},
			{name: "inactive source by id is refused", method: "POST", url: "/api/v1/contacts/{{c1}}/consents",
				body:   `{"purpose":"E-marketing","state":"granted","source":"{{fair}}"}`,
				status: 422, errCode: "source_inactive", errField: "source"},

			// Consents: record, current state for every purpose, history.
			{name: "record consent with evidence", method: "POST", url: "/api/v1/contacts/{{c1}}/consents",
				body:   `{"purpose":"E-marketing","state":"granted","source":"Web form","evidence":{"method":"import","ip":"192.0.2.1","user_agent":"Browser/1.0"}}`,
				status: 201, events: 1,
				contains: []string{`"state":"granted"`, `"legal_basis":"consent"`, `"text_version":1`, `"purpose_id":"` + emarketing + `"`,
					`"actor":{"kind":"api_token","id":"{{tok}}"}`, `"method":"import"`, `"ip":"192.0.2.1"`, `"user_agent":"Browser/1.0"`},
				check: func(t testing.TB, body []byte) {
					if r := decodeAs[consent.Record](t, body); r.LedgerSeq <= 0 || r.ContactID != e.vars["c1"] {
						t.Errorf("record %s: want a ledger_seq and contact_id %s", body, e.vars["c1"])
					}
				}},
			{name: "record consent to the old text version", method: "POST", url: "/api/v1/contacts/{{c1}}/consents",
				body:   `{"purpose":"{{share}}","state":"granted","source":"API","text_version":1,"text_language":"sv","expires_at":"2999-01-01T00:00:00Z"}`,
				status: 201, events: 1, contains: []string{`"text_version":1`, `"text_language":"sv"`, `"purpose":"Share with partners"`, `"expires_at":"2999-01-01T00:00:00Z"`, `"method":"api"`}},
			{name: "withdraw consent", method: "POST", url: "/api/v1/contacts/{{c1}}/consents",
				body:   `{"purpose":"e-marketing","state":"withdrawn","source":"Email","evidence":{"method":"entered_by_user"}}`,
				status: 201, events: 1, contains: []string{`"state":"withdrawn"`, `"source":"Email"`}},
			{name: "consents: current for every purpose and full history", method: "GET", url: "/api/v1/contacts/{{c1}}/consents", status: 200,
				check: func(t testing.TB, body []byte) {
					cr := decodeAs[api.ConsentsResponse](t, body)
					if cr.ContactID != e.vars["c1"] {
						t.Errorf("contact_id %q", cr.ContactID)
					}
					cur := map[string]consent.Current{}
					for _, c := range cr.Current {
						cur[c.PurposeName] = c
					}
					if len(cr.Current) != 3 {
						t.Fatalf("current has %d purposes, want 3: %s", len(cr.Current), body)
					}
					if c := cur["E-marketing"]; c.State != "withdrawn" || c.Source != "Email" || c.RecordID == "" || c.RecordedAt == nil {
						t.Errorf("E-marketing current %+v", c)
					}
					if c := cur["Sales and service"]; c.State != "granted" || c.Source != "Trade fair" || c.LegalBasis != "contract" {
						t.Errorf("Sales and service current %+v", c)
					}
					if c := cur["Share with partners"]; c.State != "granted" || c.TextVersion != 1 || c.ExpiresAt == nil {
						t.Errorf("Share with partners current %+v", c)
					}
					if len(cr.History) != 4 {
						t.Fatalf("history has %d records, want 4: %s", len(cr.History), body)
					}
					h := cr.History
					want := []struct{ purpose, state, source, method string }{
						{"Sales and service", "granted", "Trade fair", "api"},
						{"E-marketing", "granted", "Web form", "import"},
						{"Share with partners", "granted", "API", "api"},
						{"E-marketing", "withdrawn", "Email", "entered_by_user"},
					}
					for i, w := range want {
						r := h[i]
						if r.PurposeName != w.purpose || r.State != w.state || r.Source != w.source || r.Evidence.Method != w.method ||
							r.Actor.Kind != consent.ActorAPIToken || r.Actor.ID != e.tokID || r.ContactID != e.vars["c1"] {
							t.Errorf("history[%d] = %+v, want %+v by the test token", i, r, w)
						}
						if i > 0 && r.LedgerSeq <= h[i-1].LedgerSeq {
							t.Errorf("history not in ledger order: %d after %d", r.LedgerSeq, h[i-1].LedgerSeq)
						}
					}
					if h[1].Evidence.IP != "192.0.2.1" || h[1].Evidence.UserAgent != "Browser/1.0" {
						t.Errorf("evidence lost: %+v", h[1].Evidence)
					}
				}},
			{name: "consents: none for every purpose of a new contact", method: "GET", url: "/api/v1/contacts/{{p1}}/consents", status: 200,
				contains: []string{`"history":[]`},
				check: func(t testing.TB, body []byte) {
					cr := decodeAs[api.ConsentsResponse](t, body)
					if len(cr.Current) != 3 {
						t.Fatalf("current has %d purposes, want 3", len(cr.Current))
					}
					for _, c := range cr.Current {
						if c.State != "none" || c.RecordID != "" || c.RecordedAt != nil || c.LegalBasis == "" {
							t.Errorf("untouched purpose %+v: want state none, no record, the purpose's legal basis", c)
						}
					}
				}},
			{name: "old text version stays readable", method: "GET", url: "/api/v1/purposes/{{share}}/texts", status: 200,
				contains: []string{`"version":1,"text":"Share v1"`}},

			// Email opt-in status.
			{name: "opt-in starts at none", method: "GET", url: "/api/v1/contacts/{{c1}}/opt-in", status: 200,
				contains: []string{`"status":"none"`, `"history":[]`}, absent: []string{`"change"`}},
			{name: "user opts out", method: "POST", url: "/api/v1/contacts/{{c1}}/opt-in", body: `{"status":"opt_out_user"}`,
				status: 200, events: 1, contains: []string{`"status":"opt_out_user"`, `"change":{`, `"from":"none","to":"opt_out_user"`}},
			{name: "contact shows the opt-out", method: "GET", url: "/api/v1/contacts/{{c1}}", status: 200,
				contains: []string{`"opt_in_status":"opt_out_user"`}},
			{name: "user lifts own opt-out", method: "POST", url: "/api/v1/contacts/{{c1}}/opt-in", body: `{"status":"none","evidence":{"method":"entered_by_user"}}`,
				status: 200, events: 1, contains: []string{`"status":"none"`, `"from":"opt_out_user","to":"none"`},
				check: func(t testing.TB, body []byte) {
					o := decodeAs[api.OptInResponse](t, body)
					if len(o.History) != 2 || o.History[0].To != "opt_out_user" || o.History[1].To != "none" ||
						o.History[1].Evidence.Method != "entered_by_user" || o.History[1].Actor.ID != e.tokID {
						t.Errorf("opt-in history %+v", o.History)
					}
				}},
			{name: "same status changes nothing", method: "POST", url: "/api/v1/contacts/{{c1}}/opt-in", body: `{"status":"none"}`,
				status: 200, contains: []string{`"status":"none"`}, absent: []string{`"change"`}},
			{name: "double opt-in by a user is refused", method: "POST", url: "/api/v1/contacts/{{c1}}/opt-in", body: `{"status":"double_opt_in"}`,
				status: 422, errCode: "double_opt_in_needs_confirmation", errField: "status"},
			{name: "single opt-in user after create is refused", method: "POST", url: "/api/v1/contacts/{{c1}}/opt-in", body: `{"status":"single_opt_in_user"}`,
				status: 422, errCode: "single_opt_in_user_on_create_only", errField: "status"},
			{name: "contact opt-out by a user is refused", method: "POST", url: "/api/v1/contacts/{{c1}}/opt-in", body: `{"status":"opt_out_contact"}`,
				status: 422, errCode: "contact_only", errField: "status"},
			{name: "webform opt-in by a user is refused", method: "POST", url: "/api/v1/contacts/{{c1}}/opt-in", body: `{"status":"single_opt_in_webform"}`,
				status: 422, errCode: "webform_only", errField: "status"},
			{name: "unknown opt-in status", method: "POST", url: "/api/v1/contacts/{{c1}}/opt-in", body: `{"status":"maybe"}`,
				status: 400, errCode: "invalid", errField: "status"},
			{name: "missing opt-in status", method: "POST", url: "/api/v1/contacts/{{c1}}/opt-in", body: `{}`,
				status: 400, errCode: "required", errField: "status"},
			{name: "opt-in evidence a user cannot have", method: "POST", url: "/api/v1/contacts/{{c1}}/opt-in",
				body: `{"status":"opt_out_user","evidence":{"method":"double_opt_in_link"}}`, status: 400, errCode: "invalid", errField: "evidence.method"},
			{name: "create with single opt-in user", method: "POST", url: "/api/v1/contacts",
				body:   `{"email":"soi@example.com","opt_in_status":"single_opt_in_user","evidence":{"method":"entered_by_user"}}`,
				status: 201, events: 1, contains: []string{`"opt_in_status":"single_opt_in_user"`}, check: newContact("soi")},
			{name: "single opt-in user has its history", method: "GET", url: "/api/v1/contacts/{{soi}}/opt-in", status: 200,
				contains: []string{`"status":"single_opt_in_user"`, `"from":"none","to":"single_opt_in_user"`, `"method":"entered_by_user"`}},
			{name: "setting single opt-in user again later is refused", method: "POST", url: "/api/v1/contacts/{{p1}}/opt-in", body: `{"status":"single_opt_in_user"}`,
				status: 422, errCode: "single_opt_in_user_on_create_only", errField: "status"},
			{name: "create opted out", method: "POST", url: "/api/v1/contacts", body: `{"email":"out@example.com","opt_in_status":"opt_out_user"}`,
				status: 201, events: 1, contains: []string{`"opt_in_status":"opt_out_user"`}, check: newContact("out")},
			{name: "create with consents in one go", method: "POST", url: "/api/v1/contacts",
				body:   `{"email":"both@example.com","consents":[` + grant + `,{"purpose":"{{share}}","state":"withdrawn","source":"Meeting"}]}`,
				status: 201, events: 2, check: newContact("both")},
			{name: "consents given at create are recorded", method: "GET", url: "/api/v1/contacts/{{both}}/consents", status: 200,
				check: func(t testing.TB, body []byte) {
					cr := decodeAs[api.ConsentsResponse](t, body)
					if len(cr.History) != 2 || cr.History[0].PurposeName != "E-marketing" || cr.History[0].State != "granted" ||
						cr.History[1].PurposeName != "Share with partners" || cr.History[1].State != "withdrawn" || cr.History[1].TextVersion != 2 {
						t.Errorf("history %s", body)
					}
				}},

			// Refused requests: the right status and error, and nothing written.
			{name: "malformed JSON", method: "POST", url: "/api/v1/contacts", body: `{"email":`, status: 400, errCode: "malformed_json"},
			{name: "syntax error", method: "POST", url: "/api/v1/contacts", body: `{"email" "x@example.com"}`, status: 400, errCode: "malformed_json"},
			{name: "empty body", method: "POST", url: "/api/v1/contacts", status: 400, errCode: "malformed_json"},
			{name: "not UTF-8", method: "POST", url: "/api/v1/contacts", body: "{\"email\":\"nu@example.com\",\"first_name\":\"A\xffB\"}", status: 400,
				errCode: "malformed_json"},
			{name: "body is not an object", method: "POST", url: "/api/v1/contacts", body: `["x@example.com"]`, status: 400, errCode: "malformed_json"},
			{name: "trailing data", method: "POST", url: "/api/v1/contacts", body: `{"email":"t@example.com"} {}`, status: 400, errCode: "malformed_json"},
			{name: "body too large", method: "POST", url: "/api/v1/contacts",
				body: `{"email":"big@example.com","first_name":"` + strings.Repeat("a", 1<<20-10) + `"}`, status: 413, errCode: "body_too_large",
				contains: []string{"larger than 1 MiB"}},
			{name: "malformed JSON on consents", method: "POST", url: "/api/v1/contacts/{{c1}}/consents", body: `{"purpose":`, status: 400, errCode: "malformed_json"},
			{name: "unknown JSON field", method: "POST", url: "/api/v1/contacts", body: `{"email":"u@example.com","nickname":"U"}`,
				status: 400, errCode: "unknown_field", errField: "nickname"},
			{name: "unknown JSON field on consents", method: "POST", url: "/api/v1/contacts/{{c1}}/consents", body: `{"purpose":"E-marketing","state":"granted","source":"API","why":"x"}`,
				status: 400, errCode: "unknown_field", errField: "why"},
			{name: "wrong JSON type", method: "POST", url: "/api/v1/contacts/{{c1}}/consents", body: `{"purpose":1,"state":"granted","source":"API"}`,
				status: 400, errCode: "invalid", errField: "purpose"},
			{name: "wrong JSON type for a number", method: "POST", auth: "{{admin}}", url: "/api/v1/purposes", body: `{"name":"Profiling","legal_basis":"consent","text":"x","retention_days":"30"}`,
				status: 400, errCode: "invalid", errField: "retention_days"},
			{name: "invalid email", method: "POST", url: "/api/v1/contacts", body: `{"email":"Anna <anna@example.com>"}`, status: 400, errCode: "invalid", errField: "email"},
			{name: "email without dotted domain", method: "POST", url: "/api/v1/contacts", body: `{"email":"anna@localhost"}`, status: 400, errCode: "invalid", errField: "email"},
			{name: "missing email", method: "POST", url: "/api/v1/contacts", body: `{"kind":"lead","first_name":"No Mail"}`, status: 400, errCode: "required", errField: "email"},
			{name: "blank email", method: "POST", url: "/api/v1/contacts", body: `{"email":"  "}`, status: 400, errCode: "required", errField: "email"},
			{name: "bad kind", method: "POST", url: "/api/v1/contacts", body: `{"email":"k@example.com","kind":"customer"}`, status: 400, errCode: "invalid", errField: "kind"},
			{name: "undefined custom field", method: "POST", url: "/api/v1/contacts", body: `{"email":"f@example.com","fields":{"shoe_size":42}}`,
				status: 400, errCode: "invalid", errField: "fields.shoe_size"},
			{name: "bad custom field value", method: "PATCH", url: "/api/v1/contacts/{{c1}}", body: `{"first_name":"Changed","fields":{"score":"lots"}}`,
				status: 400, errCode: "invalid", errField: "fields.score"},
			{name: "blank email on patch", method: "PATCH", url: "/api/v1/contacts/{{c1}}", body: `{"email":""}`, status: 400, errCode: "required", errField: "email"},
			{name: "opt-in status cannot be patched", method: "PATCH", url: "/api/v1/contacts/{{c1}}", body: `{"opt_in_status":"double_opt_in"}`,
				status: 400, errCode: "invalid", errField: "opt_in_status"},
			{name: "unknown purpose", method: "POST", url: "/api/v1/contacts/{{c1}}/consents", body: `{"purpose":"Telepathy","state":"granted","source":"API"}`,
				status: 422, errCode: "purpose_not_found", errField: "purpose"},
			{name: "unknown source", method: "POST", url: "/api/v1/contacts/{{c1}}/consents", body: `{"purpose":"E-marketing","state":"granted","source":"Carrier pigeon"}`,
				status: 422, errCode: "source_not_found", errField: "source"},
			{name: "bad consent state", method: "POST", url: "/api/v1/contacts/{{c1}}/consents", body: `{"purpose":"E-marketing","state":"maybe","source":"API"}`,
				status: 400, errCode: "invalid", errField: "state"},
			{name: "missing consent source", method: "POST", url: "/api/v1/contacts/{{c1}}/consents", body: `{"purpose":"E-marketing","state":"granted"}`,
				status: 400, errCode: "required", errField: "source"},
			{name: "bad legal basis", method: "POST", url: "/api/v1/contacts/{{c1}}/consents", body: `{"purpose":"E-marketing","state":"granted","source":"API","legal_basis":"whim"}`,
				status: 400, errCode: "invalid", errField: "legal_basis"},
			{name: "text version that never existed", method: "POST", url: "/api/v1/contacts/{{c1}}/consents",
				body: `{"purpose":"{{share}}","state":"granted","source":"API","text_version":3}`, status: 400, errCode: "invalid", errField: "text_version"},
			{name: "text language that is not a language tag", method: "POST", url: "/api/v1/contacts/{{c1}}/consents",
				body: `{"purpose":"E-marketing","state":"granted","source":"API","text_language":"<sv>"}`, status: 400, errCode: "invalid", errField: "text_language"},
			{name: "expiry in the past", method: "POST", url: "/api/v1/contacts/{{c1}}/consents",
				body: `{"purpose":"E-marketing","state":"granted","source":"API","expires_at":"2001-01-01T00:00:00Z"}`, status: 400, errCode: "invalid", errField: "expires_at"},
			{name: "consent evidence a user cannot have", method: "POST", url: "/api/v1/contacts/{{c1}}/consents",
				body: `{"purpose":"E-marketing","state":"granted","source":"API","evidence":{"method":"double_opt_in_link"}}`, status: 400, errCode: "invalid", errField: "evidence.method"},
			{name: "unknown contact", method: "GET", url: "/api/v1/contacts/no-such-contact", status: 404, errCode: "contact_not_found"},
			{name: "patch unknown contact", method: "PATCH", url: "/api/v1/contacts/no-such-contact", body: `{"first_name":"X"}`, status: 404, errCode: "contact_not_found"},
			{name: "delete unknown contact", method: "DELETE", auth: "{{admin}}", url: "/api/v1/contacts/no-such-contact", status: 404, errCode: "contact_not_found"},
			{name: "consent for unknown contact", method: "POST", url: "/api/v1/contacts/no-such-contact/consents", body: grant, status: 404, errCode: "contact_not_found"},
			{name: "consents of unknown contact", method: "GET", url: "/api/v1/contacts/no-such-contact/consents", status: 404, errCode: "contact_not_found"},
			{name: "opt-in of unknown contact", method: "GET", url: "/api/v1/contacts/no-such-contact/opt-in", status: 404, errCode: "contact_not_found"},
			{name: "opt-out of unknown contact", method: "POST", url: "/api/v1/contacts/no-such-contact/opt-in", body: `{"status":"opt_out_user"}`, status: 404, errCode: "contact_not_found"},
			{name: "unknown purpose in path", method: "GET", url: "/api/v1/purposes/no-such-purpose", status: 404, errCode: "purpose_not_found"},
			{name: "patch unknown purpose", method: "PATCH", auth: "{{admin}}", url: "/api/v1/purposes/no-such-purpose", body: `{"text":"x"}`, status: 404, errCode: "purpose_not_found"},
			{name: "texts of unknown purpose", method: "GET", url: "/api/v1/purposes/no-such-purpose/texts", status: 404, errCode: "purpose_not_found"},
			{name: "patch unknown source", method: "PATCH", url: "/api/v1/sources/no-such-source", body: `{"active":true}`, status: 404, errCode: "source_not_found"},
			{name: "unknown field definition", method: "GET", url: "/api/v1/fields/no_such_field", status: 404, errCode: "field_not_found"},
			{name: "patch unknown field definition", method: "PATCH", url: "/api/v1/fields/no_such_field", body: `{"label":"x"}`, status: 404, errCode: "field_not_found"},
			{name: "unknown route", method: "GET", url: "/api/v1/nothing-here", status: 404, errCode: "route_not_found"},
			{name: "missing token", method: "POST", url: "/api/v1/contacts", body: `{"email":"anon@example.com"}`, auth: noAuth,
				status: 401, errCode: "unauthorized"},
			{name: "missing token on read", method: "GET", url: "/api/v1/contacts/{{c1}}", auth: noAuth, status: 401, errCode: "unauthorized",
				absent: []string{"Anna"}},
			{name: "wrong token", method: "POST", url: "/api/v1/contacts/{{c1}}/consents", body: grant, auth: badToken, status: 401, errCode: "unauthorized"},
			{name: "token of the wrong scheme", method: "GET", url: "/api/v1/contacts", auth: "Basic dGVzdDp0ZXN0", status: 401, errCode: "unauthorized"},
			{name: "the scheme is case-insensitive", method: "GET", url: "/api/v1/contacts?limit=1", auth: "bearer {{secret}}", status: 200},
			{name: "evidence without an opt-in status is refused", method: "POST", url: "/api/v1/contacts",
				body: `{"email":"ev@example.com","evidence":{"method":"webform"}}`, status: 400, errCode: "invalid", errField: "evidence"},
			{name: "token without scheme", method: "GET", url: "/api/v1/contacts", auth: "{{secret}}", status: 401, errCode: "unauthorized"},
			{name: "truncated token", method: "GET", url: "/api/v1/ledger/verify", auth: "Bearer {{short}}", status: 401, errCode: "unauthorized"},
			{name: "duplicate email", method: "POST", url: "/api/v1/contacts", body: `{"email":"anna.berg@EXAMPLE.com"}`, status: 409, errCode: "email_taken", errField: "email"},
			{name: "duplicate email with opt-in and consents", method: "POST", url: "/api/v1/contacts",
				body: `{"email":"ANNA.BERG@example.com","opt_in_status":"opt_out_user","consents":[` + grant + `]}`, status: 409, errCode: "email_taken", errField: "email"},
			{name: "duplicate email on patch", method: "PATCH", url: "/api/v1/contacts/{{p1}}", body: `{"email":"Anna.Berg@example.COM"}`, status: 409, errCode: "email_taken", errField: "email"},
			{name: "duplicate field", method: "POST", url: "/api/v1/fields", body: `{"name":"score","type":"text"}`, status: 409, errCode: "field_exists", errField: "name"},
			{name: "field named like a core field", method: "POST", url: "/api/v1/fields", body: `{"name":"email","type":"text"}`, status: 409, errCode: "field_name_reserved", errField: "name"},
			{name: "sensitive cannot be turned off", method: "PATCH", url: "/api/v1/fields/customer_no", body: `{"sensitive":false}`,
				status: 422, errCode: "sensitive_irreversible", errField: "sensitive"},
			{name: "duplicate purpose", method: "POST", auth: "{{admin}}", url: "/api/v1/purposes", body: `{"name":"e-MARKETING","legal_basis":"consent","text":"x"}`,
				status: 409, errCode: "purpose_name_taken", errField: "name"},
			{name: "purpose without text", method: "POST", auth: "{{admin}}", url: "/api/v1/purposes", body: `{"name":"Profiling","legal_basis":"consent"}`,
				status: 400, errCode: "required", errField: "text"},
			{name: "rename purpose onto another with a new text", method: "PATCH", auth: "{{admin}}", url: "/api/v1/purposes/{{share}}", body: `{"name":"E-Marketing","text":"Share v3"}`,
				status: 409, errCode: "purpose_name_taken", errField: "name"},
			{name: "text version 3 was not kept", method: "GET", url: "/api/v1/purposes/{{share}}/texts", status: 200, absent: []string{"Share v3"}},
			{name: "duplicate source", method: "POST", url: "/api/v1/sources", body: `{"name":"WEB FORM"}`, status: 409, errCode: "source_name_taken", errField: "name"},
			{name: "bad consent inside create", method: "POST", url: "/api/v1/contacts",
				body:   `{"email":"new@example.com","consents":[` + grant + `,{"purpose":"Telepathy","state":"granted","source":"API"}]}`,
				status: 422, errCode: "purpose_not_found", errField: "consents[1].purpose"},
			{name: "inactive source inside create", method: "POST", url: "/api/v1/contacts",
				body:   `{"email":"new@example.com","opt_in_status":"opt_out_user","consents":[{"purpose":"E-marketing","state":"granted","source":"Trade fair"}]}`,
				status: 422, errCode: "source_inactive", errField: "consents[0].source"},
			{name: "bad state inside create", method: "POST", url: "/api/v1/contacts",
				body: `{"email":"new@example.com","consents":[{"purpose":"E-marketing","state":"yes","source":"API"}]}`, status: 400, errCode: "invalid", errField: "consents[0].state"},
			{name: "unknown field inside create consents", method: "POST", url: "/api/v1/contacts",
				body: `{"email":"new@example.com","consents":[{"purpose":"E-marketing","state":"granted","source":"API","note":"x"}]}`, status: 400, errCode: "unknown_field", errField: "consents[0].note"},
			{name: "double opt-in at create is refused", method: "POST", url: "/api/v1/contacts", body: `{"email":"new@example.com","opt_in_status":"double_opt_in"}`,
				status: 422, errCode: "double_opt_in_needs_confirmation", errField: "opt_in_status"},
			{name: "webform opt-in at create is refused", method: "POST", url: "/api/v1/contacts", body: `{"email":"new@example.com","opt_in_status":"single_opt_in_webform"}`,
				status: 422, errCode: "webform_only", errField: "opt_in_status"},
			{name: "refused contact was not created", method: "GET", url: "/api/v1/contacts?email=new%40example.com", status: 200, check: lookup("")},
			{name: "limit not a number", method: "GET", url: "/api/v1/contacts?limit=ten", status: 400, errCode: "invalid", errField: "limit"},
			{name: "limit too large", method: "GET", url: "/api/v1/contacts?limit=501", status: 400, errCode: "invalid", errField: "limit"},
			{name: "limit negative", method: "GET", url: "/api/v1/contacts?limit=-1", status: 400, errCode: "invalid", errField: "limit"},

			// The ledger agrees with the state after everything above.
			{name: "ledger verifies", method: "GET", url: "/api/v1/ledger/verify", status: 200,
				contains: []string{`"ok":true`}, absent: []string{`"problem"`},
				check: func(t testing.TB, body []byte) {
					rep := decodeAs[ledger.Report](t, body)
					// 1 deletion, 4 consents on c1, 2 opt-in changes on c1, 2 opt-ins at create, 2 consents at create.
					if rep.Events != 11 || rep.HeadSeq != 11 || rep.HeadHash == "" {
						t.Errorf("report %+v, want 11 events ending at the head", rep)
					}
					if rep.ContactsChecked != 7 {
						t.Errorf("checked %d contacts, want 7", rep.ContactsChecked)
					}
				}},
			{name: "ledger verify needs a token", method: "GET", url: "/api/v1/ledger/verify", auth: noAuth, status: 401, errCode: "unauthorized"},
		})
	})
}

// TestEmailLookupTakesPlus checks that an address with + in it is found
// when the query string encodes it.
func TestEmailLookupTakesPlus(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		r := e.do(t, "POST", "/api/v1/contacts", `{"email":"Anna+News@Example.com"}`, "")
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		id := decodeAs[contact.Contact](t, r.body).ID
		p := decodeAs[api.ContactPage](t, e.get(t, "/api/v1/contacts?email="+url.QueryEscape("anna+news@example.com")))
		if len(p.Items) != 1 || p.Items[0].ID != id {
			t.Fatalf("look-up found %+v", p.Items)
		}
	})
}

// TestListLimitZeroIsRefused: the API documents limit as "1 to 500"; an
// explicit limit=0 must be refused, not read as "not given" (contact.List
// takes 0 to mean the default page of 50). Regression test: before 2478abc
// limit=0 answered 200 with up to 50 contacts.
func TestListLimitZeroIsRefused(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		r := e.do(t, "GET", "/api/v1/contacts?limit=0", "", "")
		if r.status != http.StatusBadRequest {
			t.Errorf("limit=0: status %d, want 400 with field limit: %s", r.status, r.body)
		} else {
			checkError(t, r, "invalid", "limit")
		}
	})
}

// TestListCursorIsChecked: a list paged by id refuses an after that is no
// cursor, naming it, rather than answering an empty page as if the list
// ended there; the next cursor a page gives still leads to the page after.
func TestListCursorIsChecked(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		for _, addr := range []string{"a@example.com", "b@example.com", "c@example.com"} {
			if r := e.do(t, "POST", "/api/v1/contacts", `{"email":"`+addr+`"}`, ""); r.status != http.StatusCreated {
				t.Fatalf("create %s: %d %s", addr, r.status, r.body)
			}
		}
		first := decodeAs[api.ContactPage](t, e.get(t, "/api/v1/contacts?limit=2"))
		second := decodeAs[api.ContactPage](t, e.get(t, "/api/v1/contacts?limit=2&after="+url.QueryEscape(first.Next)))
		if len(first.Items) != 2 || first.Next == "" || len(second.Items) != 1 || second.Items[0].Email != "c@example.com" || second.Next != "" {
			t.Fatalf("pages: %+v then %+v", first, second)
		}
		auto := e.automation(t)
		reveal, _, err := e.a.Tokens.Create(context.Background(), audit.Actor{Kind: "user"}, "billing", nil, auth.ScopeReveal)
		if err != nil {
			t.Fatal(err)
		}
		for u, token := range map[string]string{"/api/v1/contacts?after=zzz": "", "/api/v1/contacts?after=" + strings.ToUpper(first.Next): "",
			"/api/v1/access-log?after=zzz": "Bearer " + reveal, "/api/v1/contacts/" + first.Items[0].ID + "/workflow-runs?after=zzz": auto} {
			r := e.do(t, "GET", u, "", token)
			if r.status != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400 naming after", u, r.status, r.body)
				continue
			}
			checkError(t, r, "invalid", "after")
		}
	})
}

// TestCreateEvidenceErrorNamesTheField: an invalid evidence method on
// POST /api/v1/contacts with an opt-in status must name the request's field,
// "evidence.method", and create nothing. Regression test: before 2478abc the
// field came back as "opt_in_status.evidence.method".
func TestCreateEvidenceErrorNamesTheField(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		before := e.state(t)
		r := e.do(t, "POST", "/api/v1/contacts", `{"email":"ev@example.com","opt_in_status":"opt_out_user","evidence":{"method":"webform"}}`, "")
		if r.status != http.StatusBadRequest {
			t.Fatalf("status %d, want 400: %s", r.status, r.body)
		}
		if after := e.state(t); after != before {
			t.Errorf("refused create wrote something: %+v -> %+v", before, after)
		}
		checkError(t, r, "invalid", "evidence.method")
	})
}

var pathParamRE = regexp.MustCompile(`\{[^}/]+\}`)

// TestOpenAPIMatchesRouter checks the served OpenAPI document against the
// router and the route table: every documented operation is served by the
// pattern the document names, every route is documented, every operation
// has a summary, every non-public one is under the bearer scheme (its own
// or the document's) and refuses a request without a token, every public
// one declares none, and every schema reference resolves.
func TestOpenAPIMatchesRouter(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		// Every route that needs a token is asked once without one, from
		// this one address: more than the limit on such requests lets
		// through (TestBadTokenRateLimit tests that limit).
		e := newEnvConfig(t, db, func(c *config.Config) { c.Rates.APIBadToken = clientip.Rate{PerMinute: 60, Burst: 10_000} })
		srv := e.a.API
		r := e.do(t, "GET", "/api/openapi.json", "", noAuth)
		if r.status != http.StatusOK {
			t.Fatalf("GET /api/openapi.json without a token: %d %s", r.status, r.body)
		}
		type operation struct {
			Summary     string                 `json:"summary"`
			OperationID string                 `json:"operationId"`
			Security    *[]map[string][]string `json:"security"`
			RequestBody map[string]any         `json:"requestBody"`
			Parameters  []struct {
				Name     string `json:"name"`
				In       string `json:"in"`
				Required bool   `json:"required"`
			} `json:"parameters"`
		}
		var doc struct {
			OpenAPI    string                          `json:"openapi"`
			Security   []map[string][]string           `json:"security"`
			Paths      map[string]map[string]operation `json:"paths"`
			Components struct {
				Schemas         map[string]any `json:"schemas"`
				SecuritySchemes map[string]any `json:"securitySchemes"`
			} `json:"components"`
		}
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatalf("decode document: %v", err)
		}
		if !strings.HasPrefix(doc.OpenAPI, "3.") || len(doc.Paths) == 0 {
			t.Fatalf("openapi %q with %d paths", doc.OpenAPI, len(doc.Paths))
		}
		if doc.Components.SecuritySchemes["bearer"] == nil {
			t.Errorf("no bearer security scheme")
		}
		// Embedded structs are flattened as encoding/json flattens them: the
		// campaign settings are properties of the settings themselves.
		if st, _ := doc.Components.Schemas["Settings"].(map[string]any); st == nil {
			t.Errorf("no Settings schema")
		} else if props, _ := st["properties"].(map[string]any); props["sender_name"] == nil || props["Campaigns"] != nil {
			t.Errorf("the campaign settings are not flattened into Settings: %v", props)
		}

		routes := map[string]api.Route{}
		for _, rt := range srv.Routes() {
			routes[rt.Pattern()] = rt
		}
		ids := map[string]string{}
		ops := 0
		for path, item := range doc.Paths {
			for method, op := range item {
				ops++
				want := strings.ToUpper(method) + " " + path
				req := httptest.NewRequest(strings.ToUpper(method), pathParamRE.ReplaceAllString(path, "x"), nil)
				if _, got := srv.Mux().Handler(req); got != want {
					t.Errorf("%s is served by pattern %q", want, got)
				}
				rt, ok := routes[want]
				if !ok {
					t.Errorf("%s is documented but not in the route table", want)
					continue
				}
				if strings.TrimSpace(op.Summary) == "" {
					t.Errorf("%s has no summary", want)
				}
				if prev, dup := ids[op.OperationID]; op.OperationID == "" || dup {
					t.Errorf("%s has operationId %q, also used by %s", want, op.OperationID, prev)
				}
				ids[op.OperationID] = want
				if takes := rt.Request != nil || rt.RawBody != ""; (op.RequestBody != nil) != takes {
					t.Errorf("%s: requestBody documented %v, route takes a body %v", want, op.RequestBody != nil, takes)
				}
				for _, name := range pathParamRE.FindAllString(path, -1) {
					name = strings.Trim(name, "{}")
					found := false
					for _, p := range op.Parameters {
						found = found || (p.Name == name && p.In == "path" && p.Required)
					}
					if !found {
						t.Errorf("%s does not declare the required path parameter %q", want, name)
					}
				}
				// An operation without security of its own has the
				// document's; a public one overrides it with none.
				security := doc.Security
				if op.Security != nil {
					security = *op.Security
				}
				secured := len(security) > 0
				for _, s := range security {
					for scheme := range s {
						if doc.Components.SecuritySchemes[scheme] == nil {
							t.Errorf("%s uses undefined security scheme %q", want, scheme)
						}
					}
				}
				if rt.Public {
					if secured {
						t.Errorf("public %s declares security", want)
					}
					continue
				}
				if !secured {
					t.Errorf("%s needs a token but declares no security", want)
				}
				// The document's promise holds: without a token, 401.
				res := e.do(t, strings.ToUpper(method), pathParamRE.ReplaceAllString(path, "x"), "", noAuth)
				if res.status != http.StatusUnauthorized {
					t.Errorf("%s without a token: status %d", want, res.status)
				}
			}
		}
		for _, rt := range srv.Routes() {
			if _, ok := doc.Paths[rt.Path][strings.ToLower(rt.Method)]; !ok {
				t.Errorf("route %s is not in the document", rt.Pattern())
			}
		}
		if ops != len(srv.Routes()) {
			t.Errorf("document has %d operations, route table %d", ops, len(srv.Routes()))
		}

		// Every $ref points at a schema the document defines.
		var raw any
		json.Unmarshal(r.body, &raw)
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				if ref, ok := v["$ref"].(string); ok {
					name, found := strings.CutPrefix(ref, "#/components/schemas/")
					if !found || doc.Components.Schemas[name] == nil {
						t.Errorf("dangling $ref %q", ref)
					}
				}
				for _, x := range v {
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(raw)

		// The other public route answers without a token too.
		if h := e.do(t, "GET", "/healthz", "", noAuth); h.status != http.StatusOK || !bytes.Contains(h.body, []byte(`"status":"ok"`)) {
			t.Errorf("GET /healthz without a token: %d %s", h.status, h.body)
		}
	})
}

// TestOpenAPIDocumentsResponses: every operation must document its success
// status (with the body's schema when it has one), 401 when it needs a
// token, 413 when it reads a body, and its error responses with the
// ErrorBody schema.
// Regression test: before 2478abc OpenAPI built each operation's responses
// but never stored them, so the document had no responses at all.
func TestOpenAPIDocumentsResponses(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		var doc struct {
			Paths map[string]map[string]struct {
				Responses map[string]struct {
					Content map[string]struct {
						Schema map[string]any `json:"schema"`
					} `json:"content"`
				} `json:"responses"`
			} `json:"paths"`
		}
		if err := json.Unmarshal(e.get(t, "/api/openapi.json"), &doc); err != nil {
			t.Fatal(err)
		}
		var noSuccess, noBody, no401, no413 []string
		for _, rt := range e.a.API.Routes() {
			op := doc.Paths[rt.Path][strings.ToLower(rt.Method)]
			ok, has := op.Responses[strconv.Itoa(rt.Status)]
			switch {
			case !has:
				noSuccess = append(noSuccess, rt.Pattern())
			case rt.Response != nil && ok.Content["application/json"].Schema == nil:
				noBody = append(noBody, rt.Pattern())
			}
			if tooLarge, has := op.Responses["413"]; (rt.Request != nil || rt.RawBody != "") &&
				(!has || tooLarge.Content["application/json"].Schema["$ref"] != "#/components/schemas/ErrorBody") {
				no413 = append(no413, rt.Pattern())
			}
			if rt.Public {
				continue
			}
			unauth, has := op.Responses["401"]
			if ref, _ := unauth.Content["application/json"].Schema["$ref"].(string); !has || ref != "#/components/schemas/ErrorBody" {
				no401 = append(no401, rt.Pattern())
			}
		}
		for _, miss := range []struct {
			what string
			list []string
		}{{"their success status", noSuccess}, {"their response body", noBody}, {"401 with the ErrorBody schema", no401},
			{"413 for a body over its limit, with the ErrorBody schema", no413}} {
			if len(miss.list) > 0 {
				t.Errorf("%d of %d operations do not document %s: %s", len(miss.list), len(e.a.API.Routes()), miss.what, strings.Join(miss.list, ", "))
			}
		}
	})
}

// TestDecodeErrorNamesJSONField: a value of the wrong JSON type for a field
// of POST or PATCH /api/v1/contacts must name the field as the client wrote
// it ("email"), never the Go path of the embedded struct ("Input.email").
// Regression test: before 2478abc decode returned json.UnmarshalTypeError's
// Field as it is, which for the embedded contact.Input is "Input.email".
func TestDecodeErrorNamesJSONField(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		r := e.do(t, "POST", "/api/v1/contacts", `{"email":"a@example.com"}`, "")
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		id := decodeAs[contact.Contact](t, r.body).ID
		for _, c := range []struct{ method, path, body, field string }{
			{"POST", "/api/v1/contacts", `{"email":42}`, "email"},
			{"POST", "/api/v1/contacts", `{"email":"b@example.com","fields":[]}`, "fields"},
			{"PATCH", "/api/v1/contacts/" + id, `{"first_name":true}`, "first_name"},
		} {
			before := e.state(t)
			r := e.do(t, c.method, c.path, c.body, "")
			if r.status != http.StatusBadRequest {
				t.Errorf("%s %s: status %d, want 400: %s", c.method, c.body, r.status, r.body)
				continue
			}
			checkError(t, r, "invalid", c.field)
			if after := e.state(t); after != before {
				t.Errorf("refused request wrote something: %+v -> %+v", before, after)
			}
		}
	})
}

// TestBodyShapeIsChecked: a key given twice in one object (in any case) is
// refused with its path, as is a body of null; the preferences page's
// settings, which a PUT replaces as a whole, are refused when a part is
// missing, naming it, and are left as they were.
func TestBodyShapeIsChecked(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		page := `{"access_condition":"","offers":[],"statement":"We are Acme.","policies":[{"title":"Privacy","url":"https://acme.example/p"}],
			"footer":{"enabled":true,"text":"","link_text":"Your preferences"},"access_email":false,"allow_stop_processing":true,"allow_erasure":false}`
		if r := e.do(t, "PUT", "/api/v1/settings/preferences-page", page, e.vars["admin"]); r.status != 200 {
			t.Fatalf("a whole body: %d %s", r.status, r.body)
		}
		stored := string(e.get(t, "/api/v1/settings/preferences-page"))
		e.run(t, []scenario{
			{name: "duplicate key", method: "POST", url: "/api/v1/contacts", body: `{"email":"a@example.com","email":"b@example.com"}`,
				status: 400, errCode: "duplicate_key", errField: "email"},
			{name: "duplicate key in another case", method: "POST", url: "/api/v1/contacts", body: `{"email":"a@example.com","Email":"b@example.com"}`,
				status: 400, errCode: "duplicate_key", errField: "Email"},
			{name: "duplicate key nested", method: "POST", url: "/api/v1/contacts",
				body:   `{"email":"a@example.com","consents":[{"purpose":"E-marketing","state":"granted","source":"API"},{"purpose":"Newsletter","state":"granted","state":"withdrawn","source":"API"}]}`,
				status: 400, errCode: "duplicate_key", errField: "consents[1].state"},
			{name: "same key in two objects is fine", method: "POST", url: "/api/v1/lists", body: `{"name":"News","description":"n"}`, status: 201},
			{name: "null body", method: "PUT", auth: "{{admin}}", url: "/api/v1/settings/preferences-page", body: `null`, status: 400, errCode: "malformed_json"},
			{name: "empty object", method: "PUT", auth: "{{admin}}", url: "/api/v1/settings/preferences-page", body: `{}`, status: 400, errCode: "required", errField: "access_condition"},
			{name: "a part left out", method: "PUT", auth: "{{admin}}", url: "/api/v1/settings/preferences-page", body: strings.Replace(page, `"statement":"We are Acme.",`, "", 1),
				status: 400, errCode: "required", errField: "statement"},
			{name: "a part null", method: "PUT", auth: "{{admin}}", url: "/api/v1/settings/preferences-page", body: strings.Replace(page, `"offers":[]`, `"offers":null`, 1),
				status: 400, errCode: "required", errField: "offers"},
			{name: "a nested part left out", method: "PUT", auth: "{{admin}}", url: "/api/v1/settings/preferences-page", body: strings.Replace(page, `"enabled":true,`, "", 1),
				status: 400, errCode: "required", errField: "footer.enabled"},
			{name: "a policy without its address", method: "PUT", auth: "{{admin}}", url: "/api/v1/settings/preferences-page", body: strings.Replace(page, `,"url":"https://acme.example/p"`, "", 1),
				status: 400, errCode: "required", errField: "policies[0].url"},
			{name: "duplicate in the settings", method: "PUT", auth: "{{admin}}", url: "/api/v1/settings/preferences-page", body: strings.Replace(page, `"allow_erasure":false`, `"allow_erasure":false,"allow_erasure":true`, 1),
				status: 400, errCode: "duplicate_key", errField: "allow_erasure"},
		})
		if got := string(e.get(t, "/api/v1/settings/preferences-page")); got != stored {
			t.Fatalf("refused requests changed the settings:\n%s\n%s", stored, got)
		}
	})
}

// TestSingleLineFields: names, subjects and labels are one line: a line
// break, a tab or an invisible formatting character (a bidi override, a
// zero-width space) is refused naming the field, and nothing is written.
// Multi-line text (a description, a consent text) keeps its line breaks.
func TestSingleLineFields(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		r := e.do(t, "POST", "/api/v1/contacts", `{"email":"ann@example.com"}`, "")
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		e.vars["c1"] = decodeAs[contact.Contact](t, r.body).ID
		if r := e.do(t, "POST", "/api/v1/fields", `{"name":"nickname","type":"text"}`, ""); r.status != 201 {
			t.Fatalf("field: %d %s", r.status, r.body)
		}
		page := `{"access_condition":"","offers":[],"statement":"Line one.\nLine two.","policies":[{"title":"Privacy\npolicy","url":"https://acme.example/p"}],
			"footer":{"enabled":false},"access_email":false,"allow_stop_processing":true,"allow_erasure":true}`
		bad := func(name, method, url, body, code, field string) scenario {
			return scenario{name: name, method: method, auth: "{{admin}}", url: url, body: body, status: 400, errCode: code, errField: field}
		}
		e.run(t, []scenario{
			bad("first name", "POST", "/api/v1/contacts", `{"email":"eve@example.com","first_name":"Eve\n\nClick https://evil.example"}`, "line_break", "first_name"),
			bad("last name", "PATCH", "/api/v1/contacts/{{c1}}", `{"last_name":"Berg\u202egnp.exe"}`, "invisible_character", "last_name"),
			bad("address with a zero-width space", "POST", "/api/v1/contacts", `{"email":"\u200beve@example.com"}`, "invisible_character", "email"),
			bad("address with a byte order mark", "PATCH", "/api/v1/contacts/{{c1}}", `{"email":"\ufeffeve@example.com"}`, "invisible_character", "email"),
			bad("address with a soft hyphen", "POST", "/api/v1/contacts", `{"email":"ev\u00ade@example.com"}`, "invisible_character", "email"),
			bad("stage", "PATCH", "/api/v1/contacts/{{c1}}", `{"stage":"lead\tx"}`, "invalid", "stage"),
			bad("custom text field", "PATCH", "/api/v1/contacts/{{c1}}", `{"fields":{"nickname":"A\r\nB"}}`, "line_break", "fields.nickname"),
			bad("list name", "POST", "/api/v1/lists", `{"name":"News\nletter","description":"Two\nlines are fine here"}`, "line_break", "name"),
			bad("purpose name", "POST", "/api/v1/purposes", `{"name":"Share\u200b","legal_basis":"consent","text":"We share.\n\nWith partners."}`, "invisible_character", "name"),
			bad("source name", "POST", "/api/v1/sources", `{"name":"Fair\r\n2026"}`, "line_break", "name"),
			bad("field label", "POST", "/api/v1/fields", `{"name":"note","label":"No\nte","type":"text"}`, "line_break", "label"),
			bad("webform title", "POST", "/api/v1/webforms", `{"name":"w","title":"Sign\nup","privacy_policy_url":"https://acme.example/p"}`, "line_break", "title"),
			bad("webform label", "POST", "/api/v1/webforms", `{"name":"w","title":"Sign up","privacy_policy_url":"https://acme.example/p",
				"fields":[{"name":"first_name","label":"First\u2066 name"}]}`, "invisible_character", "fields[0].label"),
			bad("email subject", "POST", "/api/v1/contacts/{{c1}}/emails", `{"subject":"Hello\nBcc: all@example.com","text":"Two\nlines"}`, "line_break", "subject"),
			bad("policy title", "PUT", "/api/v1/settings/preferences-page", page, "line_break", "policies[0].title"),
			{name: "multi-line text stays allowed", method: "POST", auth: "{{admin}}", url: "/api/v1/purposes", body: `{"name":"Share","legal_basis":"consent",
				"description":"One.\nTwo.","text":"We share.\n\nWith partners."}`, status: 201},
		})
	})
}

// TestSubscriptionStateIsConsentsWord: a list subscription's state is
// called state, as a consent's is, in requests and answers; the former
// name status is still read, and both at once with different values are
// refused, naming the field, and change nothing.
func TestSubscriptionStateIsConsentsWord(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		if r := e.do(t, "POST", "/api/v1/lists", `{"name":"News"}`, ""); r.status != 201 {
			t.Fatalf("create list: %d %s", r.status, r.body)
		}
		r := e.do(t, "POST", "/api/v1/contacts", `{"email":"lena@example.com"}`, "")
		id := decodeAs[contact.Contact](t, r.body).ID
		r = e.do(t, "PUT", "/api/v1/contacts/"+id+"/lists/News", `{"state":"subscribed"}`, "")
		if r.status != 200 || !strings.Contains(string(r.body), `"state":"subscribed"`) || strings.Contains(string(r.body), `"status"`) {
			t.Fatalf("subscribe: %d %s", r.status, r.body)
		}
		r = e.do(t, "PUT", "/api/v1/contacts/"+id+"/lists/News", `{"state":"unsubscribed","status":"subscribed"}`, "")
		if r.status != http.StatusBadRequest {
			t.Fatalf("both names, different values: %d %s", r.status, r.body)
		}
		checkError(t, r, "invalid", "status")
		// An error about the value names the request's field, state.
		checkError(t, e.do(t, "PUT", "/api/v1/contacts/"+id+"/lists/News", `{}`, ""), "required", "state")
		checkError(t, e.do(t, "PUT", "/api/v1/contacts/"+id+"/lists/News", `{"status":"maybe"}`, ""), "invalid", "state")
		r = e.do(t, "PUT", "/api/v1/contacts/"+id+"/lists/News", `{"status":"unsubscribed"}`, "")
		if r.status != 200 || !strings.Contains(string(r.body), `"state":"unsubscribed"`) {
			t.Fatalf("the former name: %d %s", r.status, r.body)
		}
		if body := e.get(t, "/api/v1/contacts/"+id+"/lists"); !strings.Contains(string(body), `"state":"unsubscribed"`) {
			t.Fatalf("the contact's lists: %s", body)
		}
	})
}
