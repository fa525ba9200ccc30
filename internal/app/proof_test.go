package app_test

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// apiRecord is a consent record as the API shows it.
type apiRecord struct {
	ID, Purpose, State string
	LedgerSeq          int64 `json:"ledger_seq"`
	Evidence           struct {
		Method  string
		TokenID string `json:"confirmation_token_id"`
	}
}

// historyOf returns the contact's consent records through the API, oldest
// first.
func historyOf(e *env, contactID string) []apiRecord {
	var out struct{ History []apiRecord }
	e.api("GET", "/api/v1/contacts/"+contactID+"/consents", "", 200, &out)
	return out.History
}

// ddOf returns the text of the element with id on a page, up to its
// closing tag.
func ddOf(t testing.TB, body, id string) string {
	t.Helper()
	_, rest, ok := strings.Cut(body, `id="`+id+`"`)
	if !ok {
		t.Fatalf("no #%s on the page: %s", id, body)
	}
	_, rest, _ = strings.Cut(rest, ">")
	v, _, _ := strings.Cut(rest, "</")
	return v
}

// wantFacts checks that each element id on a proof page holds its text.
func wantFacts(t testing.TB, body string, facts map[string]string) {
	t.Helper()
	for id, want := range facts {
		if got := ddOf(t, body, id); !strings.Contains(got, want) {
			t.Errorf("#%s = %q, want it to hold %q", id, got, want)
		}
	}
}

// TestConsentProofView: each consent record opens a proof page that says
// who, when and how, which token and email confirmed it, the text shown,
// the webform, and the ledger position and whether it verifies, for a
// record made by a user, by an API token, by the contact through a double
// opt-in email and by the contact through a webform; a record that is not
// the contact's is a 404 page.
func TestConsentProofView(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		marketing := purposeID(e, "E-marketing")

		// By a user, on the contact page.
		var lisa struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"lisa@example.com","kind":"lead"}`, 201, &lisa)
		contactPage := e.srv.URL + "/admin/contacts/" + lisa.ID
		if code, body := admin.post(contactPage+"/consents", url.Values{"purpose": {marketing}, "state": {"granted"}, "source": {"Phone"}}); code != 200 {
			t.Fatalf("record consent: %d %s", code, body)
		}
		// By an API token.
		e.api("POST", "/api/v1/contacts/"+lisa.ID+"/consents", `{"purpose":"Sales and service","state":"granted","source":"API"}`, 201, nil)
		h := historyOf(e, lisa.ID)
		if len(h) != 2 {
			t.Fatalf("history: %+v", h)
		}
		_, body := admin.get(contactPage)
		for _, r := range h {
			if !strings.Contains(body, `href="/admin/contacts/`+lisa.ID+`/consents/`+r.ID+`"`) {
				t.Fatalf("the contact page does not link record %s to its proof: %s", r.ID, body)
			}
		}
		// The Consents block and the history say the same of a record.
		for i, purpose := range []string{"E-marketing", "Sales and service"} {
			row := consentRowOf(t, body, purpose)
			_, hist, _ := strings.Cut(body, `<tr id="record-`+h[i].ID+`">`)
			hist, _, _ = strings.Cut(hist, "</tr>")
			for _, fact := range []string{`/consents/` + h[i].ID + `"`, []string{"Ada Admin", "API client “test”"}[i],
				[]string{"entered by user", "api"}[i], "/texts/1\">v1</a>"} {
				if !strings.Contains(row, fact) || !strings.Contains(hist, fact) {
					t.Fatalf("%q is not in both the Consents row and the history row of %s:\n%s\n%s", fact, purpose, row, hist)
				}
			}
		}
		if !strings.Contains(body, `<a href="/admin/purposes/`+marketing+`/texts/1">v1</a>`) {
			t.Fatalf("v1 links nowhere: %s", body)
		}
		code, body := admin.get(contactPage + "/consents/" + h[0].ID)
		if code != 200 {
			t.Fatalf("proof: %d %s", code, body)
		}
		wantFacts(t, body, map[string]string{"proof-who": "Ada Admin", "proof-method": "entered by user", "proof-source": "Phone",
			"proof-ip": "127.0.0.1", "proof-not-email": "Not by email", "proof-webform": "not given on a webform",
			"proof-seq": "#" + strconv.FormatInt(h[0].LedgerSeq, 10), "proof-verified": "Verifies", "proof-state": "granted"})
		if !strings.Contains(body, "I would like to receive newsletters and offers by email") || !strings.Contains(body, `href="/admin/purposes/`+marketing+`/texts/1"`) {
			t.Fatalf("the proof lacks the consent text or its link: %s", body)
		}
		var hash string
		if err := db.Read.QueryRow(`SELECT hash FROM ledger_events WHERE seq = $1`, h[0].LedgerSeq).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		wantFacts(t, body, map[string]string{"proof-hash": hash})
		_, body = admin.get(contactPage + "/consents/" + h[1].ID)
		wantFacts(t, body, map[string]string{"proof-who": "API client “test”", "proof-method": "api", "proof-not-email": "Not by email",
			"proof-verified": "Verifies"})

		// The text version the record links to.
		code, body = admin.get(e.srv.URL + "/admin/purposes/" + marketing + "/texts/1")
		if code != 200 || !strings.Contains(body, "I would like to receive newsletters") || !strings.Contains(body, "A version never changes") {
			t.Fatalf("text version page: %d %s", code, body)
		}
		if code, body := admin.get(e.srv.URL + "/admin/purposes/" + marketing + "/texts/9"); code != 404 || !strings.Contains(body, "Consent text not found") {
			t.Fatalf("a missing version answered %d %s", code, body)
		}

		// By the contact, through a double opt-in email.
		var noor struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"noor@example.com","kind":"lead"}`, 201, &noor)
		e.api("POST", "/api/v1/double-opt-in", `{"contact_ids":["`+noor.ID+`"]}`, 200, nil)
		msg := e.smtp.Wait(t, 1)[0]
		if code, body := e.page("POST", msg.Links()[0], "en"); code != 200 {
			t.Fatalf("confirming: %d %s", code, body)
		}
		// The worker marks the email sent just after the server took it.
		waitFor(t, func() bool {
			return count(t, db, `SELECT count(*) FROM outbox WHERE contact_id = $1 AND status = 'sent'`, noor.ID) == 1
		})
		h = historyOf(e, noor.ID)
		if len(h) != 1 || h[0].Evidence.TokenID == "" {
			t.Fatalf("history after double opt-in: %+v", h)
		}
		_, body = admin.get(e.srv.URL + "/admin/contacts/" + noor.ID + "/consents/" + h[0].ID)
		wantFacts(t, body, map[string]string{"proof-who": "the contact", "proof-method": "double opt in link",
			"proof-token": h[0].Evidence.TokenID, "proof-email-subject": msg.Subject, "proof-ua": "Mozilla/5.0 (test)",
			"proof-source": "Double opt-in email", "proof-verified": "Verifies"})
		if sent := ddOf(t, body, "proof-email-sent"); !strings.HasPrefix(sent, "20") {
			t.Errorf("the email's sent time: %q", sent)
		}

		// Erased: the evidence says so, and the ledger still verifies.
		e.api("POST", "/api/v1/contacts/"+noor.ID+"/erase", "", 200, nil)
		_, body = admin.get(e.srv.URL + "/admin/contacts/" + noor.ID + "/consents/" + h[0].ID)
		wantFacts(t, body, map[string]string{"proof-ip": "erased", "proof-ua": "erased", "proof-not-email": "Erased",
			"proof-method": "double opt in link", "proof-verified": "Verifies"})
		if !strings.Contains(body, "its personal evidence was erased after it") {
			t.Fatalf("an erased record does not verify: %s", body)
		}

		// By the contact, through a webform post confirmed by email, and
		// through one that made a new contact.
		form := signupForm(e, "")
		var kim struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"kim@example.com","first_name":"Kim"}`, 201, &kim)
		if a := postForm(e, form, everything("kim@example.com", "Kim")); a.status != 200 {
			t.Fatalf("post: %d %s", a.status, a.body)
		}
		confirm := e.smtp.Wait(t, 2)[1]
		if code, page := e.page("POST", e.srv.URL+webformConfirmRE.FindString(confirm.Text), ""); code != 200 {
			t.Fatalf("confirming the post: %d %s", code, page)
		}
		h = historyOf(e, kim.ID)
		if len(h) != 2 {
			t.Fatalf("kim's history: %+v", h)
		}
		_, body = admin.get(e.srv.URL + "/admin/contacts/" + kim.ID + "/consents/" + h[0].ID)
		wantFacts(t, body, map[string]string{"proof-who": "the contact", "proof-method": "webform confirmed", "proof-webform": "“signup”",
			"proof-token": h[0].Evidence.TokenID, "proof-email-subject": confirm.Subject, "proof-source": "Web form", "proof-verified": "Verifies"})
		if a := postForm(e, form, everything("ola@example.com", "Ola")); a.status != 200 {
			t.Fatalf("post: %d %s", a.status, a.body)
		}
		var ola struct{ ID string }
		if err := db.Read.QueryRow(`SELECT id FROM contacts WHERE email = 'ola@example.com'`).Scan(&ola.ID); err != nil {
			t.Fatal(err)
		}
		h = historyOf(e, ola.ID)
		_, body = admin.get(e.srv.URL + "/admin/contacts/" + ola.ID + "/consents/" + h[0].ID)
		wantFacts(t, body, map[string]string{"proof-who": "the contact", "proof-method": "webform", "proof-webform": "not recorded",
			"proof-ua": "Mozilla/5.0 (someone)", "proof-not-email": "Not by email", "proof-verified": "Verifies"})

		// Tokens are purged some time after use: the record keeps the id,
		// the email and webform can no longer be named, and the ledger
		// still verifies.
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			_, err := tx.Exec(`DELETE FROM tokens WHERE contact_id = $1`, kim.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		_, body = admin.get(e.srv.URL + "/admin/contacts/" + kim.ID + "/consents/" + historyOf(e, kim.ID)[0].ID)
		wantFacts(t, body, map[string]string{"proof-token": historyOf(e, kim.ID)[0].Evidence.TokenID,
			"proof-email-gone": "no longer kept", "proof-webform": "no longer known", "proof-verified": "Verifies"})

		// Not the contact's record: unknown, or another contact's.
		for _, path := range []string{contactPage + "/consents/no-such-record", contactPage + "/consents/" + h[0].ID} {
			if code, body := admin.get(path); code != 404 || !strings.Contains(body, "Consent record not found") || !strings.Contains(body, "This contact has no such consent record") {
				t.Fatalf("%s answered %d %s", path, code, body)
			}
		}

		// Evidence changed behind the ledger's back shows on the proof.
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			_, err := tx.Exec(`UPDATE consent_records SET ip = '10.9.9.9' WHERE id = $1`, h[0].ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		_, body = admin.get(e.srv.URL + "/admin/contacts/" + ola.ID + "/consents/" + h[0].ID)
		if v := ddOf(t, body, "proof-verified"); !strings.Contains(body, "Does not verify") || !strings.Contains(body, "was changed") {
			t.Fatalf("a changed record still verifies: %s", v)
		}
	})
}

// TestProofOfAnImportedConsent: the proof of a consent an import brought in
// shows when the file says it was collected and the import's id, and, for
// a notice described instead of a text version, the notice, without
// claiming a text is missing.
func TestProofOfAnImportedConsent(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		const notice = "paper form at the fair, box ticked"
		imp := ranImportWith(t, e, importFile, notice)
		var id string
		if err := db.Read.QueryRow(`SELECT id FROM contacts WHERE email = 'anna@example.com'`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		h := historyOf(e, id)
		if len(h) != 1 {
			t.Fatalf("history: %+v", h)
		}
		code, body := admin.get(e.srv.URL + "/admin/contacts/" + id + "/consents/" + h[0].ID)
		if code != 200 {
			t.Fatalf("proof: %d %s", code, body)
		}
		wantFacts(t, body, map[string]string{"proof-method": "import", "proof-collected": "2026-11-01", "proof-import": imp.ID,
			"proof-notice": notice})
		if strings.Contains(body, "is missing") || strings.Contains(body, "Version 0") {
			t.Fatalf("the proof of a notice says a text is missing: %s", body)
		}
	})
}

// TestProofNeedsSignIn: the proof and text pages are for users who may
// view contacts (every role may, an agent included); anyone signed out is
// sent to sign in.
func TestProofNeedsSignIn(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"mia@example.com","kind":"lead"}`, 201, &c)
		e.api("POST", "/api/v1/contacts/"+c.ID+"/consents", `{"purpose":"E-marketing","state":"granted","source":"API"}`, 201, nil)
		proof := e.srv.URL + "/admin/contacts/" + c.ID + "/consents/" + historyOf(e, c.ID)[0].ID
		text := e.srv.URL + "/admin/purposes/" + purposeID(e, "E-marketing") + "/texts/1"
		agent := e.signIn(admin, "agent@acme.example", "agent")
		for _, u := range []string{proof, text} {
			if code, body := agent.get(u); code != 200 {
				t.Fatalf("an agent opening %s: %d %s", u, code, body)
			}
			v := e.visitor()
			if v.get(u); v.last.Request.URL.Path != "/admin/login" {
				t.Fatalf("a signed-out visitor reached %s", v.last.Request.URL)
			}
		}
	})
}
