package web

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/contact"
)

// TestConsentFormField: an error about the i-th consent of a new contact
// is put next to that purpose's line, at its source, or else at its
// state; other fields keep their names.
func TestConsentFormField(t *testing.T) {
	ids := []string{"p1", "p2"}
	for in, want := range map[string]string{
		"consents[1].source":          "consent.p2.source",
		"consents[0].legal_basis":     "consent.p1.state",
		"consents[0].state":           "consent.p1.state",
		"consents[1].purpose":         "consent.p2.state",
		"consents[0]":                 "consent.p1.state",
		"consents[0].evidence.method": "consent.p1.state",
		"consents[2].source":          "consents[2].source", // no such line
		"consents[x].source":          "consents[x].source",
		"opt_in_status":               "opt_in_status",
		"email":                       "email",
	} {
		if got := consentFormField(in, ids); got != want {
			t.Errorf("consentFormField(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAccessLogContacts: a contact is named, masked for a viewer who may
// not see contacts, and a deleted or erased one says so (the entries
// themselves are said in words by export.AccessWhat).
func TestAccessLogContacts(t *testing.T) {
	now := time.Now()
	lisa := &contact.Contact{FirstName: "Lisa", LastName: "Larsson", Email: "lisa@example.com"}
	for _, c := range []struct {
		c       *contact.Contact
		mayView bool
		want    string
	}{
		{lisa, true, "Lisa Larsson"},
		{lisa, false, "L… L…"},
		{&contact.Contact{Email: "lisa@example.com"}, false, "l…@example.com"},
		{nil, true, "a deleted contact"},
		{&contact.Contact{Email: "x", ErasedAt: &now}, true, "an erased contact"},
	} {
		if got := accessContact(c.c, c.mayView); got != c.want {
			t.Errorf("accessContact(%+v, %v) = %q, want %q", c.c, c.mayView, got, c.want)
		}
	}
}

// TestListBack: the way back from a record keeps only what selects the
// list (search, condition, page), from the record's address or, for a form
// posted from the record, from the address it was posted from; anything
// else leads to the whole list.
func TestListBack(t *testing.T) {
	for _, c := range []struct{ method, target, referer, want string }{
		{"GET", "/admin/contacts/c1?list=" + url.QueryEscape("q=ann&filter=region+%3D%3D+%22EU%22&after=c9&evil=x"), "",
			"after=c9&filter=region+%3D%3D+%22EU%22&q=ann"},
		{"GET", "/admin/contacts/c1", "", ""},
		{"GET", "/admin/contacts/c1?list=%zz", "", ""},
		{"POST", "/admin/contacts/c1/consents", "http://x/admin/contacts/c1?list=" + url.QueryEscape("q=ann"), "q=ann"},
		{"GET", "/admin/contacts/c1", "http://x/admin/contacts/c1?list=" + url.QueryEscape("q=ann"), ""},
	} {
		r := httptest.NewRequest(c.method, c.target, nil)
		r.Header.Set("Referer", c.referer)
		if got := listBack(r); got != c.want {
			t.Errorf("%s %s (from %q): %q, want %q", c.method, c.target, c.referer, got, c.want)
		}
	}
}
