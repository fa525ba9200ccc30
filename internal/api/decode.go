package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/consentry/consentry/internal/errs"
)

// checkShape refuses what decoding lets through silently, in a body that
// decoded into v: a body of null (which leaves v as it was), a key given
// twice in one object (the decoder keeps the last, so the client and the
// server could read different requests; keys are compared regardless of
// case, as the decoder matches them), and a required field (requiredIn)
// that is absent or null (a request that replaces a whole object would
// otherwise empty what it leaves out). create says the body makes a new
// thing (a POST), where the fields tagged required:"create" are required
// too.
func checkShape(data []byte, v any, create bool) error {
	if string(bytes.TrimSpace(data)) == "null" {
		return &errs.Error{Kind: errs.KindInvalid, Code: "malformed_json", Message: "request body must be a JSON object, not null"}
	}
	if path := duplicateKey(data); path != "" {
		return &errs.Error{Kind: errs.KindInvalid, Code: "duplicate_key", Field: path, Message: "is given more than once in its object (keys are compared regardless of case)"}
	}
	if path := missingRequired(reflect.TypeOf(v), data, "", create); path != "" {
		return errs.Required(path)
	}
	return nil
}

// duplicateKey returns the path ("footer.enabled", "offers[1].purpose") of
// the first key that appears twice in one object of data, which must be
// valid JSON, or "" when none does. It walks the tokens with a stack of
// its own, so that deep nesting costs memory in proportion, not recursion.
func duplicateKey(data []byte) string {
	type level struct {
		object  bool
		path    string
		keys    map[string]bool
		wantKey bool
		key     string // the key whose value comes next, in an object
		index   int    // the index of the next value, in an array
	}
	var stack []*level
	child := func() string {
		if len(stack) == 0 {
			return ""
		}
		top := stack[len(stack)-1]
		if top.object {
			top.wantKey = true
			if top.path == "" {
				return top.key
			}
			return top.path + "." + top.key
		}
		top.index++
		return fmt.Sprintf("%s[%d]", top.path, top.index-1)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		t, err := dec.Token()
		if err != nil {
			return "" // the end, or an error the decoder has already reported
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			top := stack[n-1]
			if d, ok := t.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				continue
			}
			k, _ := t.(string)
			folded := strings.ToLower(k)
			if top.keys[folded] {
				if top.path == "" {
					return k
				}
				return top.path + "." + k
			}
			top.keys[folded] = true
			top.key, top.wantKey = k, false
			continue
		}
		switch t {
		case json.Delim('{'):
			stack = append(stack, &level{object: true, path: child(), keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &level{path: child()})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			child()
		}
	}
}

// requiredIn reports whether a request body must give field f: always
// when it is tagged required:"true", and in a body that creates (a POST)
// when it is tagged required:"create", for the types a POST creates and a
// PATCH changes. The OpenAPI document's required lists come from the same
// tags, so they say what decode refuses.
func requiredIn(f reflect.StructField, create bool) bool {
	switch f.Tag.Get("required") {
	case "true":
		return true
	case "create":
		return create
	}
	return false
}

// requiredTypes caches, per type, whether any field in it (or in the types
// it holds) is tagged required, so that bodies of the other types are not
// read twice.
var requiredTypes sync.Map // reflect.Type → bool

func hasRequired(t reflect.Type) bool {
	if v, ok := requiredTypes.Load(t); ok {
		return v.(bool)
	}
	found := tagged(t, map[reflect.Type]bool{})
	requiredTypes.Store(t, found)
	return found
}

// tagged is hasRequired without the cache; seen guards recursive types.
func tagged(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return tagged(t.Elem(), seen)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if f := t.Field(i); f.Tag.Get("required") != "" || tagged(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

// missingRequired returns the path of the first required field of type t
// (requiredIn) that data, the JSON of a t, leaves out or gives as null,
// looking into the objects and arrays it gives; "" when nothing is missing.
func missingRequired(t reflect.Type, data []byte, path string, create bool) string {
	if !hasRequired(t) {
		return ""
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return firstItem(data, path, func(item []byte, at string) string { return missingRequired(t.Elem(), item, at, create) })
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil || obj == nil {
			return ""
		}
		given := make(map[string]json.RawMessage, len(obj))
		for k, v := range obj {
			given[strings.ToLower(k)] = v
		}
		return missingInStruct(t, given, path, create)
	}
	return ""
}

func missingInStruct(t reflect.Type, given map[string]json.RawMessage, path string, create bool) string {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			if p := missingInStruct(f.Type, given, path, create); p != "" {
				return p
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		at := name
		if path != "" {
			at = path + "." + name
		}
		raw, ok := given[strings.ToLower(name)]
		if !ok || string(bytes.TrimSpace(raw)) == "null" {
			if requiredIn(f, create) {
				return at
			}
			continue
		}
		if p := missingRequired(f.Type, raw, at, create); p != "" {
			return p
		}
	}
	return ""
}

// unknownKey returns the path ("extend.weeks", "consents[0].note") of the
// key name in data, the JSON of a t, where it names no field of its
// object, looking into the objects and arrays data gives; "" when there is
// none. Keys are compared regardless of case, as the decoder matches them.
func unknownKey(t reflect.Type, data []byte, path, name string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return firstItem(data, path, func(item []byte, at string) string { return unknownKey(t.Elem(), item, at, name) })
	case reflect.Struct:
		return eachKey(t, data, path, func(k, at string, ft reflect.Type, raw []byte) string {
			if ft == nil {
				if strings.EqualFold(k, name) {
					return at
				}
				return ""
			}
			return unknownKey(ft, raw, at, name)
		})
	}
	return ""
}

// eachKey calls f for each key of data, the JSON object of a struct type
// t, in key order, with the key's path and the type of the field it names
// (nil when it names none), and returns the first path f returns; "" when
// f returns none, or data is no object.
func eachKey(t reflect.Type, data []byte, path string, f func(k, at string, ft reflect.Type, raw []byte) string) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return ""
	}
	fields := map[string]reflect.Type{}
	jsonFields(t, fields)
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		at := k
		if path != "" {
			at = path + "." + k
		}
		if p := f(k, at, fields[strings.ToLower(k)], obj[k]); p != "" {
			return p
		}
	}
	return ""
}

// badTime returns the path of the first value in data, the JSON of a t,
// that a time field cannot take, looking into the objects and arrays data
// gives; "" when there is none.
func badTime(t reflect.Type, data []byte, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[time.Time]() {
		if string(bytes.TrimSpace(data)) == "null" || json.Unmarshal(data, new(time.Time)) == nil {
			return ""
		}
		return path
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return firstItem(data, path, func(item []byte, at string) string { return badTime(t.Elem(), item, at) })
	case reflect.Struct:
		return eachKey(t, data, path, func(_, at string, ft reflect.Type, raw []byte) string {
			if ft == nil {
				return ""
			}
			return badTime(ft, raw, at)
		})
	}
	return ""
}

// jsonFields maps the lower-case JSON names of t's fields, those of
// embedded structs included, to their types.
func jsonFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && f.Type.Kind() == reflect.Struct && name == "" {
			jsonFields(f.Type, out)
			continue
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[strings.ToLower(name)] = f.Type
	}
}

// firstItem calls f with each item of data, a JSON array at path, and its
// path ("offers[1]"), and returns the first path f returns; "" when f
// returns none or data is no array.
func firstItem(data []byte, path string, f func(item []byte, at string) string) string {
	var items []json.RawMessage
	if json.Unmarshal(data, &items) != nil {
		return ""
	}
	for i, item := range items {
		if p := f(item, fmt.Sprintf("%s[%d]", path, i)); p != "" {
			return p
		}
	}
	return ""
}
