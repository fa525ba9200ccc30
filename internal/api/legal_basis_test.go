package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestConsentOnAnotherLegalBasisIsRefused: a consent record of a purpose
// rests on the purpose's own legal basis. Given another, recording it for
// a contact, or with a new contact, is a 400 naming legal_basis, and
// neither a consent record, nor a ledger event, nor a contact is written;
// the purpose's own basis is recorded.
func TestConsentOnAnotherLegalBasisIsRefused(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		r := e.do(t, "POST", "/api/v1/contacts", `{"email":"ada@example.com"}`, "")
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		var c contact.Contact
		if err := json.Unmarshal(r.body, &c); err != nil {
			t.Fatal(err)
		}
		counts := func() [3]int {
			return [3]int{e.count(t, `SELECT count(*) FROM consent_records`), e.count(t, `SELECT count(*) FROM ledger_events`),
				e.count(t, `SELECT count(*) FROM contacts`)}
		}
		for _, c := range []struct{ name, path, body, field string }{
			{"E-marketing, on consent, as a legitimate interest", "/api/v1/contacts/" + c.ID + "/consents",
				`{"purpose":"E-marketing","state":"granted","source":"API","legal_basis":"legitimate_interests"}`, "legal_basis"},
			{"Sales and service, on contract, as consent", "/api/v1/contacts/" + c.ID + "/consents",
				`{"purpose":"Sales and service","state":"withdrawn","source":"API","legal_basis":"consent"}`, "legal_basis"},
			{"with a new contact", "/api/v1/contacts",
				`{"email":"bea@example.com","consents":[{"purpose":"E-marketing","state":"granted","source":"API","legal_basis":"contract"}]}`,
				"consents[0].legal_basis"},
		} {
			before := counts()
			r := e.do(t, "POST", c.path, c.body, "")
			if r.status != http.StatusBadRequest {
				t.Fatalf("%s: status %d, want 400: %s", c.name, r.status, r.body)
			}
			checkError(t, r, "invalid", c.field)
			if after := counts(); after != before {
				t.Errorf("%s: consent records, ledger events and contacts went from %v to %v", c.name, before, after)
			}
		}
		before := counts()
		r = e.do(t, "POST", "/api/v1/contacts/"+c.ID+"/consents", `{"purpose":"E-marketing","state":"granted","source":"API","legal_basis":"consent"}`, "")
		if r.status != http.StatusCreated {
			t.Fatalf("the purpose's own basis: %d %s", r.status, r.body)
		}
		if after := counts(); after[0] != before[0]+1 || after[1] <= before[1] {
			t.Errorf("the purpose's own basis: consent records and ledger events went from %v to %v", before, after)
		}
	})
}

// TestInviteSkipsContactWhoWithdrewMarketing: the API's double opt-in
// request does not invite a contact who withdrew their E-marketing
// consent, and says so by reason, while it invites the others.
func TestInviteSkipsContactWhoWithdrewMarketing(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		ids := map[string]string{}
		for _, name := range []string{"ada", "bea"} {
			r := e.do(t, "POST", "/api/v1/contacts", `{"email":"`+name+`@example.com"}`, "")
			var c contact.Contact
			if r.status != http.StatusCreated || json.Unmarshal(r.body, &c) != nil {
				t.Fatalf("create: %d %s", r.status, r.body)
			}
			ids[name] = c.ID
		}
		if r := e.do(t, "POST", "/api/v1/contacts/"+ids["bea"]+"/consents", `{"purpose":"E-marketing","state":"withdrawn","source":"Phone"}`, ""); r.status != http.StatusCreated {
			t.Fatalf("withdraw: %d %s", r.status, r.body)
		}
		r := e.do(t, "POST", "/api/v1/double-opt-in", `{"contact_ids":["`+ids["ada"]+`","`+ids["bea"]+`"]}`, "")
		if r.status != http.StatusOK {
			t.Fatalf("invite: %d %s", r.status, r.body)
		}
		var res optin.Result
		if err := json.Unmarshal(r.body, &res); err != nil {
			t.Fatal(err)
		}
		if res.Invited != 1 || res.Skipped[optin.SkipMarketingWithdrawn] != 1 || len(res.Skipped) != 1 {
			t.Fatalf("invite: %s", r.body)
		}
		if n := e.count(t, `SELECT count(*) FROM optin_invitations WHERE contact_id = '`+ids["bea"]+`'`); n != 0 {
			t.Fatalf("%d invitations for the contact who withdrew", n)
		}
	})
}
