package api

import (
	"reflect"
	"slices"
	"testing"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
)

// TestEnumsComeFromTheRules: the documented opt-in statuses a user may ask
// for are the ones consent.CheckOptIn lets through, and every named enum a
// type refers to exists.
func TestEnumsComeFromTheRules(t *testing.T) {
	for name, want := range map[string][]string{
		"opt_in_status_on_create": {contactstate.OptInNone, contactstate.SingleOptInUser, contactstate.OptOutUser},
		"opt_in_status_by_user":   {contactstate.OptInNone, contactstate.OptOutUser},
		"opt_in_status":           contactstate.OptInStatuses,
		"legal_basis":             consent.LegalBases,
	} {
		if got := enumValues("@" + name); !slices.Equal(got, want) {
			t.Errorf("enum %s = %v, want %v", name, got, want)
		}
	}
	g := newSchemaGen()
	for _, typ := range []any{CreateContactRequest{}, OptInRequest{}, consent.Record{}, consent.Current{}} {
		g.schema(reflect.TypeOf(typ), inResponse) // panics on an unknown enum name
	}
}
