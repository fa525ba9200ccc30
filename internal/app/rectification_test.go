package app_test

import (
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestContactSeesAndCorrectsTheirData (Art. 15 and 16 from the page): the
// page lists the personal data held, sensitive values masked; a
// correction is checked, emailed for confirmation and applied only when the
// link is posted, also on a locked record, and it is recorded as a
// rectification request that is done. A field the page does not offer, or
// a bad value, is refused naming it, and nothing is written.
func TestContactSeesAndCorrectsTheirData(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		id, link := pageSetUp(e)
		e.api("PATCH", "/api/v1/contacts/"+id, `{"first_name":"Lena","phone":"+46 70 111 22 33"}`, 200, nil)
		v := e.visitor()
		_, body := v.get(link)
		for _, want := range []string{"Your data", "lena@example.com", "70 111 22 33", `name="profile.first_name" value="Lena"`} {
			if !strings.Contains(body, want) {
				t.Fatalf("page lacks %q", want)
			}
		}
		if strings.Contains(body, "4111111111111111") {
			t.Fatal("the page shows a sensitive value in clear")
		}
		changes := `SELECT count(*) FROM preference_changes`
		for _, bad := range []url.Values{
			{"action": {"correct"}, "profile.email": {"other@example.com"}},
			{"action": {"correct"}, "profile.country": {"Sweden"}},
			{"action": {"correct"}, "profile.phone": {"call me"}},
		} {
			status, body := v.post(e.srv.URL+"/p", bad)
			if status != 400 || !strings.Contains(body, `role="alert"`) {
				t.Fatalf("%v: %d", bad, status)
			}
		}
		if n := count(t, db, changes); n != 0 {
			t.Fatalf("refused corrections wrote %d changes", n)
		}
		// Stopping processing does not take away the right to correct.
		v.post(e.srv.URL+"/p", url.Values{"action": {"stop"}})
		e.page("POST", e.srv.URL+confirmLinkRE.FindString(e.smtp.Wait(t, 1)[0].Text), "en")

		v.post(e.srv.URL+"/p", url.Values{"action": {"correct"}, "profile.first_name": {" Lena "}, "profile.last_name": {"Berg"},
			"profile.country": {"se"}, "profile.phone": {""}})
		msg := e.smtp.Wait(t, 2)[1]
		for _, want := range []string{"Last name: change to “Berg”", "Country (two-letter code): change to “SE”", "Phone: remove"} {
			if !strings.Contains(msg.Text, want) {
				t.Fatalf("confirmation email lacks %q: %s", want, msg.Text)
			}
		}
		if strings.Contains(msg.Text, "First name") {
			t.Fatal("an unchanged field is in the change")
		}
		var before struct {
			LastName string `json:"last_name"`
		}
		e.api("GET", "/api/v1/contacts/"+id, "", 200, &before)
		if before.LastName != "" {
			t.Fatal("the correction took effect before it was confirmed")
		}
		e.page("POST", e.srv.URL+confirmLinkRE.FindString(msg.Text), "en")
		var after struct {
			LastName string `json:"last_name"`
			Country  string `json:"country"`
			Phone    string `json:"phone"`
		}
		e.api("GET", "/api/v1/contacts/"+id, "", 200, &after)
		if after.LastName != "Berg" || after.Country != "SE" || after.Phone != "" {
			t.Fatalf("after confirming: %+v", after)
		}
		if n := count(t, db, `SELECT count(*) FROM subject_requests WHERE contact_id = $1 AND kind = 'rectification' AND status = 'done'
			AND channel = 'preferences_page' AND closed_at IS NOT NULL`, id); n != 1 {
			t.Fatalf("rectification requests done: %d", n)
		}
		e.ledgerVerifies()
	})
}

// TestRefusedCorrectionSaysWhyAndKeepsWhatWasTyped: a detail on "Correct
// my details" that cannot be stored is refused (400) with the reason next
// to its field, in the page's language, the field marked invalid and
// described by it; the form comes back as the contact typed it, escaped,
// every field of it; and nothing is written.
func TestRefusedCorrectionSaysWhyAndKeepsWhatWasTyped(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		_, link := pageSetUp(e)
		v := e.visitor()
		v.get(link)
		typed := func(field, value string) url.Values {
			f := url.Values{"action": {"correct"}, "profile.first_name": {"Lena"}, "profile.last_name": {"Berg"},
				"profile.phone": {"+46 70 111 22 33"}, "profile.country": {"SE"}, "profile.region": {"Skåne"}}
			f.Set("profile."+field, value)
			return f
		}
		for _, c := range []struct {
			lang, field, value, reason string
		}{
			{"en", "first_name", "Le\u202Ena <b>Berg</b>", "invisible"},
			{"en", "last_name", strings.Repeat("x", 500), "too_long"},
			{"sv", "phone", "abc\ndef", "phone"},
			{"sv", "first_name", "Lena\nBerg", "one_line"},
			{"nl", "country", "ZZZ", "country"},
		} {
			form := typed(c.field, c.value)
			status, body := v.post(e.srv.URL+"/p?lang="+c.lang, form)
			msg := regexp.MustCompile(`<p class="error" id="profile-` + c.field + `-e" role="alert">([^<]*)</p>`).FindStringSubmatch(body)
			if status != 400 || msg == nil {
				t.Fatalf("%s %q: %d, no error next to the field: %s", c.field, c.value, status, body)
			}
			if want := i18n.T(c.lang, "input.error."+c.reason); html.UnescapeString(msg[1]) != want {
				t.Errorf("%s %q in %s: the error reads %q, want %q", c.field, c.value, c.lang, html.UnescapeString(msg[1]), want)
			}
			for name, values := range form {
				field, ok := strings.CutPrefix(name, "profile.")
				if !ok {
					continue
				}
				input := regexp.MustCompile(`<input [^>]*id="profile-` + field + `"[^>]*>`).FindString(body)
				value := regexp.MustCompile(` value="([^"]*)"`).FindStringSubmatch(input)
				if value == nil || html.UnescapeString(value[1]) != values[0] {
					t.Errorf("%s %q: %s came back as %s, want %q", c.field, c.value, field, input, values[0])
				}
				if invalid := strings.Contains(input, `aria-invalid="true" aria-describedby="profile-`+field+`-e"`); invalid != (field == c.field) {
					t.Errorf("%s %q: %s marked invalid: %v: %s", c.field, c.value, field, invalid, input)
				}
			}
			if strings.Contains(body, "<b>Berg</b>") {
				t.Fatalf("what was typed is on the page unescaped")
			}
		}
		if n := count(t, db, `SELECT count(*) FROM preference_changes`); n != 0 {
			t.Fatalf("refused corrections wrote %d changes", n)
		}
	})
}
