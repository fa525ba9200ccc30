package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/api"
	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// openAPIDoc is the document as a generated client reads it.
type openAPIDoc struct {
	Paths map[string]map[string]struct {
		RequestBody struct {
			Content map[string]struct {
				Schema jsonSchema `json:"schema"`
			} `json:"content"`
		} `json:"requestBody"`
		Responses map[string]struct {
			Content map[string]struct {
				Schema jsonSchema `json:"schema"`
			} `json:"content"`
		} `json:"responses"`
	} `json:"paths"`
	Components struct {
		Schemas map[string]jsonSchema `json:"schemas"`
	} `json:"components"`
}

type jsonSchema struct {
	Ref        string                `json:"$ref"`
	AllOf      []jsonSchema          `json:"allOf"`
	Type       string                `json:"type"`
	Properties map[string]jsonSchema `json:"properties"`
	Items      *jsonSchema           `json:"items"`
	Required   []string              `json:"required"`
}

// resolve follows s's reference, or its allOf of one reference (a
// property with a description of its own), to the schema it names.
func (d *openAPIDoc) resolve(s jsonSchema) jsonSchema {
	for {
		switch {
		case s.Ref != "":
			s = d.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
		case len(s.AllOf) == 1:
			s = s.AllOf[0]
		default:
			return s
		}
	}
}

func (d *openAPIDoc) requestSchema(method, path string) jsonSchema {
	return d.Paths[path][strings.ToLower(method)].RequestBody.Content["application/json"].Schema
}

// scopedAuth is an Authorization header with a token that has the scopes
// some routes need (not inbound, which closes the others).
func scopedAuth(t testing.TB, e *env) string {
	t.Helper()
	var scopes []string // every one but inbound, which opens nothing else
	for _, s := range auth.Scopes {
		if s != auth.ScopeInbound {
			scopes = append(scopes, s)
		}
	}
	secret, _, err := e.a.Tokens.Create(context.Background(), audit.Actor{Kind: "user"}, "scoped", nil, scopes...)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + secret
}

func servedDoc(t testing.TB, e *env) *openAPIDoc {
	t.Helper()
	var d openAPIDoc
	if err := json.Unmarshal(e.get(t, "/api/openapi.json"), &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

// TestOpenAPIRequiredProperties: a client generated from the document
// gets plain (not optional) fields for what a response always has and for
// what a request must give. The lists come from the Go types: a request's
// required tags (required:"create" in a POST only, so creating a purpose
// needs its name where changing it does not) and a response's fields that
// encoding/json always writes.
func TestOpenAPIRequiredProperties(t *testing.T) {
	doc := api.New(&api.Server{Version: "test"}).OpenAPI()
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var d openAPIDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		schema   string
		required []string
		optional []string
	}{
		{"ConsentRequest", []string{"purpose", "state", "source"}, []string{"legal_basis", "evidence", "expires_at"}},
		{"CreateContactRequest", []string{"email"}, []string{"first_name", "opt_in_status", "consents"}},
		{"UpdateContactRequest", nil, []string{"email", "first_name"}},
		{"ConsentPurposeInput", []string{"name", "legal_basis", "text"}, []string{"description"}},
		{"ConsentPurposeInputUpdate", nil, []string{"name", "legal_basis", "text"}},
		{"PreferencesConfigInput", []string{"access_condition", "offers", "footer"}, nil},
		{"PreferencesOfferInput", []string{"purpose"}, []string{"condition", "default_selected"}},
		// Responses: what is always written, not what may be left out or null.
		{"Contact", []string{"id", "email", "opt_in_status", "fields", "created_at"}, []string{"erased_at", "consents"}},
		{"ConsentRecord", []string{"id", "purpose", "state", "legal_basis", "recorded_at", "evidence"}, []string{"expires_at"}},
		{"PreferencesOffer", []string{"purpose", "condition"}, []string{"default_selected"}},
		{"ErrorBody", []string{"error"}, nil},
		{"ErrorDetail", []string{"code", "message"}, []string{"field", "position"}},
	} {
		s, ok := d.Components.Schemas[c.schema]
		if !ok {
			t.Errorf("no schema %s", c.schema)
			continue
		}
		for _, p := range c.required {
			if !slices.Contains(s.Required, p) {
				t.Errorf("%s: %s is not required (required: %v)", c.schema, p, s.Required)
			}
		}
		for _, p := range c.optional {
			if _, has := s.Properties[p]; !has {
				t.Errorf("%s has no property %s", c.schema, p)
			}
			if slices.Contains(s.Required, p) {
				t.Errorf("%s: %s is required", c.schema, p)
			}
		}
	}
	for _, c := range []struct{ method, path, schema string }{
		{"POST", "/api/v1/purposes", "ConsentPurposeInput"},
		{"PATCH", "/api/v1/purposes/{id}", "ConsentPurposeInputUpdate"},
		{"POST", "/api/v1/contacts/{id}/consents", "ConsentRequest"},
		{"PUT", "/api/v1/settings/preferences-page", "PreferencesConfigInput"},
	} {
		if got := d.requestSchema(c.method, c.path).Ref; got != "#/components/schemas/"+c.schema {
			t.Errorf("%s %s takes %q, want %s", c.method, c.path, got, c.schema)
		}
	}
}

// TestOpenAPIOptionalBodies: the routes whose body may be left out (the
// reason of a reveal, the note of an erasure) say so, so that a generated
// client does not make the caller send one; the others require theirs.
func TestOpenAPIOptionalBodies(t *testing.T) {
	doc := api.New(&api.Server{Version: "test"}).OpenAPI()
	paths := doc["paths"].(map[string]any)
	body := func(method, path string) map[string]any {
		op, _ := paths[path].(map[string]any)[method].(map[string]any)
		b, _ := op["requestBody"].(map[string]any)
		return b
	}
	for _, c := range []struct {
		method, path string
		required     bool
	}{
		{"post", "/api/v1/contacts/{id}/fields/{field}/reveal", false},
		{"post", "/api/v1/contacts/{id}/erase", false},
		{"post", "/api/v1/contacts", true},
	} {
		b := body(c.method, c.path)
		if b == nil || b["required"] != c.required {
			t.Errorf("%s %s: request body %v, want required %v", c.method, c.path, b, c.required)
		}
	}
	raw, _ := json.Marshal(doc)
	var d openAPIDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	reveal := d.resolve(d.requestSchema("POST", "/api/v1/contacts/{id}/fields/{field}/reveal"))
	if _, ok := reveal.Properties["reason"]; !ok || len(reveal.Required) != 0 {
		t.Errorf("the reveal's body: %+v", reveal)
	}
}

// TestOpenAPIEnumTypeNames: a client generator names the type of an
// enum written in a property after the schema and the property
// (oapi-codegen: ConsentPurpose + text_language), so two such names must
// not meet, nor meet a schema's. Named enums (enum:"@language") are schemas
// of their own and name no type here.
// Regression test: ConsentPurpose.text_language and
// ConsentPurposeText.language both made ConsentPurposeTextLanguage, and
// oapi-codegen refused the document.
func TestOpenAPIEnumTypeNames(t *testing.T) {
	raw, err := json.Marshal(api.New(&api.Server{Version: "test"}).OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Components struct {
			Schemas map[string]struct {
				Enum       []string `json:"enum"`
				Properties map[string]struct {
					Enum  []string `json:"enum"`
					Items struct {
						Enum []string `json:"enum"`
					} `json:"items"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	named := map[string]string{}
	for name := range d.Components.Schemas {
		named[name] = "schema " + name
	}
	for name, s := range d.Components.Schemas {
		for prop, p := range s.Properties {
			if p.Enum == nil && p.Items.Enum == nil {
				continue
			}
			typ := name
			for _, w := range strings.Split(prop, "_") {
				typ += strings.ToUpper(w[:1]) + w[1:]
			}
			if other, taken := named[typ]; taken {
				t.Errorf("the enum of %s.%s makes the type name %s, as %s does", name, prop, typ, other)
			}
			named[typ] = name + "." + prop
		}
	}
	if d.Components.Schemas["Language"].Enum == nil || d.Components.Schemas["OptInStatus"].Enum == nil {
		t.Errorf("named enums are not schemas of their own")
	}
}

// TestRequiredRequestFieldsAreRefused: what the document says a request
// must give, the API refuses to go without. Every route with a JSON body
// whose schema has a required list answers an empty object with 400, code
// required, naming one of the listed fields, and changes nothing.
func TestRequiredRequestFieldsAreRefused(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		d := servedDoc(t, e)
		scoped := scopedAuth(t, e)
		// A real contact for the routes about one, so that none answers
		// 404 before it reads the body.
		r := e.do(t, "POST", "/api/v1/contacts", `{"email":"req@example.com"}`, "")
		if r.status != http.StatusCreated {
			t.Fatalf("create contact: %d %s", r.status, r.body)
		}
		contactID := decodeAs[struct {
			ID string `json:"id"`
		}](t, r.body).ID
		checked := 0
		for _, rt := range e.a.API.Routes() {
			if rt.Request == nil {
				continue
			}
			s := d.resolve(d.requestSchema(rt.Method, rt.Path))
			if len(s.Required) == 0 {
				continue
			}
			checked++
			path := strings.Replace(rt.Path, "{id}", contactID, 1)
			path = pathParamRE.ReplaceAllString(path, "x")
			before := e.state(t)
			r := e.do(t, rt.Method, path, `{}`, scoped)
			if r.status == http.StatusNotFound {
				// An object of its own comes first; the fields are
				// checked by the route's own tests.
				t.Logf("%s with {}: %d, not checked here", rt.Pattern(), r.status)
				continue
			}
			var body api.ErrorBody
			json.Unmarshal(r.body, &body)
			if r.status != http.StatusBadRequest || body.Error.Code != "required" || !slices.Contains(s.Required, body.Error.Field) {
				t.Errorf("%s with {}: %d %s, want 400 required naming one of %v", rt.Pattern(), r.status, r.body, s.Required)
			}
			if after := e.state(t); after != before {
				t.Errorf("%s with {} changed the state: %+v, was %+v", rt.Pattern(), after, before)
			}
		}
		if checked < 10 {
			t.Errorf("only %d routes have a required list", checked)
		}
	})
}

// TestResponsesHaveRequiredProperties: what the document says a response
// always has, it has, and not as null: every answer of every GET route
// without a path parameter, and of a contact's own routes, on a database
// with a contact, consents, a webform, a list and a campaign, and the
// answers of the requests that made them and of a few others, errors
// included, each against the schema the document gives for its status.
func TestResponsesHaveRequiredProperties(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		d := servedDoc(t, e)
		scoped := scopedAuth(t, e)
		// check checks an answer against the schema the document gives for
		// its status.
		check := func(method, path string, r response) {
			t.Helper()
			_, pattern := e.a.API.Mux().Handler(mustRequest(t, method, path))
			op := d.Paths[strings.TrimPrefix(pattern, method+" ")][strings.ToLower(method)]
			resp, ok := op.Responses[strconv.Itoa(r.status)]
			switch {
			case !ok:
				t.Errorf("%s %s answered %d, which the document does not list: %s", method, path, r.status, r.body)
				return
			case r.header.Get("Content-Type") != "application/json":
				return // a file
			}
			var v any
			if err := json.Unmarshal(r.body, &v); err != nil {
				t.Errorf("%s %s: %v", method, path, err)
				return
			}
			for _, p := range d.missing(resp.Content["application/json"].Schema, v, "") {
				t.Errorf("%s %s (%d): %s", method, path, r.status, p)
			}
		}
		var contactID string
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/api/v1/contacts", `{"email":"shape@example.com","first_name":"Ada","consents":[{"purpose":"E-marketing","state":"granted","source":"Web form"}]}`},
			{"POST", "/api/v1/lists", `{"name":"News","public":true}`},
			{"POST", "/api/v1/fields", `{"name":"national_id","type":"text","sensitive":true}`},
			{"POST", "/api/v1/campaign-templates", `{"name":"Plain","html":"<main>{{content}}</main>"}`},
			{"POST", "/api/v1/campaigns", `{"name":"Autumn","variants":[{"language":"en","subject":"News","html":"<p>Hello</p>"}]}`},
			{"POST", "/api/v1/webforms", `{"name":"Signup","title":"Sign up","privacy_policy_url":"https://example.com/privacy","consents":[{"purpose":"E-marketing"}]}`},
		} {
			r := e.do(t, c.method, c.path, c.body, scoped)
			if r.status != http.StatusCreated {
				t.Fatalf("%s %s: %d %s", c.method, c.path, r.status, r.body)
			}
			check(c.method, c.path, r)
			if contactID == "" {
				contactID = decodeAs[struct {
					ID string `json:"id"`
				}](t, r.body).ID
			}
		}
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/api/v1/double-opt-in", `{"contact_ids":["` + contactID + `"]}`},
			{"POST", "/api/v1/contacts/" + contactID + "/opt-in", `{"status":"opt_out_user"}`},
			{"POST", "/api/v1/contacts/" + contactID + "/consents", `{"purpose":"E-marketing","state":"withdrawn","source":"Phone"}`},
			{"POST", "/api/v1/contacts/count", `{}`},
			{"POST", "/api/v1/contacts", `{"email":"not an address"}`},
		} {
			check(c.method, c.path, e.do(t, c.method, c.path, c.body, scoped))
		}
		paths := []string{"/api/v1/purposes/E-marketing", "/api/v1/purposes/E-marketing/texts", "/api/v1/webforms/Signup",
			"/api/v1/fields/national_id", "/api/v1/contacts/nobody/consents"}
		for _, rt := range e.a.API.Routes() {
			switch {
			case rt.Method != "GET" || rt.Path == "/api/openapi.json":
			case !strings.Contains(rt.Path, "{"):
				paths = append(paths, rt.Path)
			case strings.HasPrefix(rt.Path, "/api/v1/contacts/{id}") && strings.Count(rt.Path, "{") == 1:
				paths = append(paths, strings.Replace(rt.Path, "{id}", contactID, 1))
			}
		}
		if len(paths) < 25 {
			t.Errorf("only %d paths to check: %v", len(paths), paths)
		}
		for _, path := range paths {
			check("GET", path, e.do(t, "GET", path, "", scoped))
		}
	})
}

func mustRequest(t testing.TB, method, path string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, "http://test"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// missing returns where v, a decoded JSON value, lacks a property schema
// s requires or gives it as null, looking into objects and arrays.
func (d *openAPIDoc) missing(s jsonSchema, v any, at string) []string {
	s = d.resolve(s)
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for _, p := range s.Required {
			if x, ok := v[p]; !ok || x == nil {
				out = append(out, fmt.Sprintf("%s.%s is required but %s", at, p, map[bool]string{true: "null", false: "absent"}[ok]))
			}
		}
		for k, x := range v {
			if ps, ok := s.Properties[k]; ok {
				out = append(out, d.missing(ps, x, at+"."+k)...)
			}
		}
	case []any:
		if s.Items != nil {
			for i, x := range v {
				out = append(out, d.missing(*s.Items, x, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return out
}

// redocly is Redocly's linter, pinned: a version that runs on Debian's own
// Node.js 18 (which .ci/run installs where Node is missing) as well as on
// later ones. The document passes the latest release's recommended rules
// too.
const redocly = "@redocly/cli@1.34.20"

// lintWarnings are the warnings of Redocly's recommended rules the
// document keeps, each for a reason: the three public operations cannot
// answer with a 4XX.
var lintWarnings = map[string][]string{
	"operation-4xx-response": {"#/paths/~1healthz/get/responses", "#/paths/~1readyz/get/responses", "#/paths/~1api~1openapi.json/get/responses"},
}

// TestOpenAPIPassesRedoclyLint runs Redocly's linter with its recommended
// rules on the document, through npx, which fetches it on the first run
// into a cache in the temporary directory. Without npx, or when the linter
// cannot be fetched, the test is skipped with the reason, unless
// CONSENTRY_REQUIRE_BROWSER=1 (as in CI), which makes it a failure.
func TestOpenAPIPassesRedoclyLint(t *testing.T) {
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CONSENTRY_REQUIRE_BROWSER") == "1" {
			t.Fatalf("CONSENTRY_REQUIRE_BROWSER=1 but the OpenAPI linter cannot run: "+format, args...)
		}
		t.Skipf("OpenAPI lint skipped: "+format, args...)
	}
	npx, err := exec.LookPath("npx")
	if err != nil {
		unavailable("npx is missing (apt-get install -y nodejs npm)")
	}
	doc, err := json.Marshal(api.New(&api.Server{Version: "test"}).OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "openapi.json")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(npx, "--yes", redocly, "lint", "--extends=recommended", "--format=json", file)
	cmd.Dir = dir // no redocly.yaml of anyone's applies
	cmd.Env = append(os.Environ(), "npm_config_cache="+filepath.Join(os.TempDir(), "consentry-npm-cache"),
		"npm_config_update_notifier=false", "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run() // exits 1 when it finds errors
	var report struct {
		Totals struct {
			Errors, Warnings int
		} `json:"totals"`
		Problems []struct {
			RuleID   string `json:"ruleId"`
			Severity string `json:"severity"`
			Message  string `json:"message"`
			Location []struct {
				Pointer string `json:"pointer"`
			} `json:"location"`
		} `json:"problems"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		unavailable("npx %s did not lint (%v): %s", redocly, runErr, lastLines(stderr.String(), 10))
	}
	for _, p := range report.Problems {
		where := ""
		if len(p.Location) > 0 {
			where = p.Location[0].Pointer
		}
		if p.Severity == "warn" && slices.Contains(lintWarnings[p.RuleID], where) {
			continue
		}
		t.Errorf("%s %s at %s: %s", p.Severity, p.RuleID, where, p.Message)
	}
	if report.Totals.Errors > 0 {
		t.Errorf("Redocly's linter finds %d errors", report.Totals.Errors)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestOpenAPIContactListExport: the contact list's export is described as
// a file, CSV or Excel and never JSON, with its three query parameters
// and the 400 that names a bad one.
func TestOpenAPIContactListExport(t *testing.T) {
	b, err := json.Marshal(api.New(&api.Server{Version: "test"}).OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct{ Name, In string } `json:"parameters"`
			Responses  map[string]struct {
				Content map[string]json.RawMessage `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	op, ok := doc.Paths["/api/v1/contacts/export"]["get"]
	if !ok {
		t.Fatal("the document lacks GET /api/v1/contacts/export")
	}
	var media []string
	for m := range op.Responses["200"].Content {
		media = append(media, m)
	}
	slices.Sort(media)
	if !slices.Equal(media, []string{"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "text/csv"}) {
		t.Errorf("200 answers with %v", media)
	}
	var params []string
	for _, p := range op.Parameters {
		if p.In == "query" {
			params = append(params, p.Name)
		}
	}
	if !slices.Equal(params, []string{"format", "filter", "columns"}) {
		t.Errorf("query parameters %v", params)
	}
	if _, ok := op.Responses["400"]; !ok {
		t.Error("no 400 response")
	}
}
