package api_test

import (
	"testing"

	"github.com/consentry/consentry/internal/api"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// A language taken from the API, the language a consent text was shown in
// or a contact's, is a BCP 47 tag: one that is not well-formed, or names
// no known language, is refused on its field and writes nothing (run
// compares the contacts, the watched contact's history and the ledger); a
// tag is kept in its canonical form.
func TestLanguagesAreTags(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		consents := "/api/v1/contacts/{{c1}}/consents"
		grant := func(lang string) string {
			return `{"purpose":"E-marketing","state":"granted","source":"API","text_language":"` + lang + `"}`
		}
		e.run(t, []scenario{
			{name: "create contact", method: "POST", url: "/api/v1/contacts", body: `{"email":"lang@example.com"}`, status: 201,
				check: func(t testing.TB, body []byte) { e.vars["c1"] = decodeAs[struct{ ID string }](t, body).ID }},
			{name: "a word", method: "POST", url: consents, body: grant("english"), status: 400, errCode: "invalid", errField: "text_language"},
			{name: "an empty subtag", method: "POST", url: consents, body: grant("en-"), status: 400, errCode: "invalid", errField: "text_language"},
			{name: "two hyphens", method: "POST", url: consents, body: grant("en--US"), status: 400, errCode: "invalid", errField: "text_language"},
			{name: "a subtag too long", method: "POST", url: consents, body: grant("abcdefghi"), status: 400, errCode: "invalid", errField: "text_language"},
			{name: "no known language", method: "POST", url: consents, body: grant("xx"), status: 400, errCode: "invalid", errField: "text_language"},
			{name: "inside a new contact", method: "POST", url: "/api/v1/contacts",
				body:   `{"email":"lang2@example.com","consents":[` + grant("sv") + `,` + grant("e1") + `]}`,
				status: 400, errCode: "invalid", errField: "consents[1].text_language"},
			{name: "a contact's language", method: "PATCH", url: "/api/v1/contacts/{{c1}}", body: `{"language":"swedish"}`,
				status: 400, errCode: "invalid", errField: "language"},
			{name: "a tag in another case is kept in its canonical form", method: "POST", url: consents, body: grant("PT-br"),
				status: 201, events: 1, contains: []string{`"text_language":"pt-BR"`}},
			{name: "a contact's language in its canonical form", method: "PATCH", url: "/api/v1/contacts/{{c1}}", body: `{"language":"SV-se"}`,
				status: 200, contains: []string{`"language":"sv-SE"`}},
			{name: "the history holds the canonical form", method: "GET", url: consents, status: 200,
				check: func(t testing.TB, body []byte) {
					h := decodeAs[api.ConsentsResponse](t, body).History
					if len(h) != 1 || h[0].TextLanguage != "pt-BR" || h[0].State != consent.StateGranted {
						t.Errorf("history %+v, want one grant shown in pt-BR", h)
					}
				}},
		})
	})
}
