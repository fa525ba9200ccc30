package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestAdminFormsOverTheirLimitAre413: an admin form posted with a body
// over its form's limit is refused 413 with the admin's page that names
// the limit, and nothing of it is written: not the settings, a contact's
// record, a purpose, a consent record or a legal hold. What the forms
// are for still fits: a consent text and a custom field of 10,000
// characters, each three bytes long.
func TestAdminFormsOverTheirLimitAre413(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		e.api("POST", "/api/v1/fields", `{"name":"notes","type":"text"}`, 201, nil)
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"lisa@example.com","first_name":"Lisa"}`, 201, &c)
		marketing := purposeID(e, "E-marketing")
		// written is what a refused form must leave as it was, read through
		// the API and the tables it writes.
		written := func() string {
			var b strings.Builder
			for _, path := range []string{"/api/v1/settings", "/api/v1/contacts/" + c.ID, "/api/v1/purposes/" + marketing,
				"/api/v1/purposes/" + marketing + "/texts", "/api/v1/contacts/" + c.ID + "/consents", "/api/v1/contacts/" + c.ID + "/holds"} {
				res, body := e.call("GET", path, "")
				if res.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
				}
				b.Write(body)
			}
			for _, table := range []string{"audit_log", "consent_records", "legal_holds", "purpose_texts"} {
				b.WriteString(" " + table + ":" + strings.Repeat("|", count(t, db, "SELECT count(*) FROM "+table)))
			}
			return b.String()
		}
		before := written()
		base := e.srv.URL + "/admin"
		for _, f := range []struct {
			name, path, limit string
			size              int
			form              url.Values
		}{
			{"the settings", "/settings", "64 KiB", 64 << 10, url.Values{"double_opt_in_reminder_days": {"2"}, "default_language": {"sv"}}},
			{"a contact's record", "/contacts/" + c.ID, "1 MiB", 1 << 20, url.Values{"first_name": {"Changed"}, "kind": {"contact"}}},
			{"a purpose", "/settings/purposes/" + marketing, "256 KiB", 256 << 10, url.Values{"name": {"E-marketing"}, "legal_basis": {"consent"},
				"description": {"Changed"}, "text": {"A changed text"}}},
			{"a consent record", "/contacts/" + c.ID + "/consents", "16 KiB", 16 << 10, url.Values{"purpose": {"E-marketing"}, "state": {"granted"}, "source": {"Phone"}}},
			{"a legal hold", "/contacts/" + c.ID + "/holds", "64 KiB", 64 << 10, url.Values{"reason": {"Bookkeeping"}, "legal_basis": {"legal_obligation"}}},
		} {
			// The form as it would be saved, with a field the handler does
			// not read making it one byte longer than its limit.
			pad := f.size + 1 - len(f.form.Encode()) - len("&pad=")
			f.form.Set("pad", strings.Repeat("x", pad))
			if n := len(f.form.Encode()); n != f.size+1 {
				t.Fatalf("%s: the body is %d bytes, want %d", f.name, n, f.size+1)
			}
			code, body := admin.post(base+f.path, f.form)
			if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "<h1>Too much data</h1>") ||
				!strings.Contains(body, "more than "+f.limit+", the most it may send, so nothing was saved") {
				t.Errorf("%s over its limit: %d %.2000s", f.name, code, body)
			}
			if after := written(); after != before {
				t.Fatalf("%s over its limit wrote something:\nbefore %s\nafter  %s", f.name, before, after)
			}
		}
		// What the forms are for fits them.
		long := strings.Repeat("€", 10000)
		if code, body := admin.post(base+"/settings/purposes/"+marketing, url.Values{"name": {"E-marketing"}, "legal_basis": {"consent"},
			"description": {"Offers"}, "text": {long}}); code != 200 || !strings.Contains(body, "Purpose saved.") {
			t.Fatalf("a consent text of 10,000 characters: %d %.2000s", code, body)
		}
		if code, body := admin.post(base+"/contacts/"+c.ID, url.Values{"first_name": {"Lisa"}, "fields.notes": {long}}); code != 200 || !strings.Contains(body, "Saved.") {
			t.Fatalf("a custom field of 10,000 characters: %d %.2000s", code, body)
		}
	})
}
