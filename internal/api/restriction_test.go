package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestOperatorStopsProcessing: a restriction request received by phone is
// carried out through the API as the contact's own "Stop processing" is:
// the email opted out by the user, the consent given withdrawn, the record
// locked (an edit answers 423), and the request done. Asked again, it
// changes nothing more; an erased contact and an unknown one are refused.
func TestOperatorStopsProcessing(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		r := e.do(t, "POST", "/api/v1/contacts", `{"email":"lena@example.com","opt_in_status":"single_opt_in_user",
			"consents":[{"purpose":"E-marketing","state":"granted","source":"API"}]}`, "")
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		id := decodeAs[contact.Contact](t, r.body).ID
		r = e.do(t, "POST", "/api/v1/requests", `{"kind":"restriction","contact_id":"`+id+`"}`, "")
		if r.status != http.StatusCreated {
			t.Fatalf("request: %d %s", r.status, r.body)
		}
		req := decodeAs[requests.Request](t, r.body)

		r = e.do(t, "POST", "/api/v1/contacts/"+id+"/stop-processing", "", "")
		c := decodeAs[contact.Contact](t, r.body)
		if r.status != 200 || c.ProcessingStoppedAt == nil || c.OptInStatus != "opt_out_user" {
			t.Fatalf("stop processing: %d %s", r.status, r.body)
		}
		if body := string(e.get(t, "/api/v1/contacts/"+id+"/consents")); !strings.Contains(body, `"state":"withdrawn"`) {
			t.Fatalf("the consent after a stop: %s", body)
		}
		if got := decodeAs[requests.Request](t, e.get(t, "/api/v1/requests/"+req.ID)); got.Status != requests.StatusDone {
			t.Fatalf("the restriction request after the stop: %s", got.Status)
		}
		if r := e.do(t, "PATCH", "/api/v1/contacts/"+id, `{"first_name":"Lena"}`, ""); r.status != http.StatusLocked {
			t.Fatalf("an edit of a locked record: %d %s", r.status, r.body)
		}
		events := func() int {
			var n int
			if err := db.Read.QueryRow(`SELECT count(*) FROM events WHERE contact_id = $1`, id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := events()
		if r := e.do(t, "POST", "/api/v1/contacts/"+id+"/stop-processing", "", ""); r.status != 200 || events() != before {
			t.Fatalf("stopping again: %d, %d events more", r.status, events()-before)
		}

		r = e.do(t, "POST", "/api/v1/contacts", `{"email":"gone@example.com"}`, "")
		gone := decodeAs[contact.Contact](t, r.body).ID
		if r := e.do(t, "POST", "/api/v1/contacts/"+gone+"/erase", "", e.vars["admin"]); r.status != 200 {
			t.Fatalf("erase: %d %s", r.status, r.body)
		}
		if r := e.do(t, "POST", "/api/v1/contacts/"+gone+"/stop-processing", "", ""); r.status != http.StatusLocked {
			t.Fatalf("stopping an erased contact: %d %s", r.status, r.body)
		}
		if r := e.do(t, "POST", "/api/v1/contacts/no-such-contact/stop-processing", "", ""); r.status != http.StatusNotFound {
			t.Fatalf("stopping an unknown contact: %d %s", r.status, r.body)
		}
	})
}
