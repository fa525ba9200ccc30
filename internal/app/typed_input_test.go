package app_test

import (
	"html"
	"net/url"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestRefusedFormsKeepWhatWasTyped: each admin form that can be refused
// shows the page again with what was typed in it, next to the error, and
// writes nothing.
func TestRefusedFormsKeepWhatWasTyped(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"ines@example.com","first_name":"Ines"}`, 201, &c)
		e.api("POST", "/api/v1/fields", `{"name":"shoe_size","label":"Shoe size","type":"text"}`, 201, nil)
		marketing, phone := purposeID(e, "E-marketing"), sourceID(e, "Phone")
		long := strings.Repeat("x", 101)

		for _, tc := range []struct {
			name, path string
			form       url.Values
			want       []string // in the page shown again
		}{
			{"new API token", "/admin/settings/tokens", url.Values{"name": {""}, "days": {"30"}, "reveal": {"on"}, "campaigns": {"on"}},
				[]string{`name="days" value="30"`, `name="reveal" checked`, `name="campaigns" checked`, `id="inbound" name="inbound">`}},
			{"new API token, bad expiry", "/admin/settings/tokens", url.Values{"name": {"CRM sync"}, "days": {"0"}, "inbound": {"on"}},
				[]string{`name="name" value="CRM sync"`, `name="days" value="0"`, `name="inbound" checked`}},
			{"contact's fields", "/admin/contacts/" + c.ID, url.Values{"email": {"not an address"}, "first_name": {"Inès"}, "fields.shoe_size": {"38"}},
				[]string{`value="not an address"`, `value="Inès"`, `name="fields.shoe_size" value="38"`}},
			{"consent on the record", "/admin/contacts/" + c.ID + "/consents", url.Values{"purpose": {marketing}, "state": {"maybe"}, "source": {phone}},
				[]string{`<option value="` + marketing + `" selected>`, `<option value="` + phone + `" selected>`}},
			{"new purpose", "/admin/settings/purposes", url.Values{"name": {""}, "legal_basis": {"contract"}, "description": {"Typed description"},
				"retention_days": {"30"}, "retention_action": {"anonymise"}, "default_selected": {"off", "on"}, "text": {"Typed text"}},
				[]string{">Typed description</textarea>", `name="retention_days" value="30"`, `<option value="anonymise" selected>`,
					`<option value="contract" selected>`, `name="default_selected" value="on" checked`, ">Typed text</textarea>"}},
			{"purpose", "/admin/settings/purposes/" + marketing, url.Values{"name": {long}, "legal_basis": {"consent"}, "description": {"Changed description"},
				"retention_days": {"90"}, "retention_action": {"erase"}, "default_selected": {"off"}, "text": {"Changed text"}},
				[]string{`name="name" value="` + long + `"`, ">Changed description</textarea>", `name="retention_days" value="90"`, ">Changed text</textarea>"}},
			{"translation", "/admin/settings/purposes/" + marketing + "/translations/sv", url.Values{"version": {"999"}, "text": {"Typed Swedish text"}},
				[]string{">Typed Swedish text</textarea>"}},
			{"new source", "/admin/settings/sources", url.Values{"name": {long}}, []string{`name="name" value="` + long + `"`}},
			{"new field", "/admin/settings/fields", url.Values{"name": {"Bad Name"}, "label": {"Typed label"}, "type": {"date"},
				"personal": {"off", "on"}, "sensitive": {"off"}, "mask": {"first:2"}, "storage_purpose": {marketing}},
				[]string{`id="name" name="name" value="Bad Name"`, `id="label" name="label" value="Typed label"`, `<option value="date" selected>`,
					`id="personal" name="personal" value="on" checked`, `id="mask" name="mask" value="first:2"`}},
			{"field", "/admin/settings/fields/shoe_size", url.Values{"label": {long}, "personal": {"off", "on"}, "sensitive": {"off"}},
				[]string{`<details class="card" open>`, `name="label" value="` + long + `"`, `id="personal-shoe_size" name="personal" value="on" checked`}},
		} {
			before := count(t, db, `SELECT (SELECT count(*) FROM api_tokens) + (SELECT count(*) FROM purposes) + (SELECT count(*) FROM consent_records)
				+ (SELECT count(*) FROM sources) + (SELECT count(*) FROM field_definitions) + (SELECT count(*) FROM purpose_texts)`)
			code, body := admin.post(e.srv.URL+tc.path, tc.form)
			if code < 400 || !strings.Contains(body, `class="error"`) {
				t.Errorf("%s: %d, not refused: %s", tc.name, code, body)
				continue
			}
			body = html.UnescapeString(body)
			for _, want := range tc.want {
				if !strings.Contains(body, html.UnescapeString(want)) {
					t.Errorf("%s: the page shown again lacks %q", tc.name, want)
				}
			}
			after := count(t, db, `SELECT (SELECT count(*) FROM api_tokens) + (SELECT count(*) FROM purposes) + (SELECT count(*) FROM consent_records)
				+ (SELECT count(*) FROM sources) + (SELECT count(*) FROM field_definitions) + (SELECT count(*) FROM purpose_texts)`)
			if after != before {
				t.Errorf("%s: the refused post wrote something (%d rows, %d before)", tc.name, after, before)
			}
		}
		// The contact's fields were not changed by the refused edit.
		var got struct {
			FirstName string `json:"first_name"`
		}
		e.api("GET", "/api/v1/contacts/"+c.ID, "", 200, &got)
		if got.FirstName != "Ines" {
			t.Fatalf("the refused edit changed the first name to %q", got.FirstName)
		}
	})
}
