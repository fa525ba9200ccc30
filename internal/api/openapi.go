package api

import (
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/holds"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/inbound"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/tabular"
)

// OpenAPI returns the OpenAPI 3.1 document of the route table, with schemas
// derived from the request and response types (their json, enum, doc and
// required tags; see required for what each body must have).
func (s *Server) OpenAPI() map[string]any {
	g := newSchemaGen()
	errType := reflect.TypeOf(ErrorBody{})
	g.note(errType, inResponse)
	for _, rt := range s.routes {
		for _, body := range []any{rt.Response, rt.Accepted} {
			if body != nil {
				g.note(reflect.TypeOf(body), inResponse)
			}
		}
		if rt.Request != nil {
			g.note(reflect.TypeOf(rt.Request), bodyUse(rt))
		}
	}
	for _, t := range events.Types {
		g.note(reflect.TypeOf(t.Data), inResponse)
	}
	errRef := g.schema(errType, inResponse)
	paths := map[string]any{}
	for _, rt := range s.routes {
		op := map[string]any{"summary": rt.Summary, "tags": []string{rt.Tag},
			"operationId": operationID(rt)}
		var params []any
		for _, name := range pathParams(rt.Path) {
			params = append(params, map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range rt.Query {
			params = append(params, map[string]any{"name": q.Name, "in": "query", "description": q.Doc, "schema": map[string]any{"type": q.Type}})
		}
		if rt.Idempotent {
			params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "schema": map[string]any{"type": "string", "maxLength": maxIdempotencyKey},
				"description": "makes a retry safe: the same key with the same request answers as the first time, without doing the work again; " +
					"kept 24 hours per API token. A key used for a different request is refused (422), one whose request is still being processed is a conflict (409)"})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.Request != nil {
			op["requestBody"] = map[string]any{"required": !rt.OptionalBody, "content": map[string]any{
				"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.Request), bodyUse(rt))}}}
		}
		if rt.RawBody != "" {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				rt.RawBody: map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}}
		}
		ok := map[string]any{"description": http.StatusText(rt.Status)}
		if rt.Response != nil || len(rt.Files) > 0 {
			content := map[string]any{}
			if rt.Response != nil {
				content["application/json"] = map[string]any{"schema": g.schema(reflect.TypeOf(rt.Response), inResponse)}
			}
			for _, media := range rt.Files {
				content[media] = map[string]any{"schema": map[string]any{"type": "string", "contentMediaType": media}}
			}
			ok["content"] = content
		}
		responses := map[string]any{strconv.Itoa(rt.Status): ok}
		if rt.Accepted != nil {
			responses["202"] = map[string]any{"description": "Accepted: the work goes on as a job; follow it by its id",
				"content": map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.Accepted), inResponse)}}}
		}
		if rt.Unavailable != nil {
			responses["503"] = map[string]any{"description": "Not ready: the body names the checks that failed",
				"content": map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.Unavailable), inResponse)}}}
		}
		errResp := func(code int, why string) {
			responses[strconv.Itoa(code)] = map[string]any{"description": why,
				"content": map[string]any{"application/json": map[string]any{"schema": errRef}}}
		}
		if rt.Request != nil || rt.RawBody != "" || len(rt.Query) > 0 {
			errResp(400, "The input is malformed or invalid; error.field names the field")
		}
		if rt.Request != nil || rt.RawBody != "" {
			errResp(413, "The body is over its limit, which error.message names")
		}
		if rt.Public {
			op["security"] = []any{} // overrides the document's: no token needed
		} else {
			errResp(401, "Missing or invalid API token")
			errResp(403, "The token may not do this: a token with the inbound scope may only post inbound email")
			errResp(429, "Over a rate limit: the token's own (rate_limited), or that of the client address for missing or invalid tokens (too_many_bad_tokens); Retry-After says when to try again")
			responses["429"].(map[string]any)["headers"] = map[string]any{"Retry-After": map[string]any{
				"description": "seconds until a request is let through again", "schema": map[string]any{"type": "integer", "minimum": 1}}}
		}
		if rt.Scope != "" {
			op["description"] = "Needs a token with the " + rt.Scope + " scope."
			errResp(403, "The token lacks the "+rt.Scope+" scope")
		}
		if len(pathParams(rt.Path)) > 0 {
			errResp(404, "Not found")
		}
		if rt.Method == "POST" || rt.Method == "PATCH" || rt.Method == "PUT" {
			errResp(409, "Conflicts with the current state, e.g. an email already in use")
			errResp(422, "Refused by a rule, or refers to something that does not exist")
		}
		if rt.Method != "GET" && strings.HasPrefix(rt.Path, "/api/v1/contacts/{id}") {
			errResp(423, "Locked: the contact asked to stop processing or was erased, or withdrew consent to storing the field")
		}
		errResp(500, "Internal error, such as the database not answering; the server log has the cause")
		op["responses"] = responses
		item, _ := paths[rt.Path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.Path] = item
		}
		item[strings.ToLower(rt.Method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Consentry API", "version": s.Version,
			"description": "GDPR consent and privacy service: contacts, purposes, consent records, opt-in status and the consent ledger.",
			"license":     map[string]any{"name": "Apache 2.0", "identifier": "Apache-2.0"}},
		// Relative: the document is served by the API it describes.
		"servers":  []any{map[string]any{"url": "/", "description": "this server"}},
		"security": []any{map[string]any{"bearer": []string{}}},
		"tags":     docTags(s.routes),
		"paths":    paths,
		"webhooks": webhooks(g),
		"components": map[string]any{
			"schemas": g.components,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer",
				"description": "an API token, made on the admin UI's API tokens page"}},
		},
	}
}

// webhooks describes what a webhook endpoint receives: one entry per event
// type (events.Types), the envelope with that type's data.
func webhooks(g *schemaGen) map[string]any {
	out := make(map[string]any, len(events.Types))
	for _, t := range events.Types {
		envelope := map[string]any{"type": "object", "required": []string{"id", "type", "version", "timestamp", "data"},
			"properties": map[string]any{
				"id":        map[string]any{"type": "string", "description": "evt_ and the event's sequence number; the same in every delivery of the event"},
				"type":      map[string]any{"type": "string", "const": t.Name},
				"version":   map[string]any{"type": "integer", "const": t.Version},
				"timestamp": map[string]any{"type": "string", "format": "date-time", "description": "when the change happened"},
				"data":      g.schema(reflect.TypeOf(t.Data), inResponse),
			}}
		out[t.Name] = map[string]any{"post": map[string]any{
			"summary":     t.Description,
			"description": "Sent to the webhook endpoints subscribed to " + t.Name + " (docs/events.md).",
			"operationId": "event" + operationID(Route{Path: t.Name}),
			"tags":        []string{"events"},
			"requestBody": map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": envelope}}},
			"responses": map[string]any{
				"2XX":     map[string]any{"description": "Received; the event is not sent again"},
				"default": map[string]any{"description": "Not received; the delivery is tried again later"},
			},
		}}
	}
	return out
}

// tagDocs describes the routes' tags; a tag missing here is caught by the
// test that lints the document.
var tagDocs = map[string]string{
	"service":          "Whether the service is up, and this document",
	"contacts":         "Leads and contacts, their fields, and the log of reveals of sensitive values",
	"consents":         "Consent records per purpose, and the email opt-in status",
	"fields":           "Custom field definitions",
	"purposes":         "Purposes, their legal basis and the versions of their consent text",
	"sources":          "Where consents come from",
	"email":            "Double opt-in email, deliverability and the emails queued for contacts",
	"settings":         "The operator's settings",
	"ledger":           "The hash-chained consent ledger",
	"lists":            "Email lists and contacts' subscriptions",
	"webforms":         "Webforms that collect contacts and consents on other websites",
	"preferences page": "The contacts' preferences page and the personal links to it",
	"requests":         "Data subject requests and their due dates",
	"erasure":          "Erasing a contact's personal data, and legal holds",
	"campaigns":        "Campaigns and their templates",
	"events":           "Events of every state change, in commit order; the webhooks section describes each type (docs/events.md)",
	"webhooks":         "Webhook endpoints, their delivery log and replay; deliveries are signed after Standard Webhooks (docs/webhooks.md); needs the automation scope",
	"workflows":        "Workflow rules: act on a contact the moment an event happens (docs/workflows.md); needs the automation scope",
	"imports":          "Imports of contacts from CSV and Excel files, each row with where it came from and on what basis (docs/imports.md)",
}

// docTags lists the routes' tags, with their descriptions, in the order
// the route table first uses them.
func docTags(routes []Route) []any {
	var out []any
	seen := map[string]bool{}
	for _, rt := range routes {
		if !seen[rt.Tag] {
			seen[rt.Tag] = true
			tag := map[string]any{"name": rt.Tag}
			if doc := tagDocs[rt.Tag]; doc != "" {
				tag["description"] = doc
			}
			out = append(out, tag)
		}
	}
	return out
}

// namedEnums are the value lists that types name with enum:"@name", so that
// the document lists exactly the values the code checks against.
var namedEnums = map[string][]string{
	"opt_in_status":           contactstate.OptInStatuses,
	"opt_in_status_on_create": consent.StatusesThrough(consent.ChannelUserCreate),
	"opt_in_status_by_user":   consent.StatusesThrough(consent.ChannelUser),
	"deliverability":          contactstate.Deliverabilities,
	"legal_basis":             consent.LegalBases,
	"consent_state":           consent.RecordStates,
	"current_consent_state":   append(slices.Clone(consent.RecordStates), consent.StateNone),
	"user_method":             consent.UserMethods,
	"campaign_opt_in_policy":  settings.Policies,
	"role":                    auth.Roles,
	"language":                i18n.Languages,
	"retention_action":        consent.RetentionActions,
	"request_kind":            requests.Kinds,
	"request_channel":         requests.Channels,
	"request_status":          requests.Statuses,
	"kept_after_erasure":      settings.KeepableAfterErasure,
	"hold_legal_basis":        holds.Bases,
	"inbound_outcome":         inbound.Outcomes,
	"text_encoding":           tabular.Encodings,
	"audit_kind":              audit.Kinds,
	"audit_action":            audit.Actions,
}

// enumValues reads an enum tag: a comma-separated list, or @name for one of
// namedEnums. An unknown name is a programming error, caught by the test
// that builds the document.
func enumValues(tag string) []string {
	name, named := strings.CutPrefix(tag, "@")
	if !named {
		return strings.Split(tag, ",")
	}
	vals, ok := namedEnums[name]
	if !ok {
		panic("api: no enum named " + name)
	}
	return vals
}

var pathParamRE = regexp.MustCompile(`\{([a-z_]+)\}`)

func pathParams(path string) []string {
	var out []string
	for _, m := range pathParamRE.FindAllStringSubmatch(path, -1) {
		out = append(out, m[1])
	}
	return out
}

// operationID makes "listContacts"-style ids from the method and path.
func operationID(rt Route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.Method))
	for _, part := range strings.Split(rt.Path, "/") {
		if part == "" || part == "api" || part == "v1" {
			continue
		}
		part = strings.Trim(part, "{}")
		for _, w := range strings.FieldsFunc(part, func(r rune) bool { return r == '-' || r == '_' || r == '.' }) {
			r := []rune(w)
			r[0] = unicode.ToUpper(r[0])
			b.WriteString(string(r))
		}
	}
	return b.String()
}

// use is where a schema describes a body, which decides its required
// properties: in a response, those encoding/json always writes; in a
// request, those decode refuses to go without (requiredIn).
type use int

const (
	inResponse use = iota
	inCreate       // the body of a POST, which creates
	inChange       // the body of another request, which changes
)

// bodyUse is the use of a route's request body.
func bodyUse(rt Route) use {
	if rt.Method == http.MethodPost {
		return inCreate
	}
	return inChange
}

// schemaGen builds the schemas of the document's bodies, each struct once
// per distinct set of required lists (see name).
type schemaGen struct {
	components map[string]any
	made       map[string]made        // what each component describes
	uses       map[reflect.Type][]use // the uses of each struct type, in order
}

// made is the type and use a component was made for.
type made struct {
	t reflect.Type
	u use
}

func newSchemaGen() *schemaGen {
	return &schemaGen{components: map[string]any{}, made: map[string]made{}, uses: map[reflect.Type][]use{}}
}

// note records that t, and every struct type in it, describes a body of
// use u, before any schema is built, so that names do not depend on the
// order of the routes.
func (g *schemaGen) note(t reflect.Type, u use) {
	t = structOf(t)
	if t == nil || slices.Contains(g.uses[t], u) {
		return
	}
	g.uses[t] = append(g.uses[t], u)
	slices.Sort(g.uses[t])
	eachField(t, false, func(f reflect.StructField, _ string, _ bool) { g.note(f.Type, u) })
}

// structOf is the struct type t holds (through pointers, slices and maps),
// or nil when it holds none that becomes a schema of its own.
func structOf(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == timeType {
		return nil
	}
	return t
}

// required reports whether a property of field f is required in a body of
// use u. A response always has a field that is neither a pointer nor an
// interface (which may be null) nor omitted when empty. Its slices and maps
// count as always there: lists are read as empty slices, not nil, when
// there is nothing (TestResponsesHaveRequiredProperties checks the answers
// of the GET routes).
// A request must give the fields decode refuses to go without. within says
// f is in an embedded pointer, whose fields a response leaves out when it
// is nil.
func required(f reflect.StructField, u use, within bool) bool {
	if u != inResponse {
		return requiredIn(f, u == inCreate)
	}
	_, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
	omitted := slices.ContainsFunc(strings.Split(opts, ","), func(o string) bool { return o == "omitempty" || o == "omitzero" })
	return !within && !omitted && f.Type.Kind() != reflect.Pointer && f.Type.Kind() != reflect.Interface
}

// same reports whether struct t has the same required lists in uses a and
// b, in itself and in every struct it holds.
func same(t reflect.Type, a, b use, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return true
	}
	seen[t] = true
	ok := true
	eachField(t, false, func(f reflect.StructField, _ string, within bool) {
		if required(f, a, within) != required(f, b, within) {
			ok = false
		} else if st := structOf(f.Type); ok && st != nil {
			ok = same(st, a, b, seen)
		}
	})
	return ok
}

// name names the schema of struct t in use u: after the type when its
// required lists are those of its first use (responses before requests);
// otherwise with Input for a request body, or Update for a body that
// changes when the one that creates differs from it.
func (g *schemaGen) name(t reflect.Type, u use) string {
	base := schemaName(t)
	uses := g.uses[t]
	switch {
	case len(uses) == 0 || u == uses[0] || same(t, u, uses[0], map[reflect.Type]bool{}):
		return base
	case u == inChange && slices.Contains(uses, inCreate):
		if same(t, inChange, inCreate, map[reflect.Type]bool{}) {
			return g.name(t, inCreate)
		}
		return base + "Update"
	}
	return base + "Input"
}

var timeType = reflect.TypeOf(time.Time{})

// schema returns the schema of t in a body of use u, adding the schemas of
// the structs in it to the components.
func (g *schemaGen) schema(t reflect.Type, u use) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Pointer:
		return g.schema(t.Elem(), u)
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32:
		return map[string]any{"type": "integer"}
	case reflect.Float64, reflect.Float32:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 { // encoding/json writes bytes in base64
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": g.schema(t.Elem(), u)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": true}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := g.name(t, u)
		if m, done := g.made[name]; done && (m.t != t || !same(t, m.u, u, map[reflect.Type]bool{})) {
			panic(fmt.Sprintf("api: two schemas named %s, of %v (nil: a named enum) and %v", name, m.t, t))
		} else if !done {
			g.made[name] = made{t, u}
			g.components[name] = map[string]any{} // guards recursion
			props := map[string]any{}
			var must []string
			eachField(t, false, func(f reflect.StructField, prop string, within bool) {
				props[prop] = g.property(f, u)
				if required(f, u, within) {
					must = append(must, prop)
				}
			})
			sc := map[string]any{"type": "object", "properties": props}
			if len(must) > 0 {
				sc["required"] = must
			}
			g.components[name] = sc
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

// property is the schema of field f, with its doc and enum tags.
func (g *schemaGen) property(f reflect.StructField, u use) map[string]any {
	sc := g.schema(f.Type, u)
	if enum := f.Tag.Get("enum"); enum != "" {
		// A named list is a schema of its own, so that a generated client
		// has one type for it wherever it is used. The values of an array
		// are its items'.
		ref := g.namedEnum(enum)
		items, isList := sc["items"].(map[string]any)
		switch {
		case isList && ref != nil:
			sc["items"] = ref
		case isList:
			items["enum"] = enumValues(enum)
		case ref != nil:
			sc = ref
		default:
			sc["enum"] = enumValues(enum)
		}
	}
	if doc := f.Tag.Get("doc"); doc != "" {
		if _, isRef := sc["$ref"]; isRef {
			sc = map[string]any{"allOf": []any{sc}}
		}
		sc["description"] = doc
	}
	return sc
}

// namedEnum returns a reference to the schema of the named enum an enum
// tag (@name) gives, adding it to the components; nil for a tag that
// lists its values.
func (g *schemaGen) namedEnum(tag string) map[string]any {
	key, named := strings.CutPrefix(tag, "@")
	if !named {
		return nil
	}
	var b strings.Builder
	for _, w := range strings.Split(key, "_") {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	name := b.String()
	if m, done := g.made[name]; done && m.t != nil {
		panic("api: the enum " + key + " and " + m.t.String() + " make the schema " + name)
	} else if !done {
		g.made[name] = made{}
		g.components[name] = map[string]any{"type": "string", "enum": enumValues(tag)}
	}
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

// eachField calls fn with each field of struct t that encoding/json
// writes, with its JSON name, the fields of embedded structs flattened as
// encoding/json flattens them; within says the field is in an embedded
// pointer.
func eachField(t reflect.Type, within bool, fn func(f reflect.StructField, name string, within bool)) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if et := f.Type; f.Anonymous && f.Tag.Get("json") == "" {
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct { // flattened, as encoding/json does
				eachField(et, within || f.Type.Kind() == reflect.Pointer, fn)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fn(f, name, within)
	}
}

// schemaName names a struct after its package and type, without repeating
// the package ("contact.Contact" is "Contact", "consent.Record" is
// "ConsentRecord").
func schemaName(t reflect.Type) string {
	pkg := t.PkgPath()
	pkg = pkg[strings.LastIndexByte(pkg, '/')+1:]
	if pkg == "api" || strings.HasPrefix(strings.ToLower(t.Name()), pkg) {
		return t.Name()
	}
	r := []rune(pkg)
	r[0] = unicode.ToUpper(r[0])
	return string(r) + t.Name()
}
