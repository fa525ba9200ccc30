package api

import (
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/holds"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/inbound"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/settings"
)

// OpenAPI returns the OpenAPI 3.1 document of the route table, with schemas
// derived from the request and response types (their json, enum and doc
// tags).
func (s *Server) OpenAPI() map[string]any {
	g := &schemaGen{components: map[string]any{}}
	errRef := g.schema(reflect.TypeOf(ErrorBody{}))
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
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.Request))}}}
		}
		if rt.RawBody != "" {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				rt.RawBody: map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}}
		}
		ok := map[string]any{"description": http.StatusText(rt.Status)}
		if rt.Response != nil {
			content := map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.Response))}}
			for _, media := range rt.Files {
				content[media] = map[string]any{"schema": map[string]any{"type": "string", "contentMediaType": media}}
			}
			ok["content"] = content
		}
		responses := map[string]any{strconv.Itoa(rt.Status): ok}
		if rt.Accepted != nil {
			responses["202"] = map[string]any{"description": "Accepted: the work goes on as a job; follow it by its id",
				"content": map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.Accepted))}}}
		}
		errResp := func(code int, why string) {
			responses[strconv.Itoa(code)] = map[string]any{"description": why,
				"content": map[string]any{"application/json": map[string]any{"schema": errRef}}}
		}
		if rt.Request != nil || rt.RawBody != "" || len(rt.Query) > 0 {
			errResp(400, "The input is malformed or invalid; error.field names the field")
		}
		if !rt.Public {
			errResp(401, "Missing or invalid API token")
			op["security"] = []any{map[string]any{"bearer": []string{}}}
		}
		if rt.Scope != "" {
			op["description"] = "Needs a token with the " + rt.Scope + " scope."
			errResp(403, "The token lacks the "+rt.Scope+" scope")
		}
		if len(pathParams(rt.Path)) > 0 {
			errResp(404, "Not found")
		}
		if rt.Method == "POST" || rt.Method == "PATCH" {
			errResp(409, "Conflicts with the current state, e.g. an email already in use")
			errResp(422, "Refused by a rule, or refers to something that does not exist")
		}
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
			"description": "GDPR consent and privacy service: contacts, purposes, consent records, opt-in status and the consent ledger."},
		"paths": paths,
		"components": map[string]any{
			"schemas":         g.components,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
		},
	}
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

type schemaGen struct{ components map[string]any }

var timeType = reflect.TypeOf(time.Time{})

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Pointer:
		return g.schema(t.Elem())
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
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": true}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := schemaName(t)
		if _, done := g.components[name]; !done {
			g.components[name] = map[string]any{} // guards recursion
			props := map[string]any{}
			required := g.fields(t, props)
			sc := map[string]any{"type": "object", "properties": props}
			if len(required) > 0 {
				sc["required"] = required
			}
			g.components[name] = sc
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

// fields adds the properties of struct t to props, and returns the names
// of those tagged required:"true", which a request must give (see decode).
func (g *schemaGen) fields(t reflect.Type, props map[string]any) []string {
	var required []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if et := f.Type; f.Anonymous && f.Tag.Get("json") == "" {
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct { // flattened, as encoding/json does
				required = append(required, g.fields(et, props)...)
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
		sc := g.schema(f.Type)
		if _, isRef := sc["$ref"]; isRef && (f.Tag.Get("doc") != "" || f.Tag.Get("enum") != "") {
			sc = map[string]any{"allOf": []any{sc}}
		}
		if doc := f.Tag.Get("doc"); doc != "" {
			sc["description"] = doc
		}
		if enum := f.Tag.Get("enum"); enum != "" {
			sc["enum"] = enumValues(enum)
		}
		props[name] = sc
		if f.Tag.Get("required") == "true" {
			required = append(required, name)
		}
	}
	return required
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
