package export

import (
	"iter"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// table is one section as rows of text: a CSV file, or an Excel sheet.
// Its columns are the JSON names of the section's fields, in the same
// order, so that the three formats cannot drift apart.
type table struct {
	name   string
	header []string
	rows   iter.Seq[[]string]
	// err, when set, is the error reading the rows ended with, asked once
	// they are all written: rows read from the database as they are
	// written can fail midway, and the file must not pass for whole.
	err func() error
}

// failed is the error reading t's rows ended with; nil when there was none.
func (t table) failed() error {
	if t.err == nil {
		return nil
	}
	return t.err()
}

// tables returns the sections in the order of the JSON: "about" (the
// schema, when and whether masked), the contact as name and value pairs,
// then one table per list.
func (e *Export) tables() []table {
	about := struct {
		Schema      string    `json:"schema"`
		GeneratedAt time.Time `json:"generated_at"`
		Masked      bool      `json:"masked"`
	}{e.Schema, e.GeneratedAt, e.Masked}
	return []table{
		pairs("about", about),
		pairs("contact", e.Contact),
		listOf("fields", e.Fields),
		listOf("consents", e.Consents),
		listOf("consent_history", e.ConsentHistory),
		listOf("consent_texts", e.ConsentTexts),
		listOf("sources", e.Sources),
		listOf("opt_in_history", e.OptInHistory),
		listOf("list_subscriptions", e.Lists),
		listOf("emails", e.Emails),
		listOf("access_log", e.AccessLog),
		listOf("requests", e.Requests),
		listOf("holds", e.Holds),
	}
}

// columns are the JSON names of a struct type's fields.
func columns(t reflect.Type) []string {
	out := make([]string, t.NumField())
	for i := range out {
		out[i] = jsonName(t.Field(i))
	}
	return out
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// listOf is a table with a row per item and a column per field.
func listOf[T any](name string, items []T) table {
	t := reflect.TypeFor[T]()
	return table{name: name, header: columns(t), rows: func(yield func([]string) bool) {
		for i := range items {
			v := reflect.ValueOf(&items[i]).Elem()
			row := make([]string, v.NumField())
			for j := range row {
				row[j] = cellText(v.Field(j))
			}
			if !yield(row) {
				return
			}
		}
	}}
}

// pairs is a table of one struct's fields, a row per field: its JSON name
// and value.
func pairs(name string, item any) table {
	v := reflect.ValueOf(item)
	return table{name: name, header: []string{"field", "value"}, rows: func(yield func([]string) bool) {
		for i := range v.NumField() {
			if !yield([]string{jsonName(v.Type().Field(i)), cellText(v.Field(i))}) {
				return
			}
		}
	}}
}

var timeType = reflect.TypeFor[time.Time]()

// cellText writes a value as its JSON does, without quotes: times in RFC
// 3339, numbers in digits, booleans as true or false, a missing time as
// an empty cell.
func cellText(v reflect.Value) string {
	switch {
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			return ""
		}
		return cellText(v.Elem())
	case v.Type() == timeType:
		return timeText(v.Interface().(time.Time))
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	}
	panic("export: no cell text for " + v.Type().String()) // a new field type; the tests build every table
}
