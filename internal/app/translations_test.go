package app_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

const (
	marketingEN = "Yes, I would like to receive newsletters and offers by email."
	marketingSV = "Ja, jag vill få nyhetsbrev och erbjudanden via e-post. Jag kan avregistrera mig när som helst."
)

// consentRecord is a consent record as the API shows it.
type consentRecord struct {
	Purpose, State, Source string
	TextVersion            int    `json:"text_version"`
	TextLanguage           string `json:"text_language"`
}

// lastRecord returns the contact's newest consent record.
func lastRecord(e *env, contactID string) consentRecord {
	e.t.Helper()
	var consents struct{ History []consentRecord }
	e.api("GET", "/api/v1/contacts/"+contactID+"/consents", "", 200, &consents)
	if len(consents.History) == 0 {
		e.t.Fatal("no consent record")
	}
	return consents.History[len(consents.History)-1]
}

// invite creates a contact in lang and sends them the double opt-in
// email, and returns the contact's id.
func invite(e *env, email, lang string) string {
	e.t.Helper()
	var c struct{ ID string }
	e.api("POST", "/api/v1/contacts", `{"email":"`+email+`","kind":"lead","language":"`+lang+`"}`, 201, &c)
	var res struct{ Invited int }
	e.api("POST", "/api/v1/double-opt-in", `{"contact_ids":["`+c.ID+`"]}`, 200, &res)
	if res.Invited != 1 {
		e.t.Fatalf("invite %s: %+v", email, res)
	}
	return c.ID
}

// TestDoubleOptInQuotesTheContactsLanguage: the double opt-in email quotes
// the consent text in the contact's language when the current version has
// it, and the text in the default language when not; the confirmation
// records the version and the language the email quoted. A new text
// starts a version without translations, which falls back.
func TestDoubleOptInQuotesTheContactsLanguage(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		var tr struct {
			Version      int
			Language     string
			Translations map[string]string
		}
		e.api("PUT", "/api/v1/purposes/E-marketing/texts/1/translations/sv", `{"text":"`+marketingSV+`"}`, 200, &tr)
		if tr.Version != 2 || tr.Language != "en" || tr.Translations["sv"] != marketingSV {
			t.Fatalf("translation: %+v", tr)
		}
		var p struct {
			TextVersion         int `json:"text_version"`
			Translations        map[string]string
			MissingTranslations []string `json:"missing_translations"`
		}
		e.api("GET", "/api/v1/purposes/E-marketing", "", 200, &p)
		if p.TextVersion != 2 || p.Translations["sv"] != marketingSV || len(p.MissingTranslations) != 1 || p.MissingTranslations[0] != "nl" {
			t.Fatalf("purpose: %+v", p)
		}

		anna := invite(e, "anna@example.com", "sv-SE") // a regional tag: Swedish all the same
		joost := invite(e, "joost@example.com", "nl")  // no Dutch translation
		msgs := e.smtp.Wait(t, 2)
		byTo := map[string]string{}
		links := map[string]string{}
		for _, m := range msgs {
			byTo[m.To[0]] = m.Text
			links[m.To[0]] = m.Links()[0]
		}
		if !strings.Contains(byTo["anna@example.com"], marketingSV) || strings.Contains(byTo["anna@example.com"], marketingEN) {
			t.Fatalf("the Swedish email does not quote the Swedish text:\n%s", byTo["anna@example.com"])
		}
		if !strings.Contains(byTo["joost@example.com"], marketingEN) {
			t.Fatalf("the Dutch email does not fall back to the English text:\n%s", byTo["joost@example.com"])
		}
		for _, to := range []string{"anna@example.com", "joost@example.com"} {
			if code, _ := e.page("POST", links[to], ""); code != 200 {
				t.Fatalf("confirming %s: %d", to, code)
			}
		}
		if r := lastRecord(e, anna); r.Purpose != "E-marketing" || r.State != "granted" || r.TextVersion != 2 || r.TextLanguage != "sv" {
			t.Fatalf("Swedish confirmation: %+v", r)
		}
		if r := lastRecord(e, joost); r.TextVersion != 2 || r.TextLanguage != "en" {
			t.Fatalf("Dutch confirmation, English text: %+v", r)
		}

		// A new text is a new version with no translations: Swedish
		// contacts are shown the new English text until it is translated.
		p.Translations, p.MissingTranslations = nil, nil
		e.api("PATCH", "/api/v1/purposes/E-marketing", `{"text":"Send me the newsletter."}`, 200, &p)
		if p.TextVersion != 3 || len(p.Translations) != 0 || len(p.MissingTranslations) != 2 {
			t.Fatalf("new version: %+v", p)
		}
		eva := invite(e, "eva@example.com", "sv")
		m := e.smtp.Wait(t, 3)[2]
		if m.To[0] != "eva@example.com" || !strings.Contains(m.Text, "Send me the newsletter.") || strings.Contains(m.Text, marketingSV) {
			t.Fatalf("a version without translations: %s", m.Text)
		}
		e.page("POST", m.Links()[0], "")
		if r := lastRecord(e, eva); r.TextVersion != 3 || r.TextLanguage != "en" {
			t.Fatalf("fallback confirmation: %+v", r)
		}
		e.ledgerVerifies()
	})
}

// TestWebformShowsTheTextInItsLanguage: a form shows each box's text in
// the form's language, and the consent record names that language; a
// language the text has no translation into shows, and records, the
// text's own.
func TestWebformShowsTheTextInItsLanguage(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		e.api("POST", "/api/v1/purposes", `{"name":"Share with partners","legal_basis":"consent","text":"Share my details with partners"}`, 201, nil)
		e.api("PUT", "/api/v1/purposes/Share%20with%20partners/texts/1/translations/nl", `{"text":"Deel mijn gegevens met partners"}`, 200, nil)
		var form struct{ ID string }
		e.api("POST", "/api/v1/webforms", `{"name":"aanmelden","title":"Aanmelden","language":"nl","fields":[{"name":"email"}],
			"consents":[{"purpose":"Share with partners"}],"privacy_policy_url":"https://acme.example/privacy"}`, 201, &form)

		code, body := e.page("GET", e.srv.URL+"/f/"+form.ID, "")
		if code != 200 || !strings.Contains(body, "Deel mijn gegevens met partners") || strings.Contains(body, "Share my details") ||
			!strings.Contains(body, `name="consents[0].version" value="2"`) {
			t.Fatalf("the Dutch form: %d %s", code, body)
		}
		if a := postForm(e, form.ID, url.Values{"email": {"daan@example.com"}, "consents[0].checked": {"yes"}, "consents[0].version": {"2"}}); a.status != 200 {
			t.Fatalf("post: %d %s", a.status, a.body)
		}
		if r := lastRecord(e, idByEmail(t, db, "daan@example.com")); r.Purpose != "Share with partners" || r.TextVersion != 2 || r.TextLanguage != "nl" {
			t.Fatalf("Dutch form record: %+v", r)
		}

		// The same form in Swedish, which the text lacks: the English text.
		_, body = e.page("GET", e.srv.URL+"/f/"+form.ID+"?lang=sv", "")
		if !strings.Contains(body, "Share my details with partners") {
			t.Fatalf("the Swedish form does not fall back: %s", body)
		}
		req := url.Values{"email": {"sven@example.com"}, "consents[0].checked": {"yes"}, "consents[0].version": {"2"}}
		if a := postForm(e, form.ID+"?lang=sv", req); a.status != 200 {
			t.Fatalf("post: %d %s", a.status, a.body)
		}
		if r := lastRecord(e, idByEmail(t, db, "sven@example.com")); r.TextVersion != 2 || r.TextLanguage != "en" {
			t.Fatalf("fallback record: %+v", r)
		}
	})
}

// idByEmail returns the id of the contact with the address.
func idByEmail(t testing.TB, db *store.DB, email string) string {
	t.Helper()
	var id string
	if err := db.Read.QueryRowContext(context.Background(), `SELECT id FROM contacts WHERE email = $1`, email).Scan(&id); err != nil {
		t.Fatalf("contact %s: %v", email, err)
	}
	return id
}

// TestPreferencesPageShowsTheTextInItsLanguage: the preferences page of a
// Swedish contact shows the Swedish consent text, and the change it asks
// for records Swedish as the language shown.
func TestPreferencesPageShowsTheTextInItsLanguage(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		id, link := pageSetUp(e)
		e.api("PATCH", "/api/v1/contacts/"+id, `{"language":"sv"}`, 200, nil)
		e.api("PUT", "/api/v1/purposes/Card%20on%20file/texts/1/translations/sv", `{"text":"Spara mitt kortnummer"}`, 200, nil)
		card := purposeID(e, "Card on file")
		v := e.visitor()
		code, body := v.get(link)
		if code != 200 || !strings.Contains(body, "Spara mitt kortnummer") || strings.Contains(body, "Keep my card number") {
			t.Fatalf("the Swedish page: %d %s", code, body)
		}
		newsletter := listID(e, "Newsletter")
		code, body = v.post(e.srv.URL+"/p", url.Values{"action": {"save"}, "shown": {newsletter}, "list": {newsletter},
			"consent." + card: {"withdrawn"}, "v." + card: {"2"}})
		if code != 200 {
			t.Fatalf("saving: %d %s", code, body)
		}
		confirm := e.srv.URL + confirmLinkRE.FindString(e.smtp.Wait(t, 1)[0].Text)
		if code, _ := e.page("POST", confirm, ""); code != 200 {
			t.Fatalf("confirming: %d", code)
		}
		if r := lastRecord(e, id); r.Purpose != "Card on file" || r.State != "withdrawn" || r.TextVersion != 2 || r.TextLanguage != "sv" {
			t.Fatalf("record: %+v", r)
		}

		// In Dutch, which the text lacks, the page shows the English text.
		_, body = v.get(e.srv.URL + "/p?lang=nl")
		if !strings.Contains(body, "Keep my card number") {
			t.Fatalf("the Dutch page does not fall back: %s", body)
		}
	})
}

// TestTranslationInputErrors: each bad request names its field and
// changes nothing.
func TestTranslationInputErrors(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		var errBody struct {
			Error struct{ Code, Field string }
		}
		check := func(path, body string, status int, field string) {
			t.Helper()
			errBody.Error.Field = ""
			e.api("PUT", "/api/v1/purposes/E-marketing/texts/"+path, body, status, &errBody)
			if errBody.Error.Field != field {
				t.Fatalf("%s %s: field %q, want %q", path, body, errBody.Error.Field, field)
			}
		}
		check("1/translations/de", `{"text":"Ja"}`, 400, "language")
		check("1/translations/sv", `{"text":"  "}`, 400, "text")
		check("1/translations/sv", `{}`, 400, "text")
		check("1/translations/en", `{"text":"Yes"}`, 400, "language") // the text's own language
		check("9/translations/sv", `{"text":"Ja"}`, 422, "version")
		check("x/translations/sv", `{"text":"Ja"}`, 400, "version")
		e.api("PUT", "/api/v1/purposes/No%20such/texts/1/translations/sv", `{"text":"Ja"}`, 404, nil)
		var texts []struct{ Version int }
		e.api("GET", "/api/v1/purposes/E-marketing/texts", "", 200, &texts)
		if len(texts) != 1 {
			t.Fatalf("a refused translation made a version: %+v", texts)
		}
		// Translating an older version than the current one is a conflict.
		e.api("PUT", "/api/v1/purposes/E-marketing/texts/1/translations/sv", `{"text":"Ja"}`, 200, nil)
		check("1/translations/nl", `{"text":"Ja"}`, 409, "version")
		// The same translation again changes nothing.
		var same struct{ Version int }
		e.api("PUT", "/api/v1/purposes/E-marketing/texts/2/translations/sv", `{"text":"Ja"}`, 200, &same)
		if same.Version != 2 {
			t.Fatalf("the same translation made version %d", same.Version)
		}
		// The default language: one of the supported ones.
		e.api("PATCH", "/api/v1/settings", `{"default_language":"de"}`, 400, &errBody)
		if errBody.Error.Field != "default_language" {
			t.Fatalf("default_language: %+v", errBody)
		}
		// A text written after the default language changed is in it.
		e.api("PATCH", "/api/v1/settings", `{"default_language":"sv"}`, 200, nil)
		var p struct {
			TextVersion  int    `json:"text_version"`
			TextLanguage string `json:"text_language"`
		}
		e.api("PATCH", "/api/v1/purposes/E-marketing", `{"text":"Ja tack, skicka nyhetsbrev."}`, 200, &p)
		if p.TextVersion != 3 || p.TextLanguage != "sv" {
			t.Fatalf("a text in the new default language: %+v", p)
		}
	})
}

// TestHeldPostEmailQuotesTheContactsLanguage: a post about a known Swedish
// contact from an English form is confirmed by an email in Swedish, which
// quotes the Swedish text of the version the form showed; confirming
// records that the marketing consent was to the Swedish text, and the
// other box to the English text the form showed.
func TestHeldPostEmailQuotesTheContactsLanguage(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		form := signupForm(e, "")
		e.api("PUT", "/api/v1/purposes/E-marketing/texts/1/translations/sv", `{"text":"`+marketingSV+`"}`, 200, nil)
		var kim struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"kim@example.com","first_name":"Kim","language":"sv"}`, 201, &kim)
		post := everything("kim@example.com", "Kim")
		post.Set("marketing.version", "2")
		if a := postForm(e, form, post); a.status != 200 {
			t.Fatalf("post: %d %s", a.status, a.body)
		}
		msg := e.smtp.Wait(t, 1)[0]
		if !strings.Contains(msg.Text, marketingSV) || strings.Contains(msg.Text, marketingEN) {
			t.Fatalf("the Swedish email does not quote the Swedish text:\n%s", msg.Text)
		}
		if code, _ := e.page("POST", e.srv.URL+webformConfirmRE.FindString(msg.Text), ""); code != 200 {
			t.Fatalf("confirming: %d", code)
		}
		var consents struct{ History []consentRecord }
		e.api("GET", "/api/v1/contacts/"+kim.ID+"/consents", "", 200, &consents)
		got := map[string]consentRecord{}
		for _, r := range consents.History {
			got[r.Purpose] = r
		}
		if r := got["E-marketing"]; r.TextVersion != 2 || r.TextLanguage != "sv" {
			t.Fatalf("marketing record: %+v", r)
		}
		if r := got["Share with partners"]; r.TextVersion != 1 || r.TextLanguage != "en" {
			t.Fatalf("consent box record: %+v", r)
		}
	})
}
