package app_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestContactPageOffersNoInvitationItWouldSkip: the record of a contact
// under a legal hold, and of one who withdrew their E-marketing consent,
// offers no "Send double opt-in email" button and says why in words; a
// user who sends one anyway (a stale page) is told in words that none
// went, and nothing is queued.
func TestContactPageOffersNoInvitationItWouldSkip(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		var held, withdrew, free struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"held@example.com"}`, 201, &held)
		e.api("POST", "/api/v1/contacts", `{"email":"withdrew@example.com"}`, 201, &withdrew)
		e.api("POST", "/api/v1/contacts", `{"email":"free@example.com"}`, 201, &free)
		e.api("POST", "/api/v1/contacts/"+held.ID+"/holds", `{"reason":"open invoice 42","legal_basis":"legal_obligation"}`, 201, nil)
		e.api("POST", "/api/v1/contacts/"+withdrew.ID+"/consents", `{"purpose":"E-marketing","state":"withdrawn","source":"Phone"}`, 201, nil)

		for _, c := range []struct{ id, why string }{
			{held.ID, "a legal hold is on the contact"},
			{withdrew.ID, "the contact withdrew their consent to marketing email"},
		} {
			code, body := admin.get(e.srv.URL + "/admin/contacts/" + c.id)
			if code != 200 || strings.Contains(body, "Send double opt-in email") ||
				!strings.Contains(body, "No double opt-in email can be sent: "+c.why+".") {
				t.Fatalf("the record of a contact who may not be invited (%s): %d %s", c.why, code, body)
			}
			code, body = admin.post(e.srv.URL+"/admin/contacts/"+c.id+"/double-opt-in", url.Values{})
			if code != 200 || !strings.Contains(body, "No email sent: "+c.why+".") {
				t.Fatalf("sending one anyway (%s): %d %s", c.why, code, body)
			}
		}
		if _, body := admin.get(e.srv.URL + "/admin/contacts/" + free.ID); !strings.Contains(body, "Send double opt-in email") {
			t.Fatalf("the record of a contact who may be invited: %s", body)
		}
		var n int
		if err := db.Read.QueryRow(`SELECT count(*) FROM optin_invitations WHERE contact_id IN ($1, $2)`, held.ID, withdrew.ID).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d invitations for contacts who may not be invited (%v)", n, err)
		}
	})
}
