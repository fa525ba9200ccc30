package audit_test

import (
	"reflect"
	"testing"

	"github.com/consentry/consentry/internal/audit"
)

type inner struct {
	Rate int `json:"rate"`
}

type shape struct {
	Name     string   `json:"name"`
	Words    []string `json:"words"`
	Password string   `json:"password"`
	Note     string   `json:"note,omitempty"`
	Skipped  string   `json:"-"`
	inner
}

// Changes names each field whose JSON differs, the fields of an embedded
// struct as their own, with the values as JSON, sorted by name; a secret
// is named with both values empty, and what is the same, or not written,
// is left out.
func TestChanges(t *testing.T) {
	before := shape{Name: "Acme", Words: []string{"DELETE"}, Password: "hunter2", Skipped: "a", inner: inner{Rate: 1}}
	after := shape{Name: "Acme", Words: []string{"DELETE", "ERASE"}, Password: "correct horse", Note: "new", Skipped: "b", inner: inner{Rate: 2}}
	want := []audit.Change{{Name: "note", New: `"new"`}, {Name: "password"}, {Name: "rate", Old: "1", New: "2"},
		{Name: "words", Old: `["DELETE"]`, New: `["DELETE","ERASE"]`}}
	if got := audit.Changes(before, after, "password"); !reflect.DeepEqual(got, want) {
		t.Fatalf("changes %+v, want %+v", got, want)
	}
	if got := audit.Changes(before, before, "password"); len(got) != 0 {
		t.Fatalf("no change gave %+v", got)
	}
}

// A creation's changes are from nil, every field with no old value, and a
// deletion's to nil, every field with no new value.
func TestChangesFromAndToNothing(t *testing.T) {
	v := inner{Rate: 2}
	if got, want := audit.Changes(nil, v), []audit.Change{{Name: "rate", New: "2"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("created: %+v, want %+v", got, want)
	}
	if got, want := audit.Changes(&v, nil), []audit.Change{{Name: "rate", Old: "2"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("deleted: %+v, want %+v", got, want)
	}
}

// A digest stands for a text by the start of its SHA-256 and its length,
// the same for the same text and another for any other; nothing is
// nothing.
func TestDigest(t *testing.T) {
	// sha256("hello") = 2cf24dba5fb0a30e26e83b2ac5b9e29e...
	if got, want := audit.Digest("hello"), "sha256:2cf24dba5fb0a30e (5 bytes)"; got != want {
		t.Fatalf("Digest(hello) = %q, want %q", got, want)
	}
	if audit.Digest("<p>Hi</p>") == audit.Digest("<p>Hi!</p>") {
		t.Fatal("two bodies have one digest")
	}
	if got := audit.Digest(""); got != "" {
		t.Fatalf("Digest of nothing = %q", got)
	}
}
