// Package eventstest reads the events a test's changes wrote.
package eventstest

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
)

// Reader reads the events written since it last read.
type Reader struct {
	db    *store.DB
	after int64
}

// From returns a Reader that starts after the events written so far.
func From(t testing.TB, db *store.DB) *Reader {
	t.Helper()
	r := &Reader{db: db}
	r.Next(t)
	return r
}

// Next returns the events written since the last read, oldest first.
func (r *Reader) Next(t testing.TB) []events.Event {
	t.Helper()
	var out []events.Event
	for {
		page, next, err := events.List(context.Background(), r.db.Read, events.Query{After: r.after, Limit: events.MaxList})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		r.after = next
		if len(page) < events.MaxList {
			return out
		}
	}
}

// Types returns the events' types, in order.
func Types(list []events.Event) []string {
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.Type
	}
	return out
}

// Data decodes e's data into a T.
func Data[T any](t testing.TB, e events.Event) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(e.Data, &v); err != nil {
		t.Fatalf("%s data %s: %v", e.Type, e.Data, err)
	}
	return v
}

// About returns the data of an event of type typ about contactID, every
// other field empty: for tests that write events themselves.
func About(typ, contactID string) any {
	for _, t := range events.Types {
		if t.Name == typ {
			v := reflect.New(reflect.TypeOf(t.Data)).Elem()
			if f := v.FieldByName("ContactID"); f.IsValid() {
				f.SetString(contactID)
			}
			return v.Interface()
		}
	}
	panic("eventstest: no event type " + typ)
}
