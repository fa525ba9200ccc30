package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestErasedAddressStaysSuppressedOnPatch: once a contact is erased, its
// address cannot come back by changing another contact's address to it,
// in any case: PATCH is refused as POST is (422 address_erased on email),
// and the other contact keeps its address and fields.
func TestErasedAddressStaysSuppressedOnPatch(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		gone := decodeAs[contact.Contact](t, e.do(t, "POST", "/api/v1/contacts", `{"email":"erin@example.com","first_name":"Erin"}`, "").body).ID
		if r := e.do(t, "POST", "/api/v1/contacts/"+gone+"/erase", ``, e.vars["admin"]); r.status != http.StatusOK {
			t.Fatalf("erase: %d %s", r.status, r.body)
		}
		r := e.do(t, "POST", "/api/v1/contacts", `{"email":"erin@example.com"}`, "")
		if r.status != http.StatusUnprocessableEntity {
			t.Fatalf("create with the erased address: %d %s", r.status, r.body)
		}
		checkError(t, r, "address_erased", "email")
		other := decodeAs[contact.Contact](t, e.do(t, "POST", "/api/v1/contacts", `{"email":"otto@example.com","first_name":"Otto"}`, "").body).ID
		for _, addr := range []string{"erin@example.com", "ERIN@Example.com"} {
			r := e.do(t, "PATCH", "/api/v1/contacts/"+other, `{"email":"`+addr+`","first_name":"Changed"}`, "")
			if r.status != http.StatusUnprocessableEntity {
				t.Fatalf("PATCH to %s: %d %s", addr, r.status, r.body)
			}
			checkError(t, r, "address_erased", "email")
		}
		c := decodeAs[contact.Contact](t, e.get(t, "/api/v1/contacts/"+other))
		if c.Email != "otto@example.com" || c.FirstName != "Otto" || c.PreviouslyErasedAt != nil {
			t.Fatalf("the refused PATCH changed the contact: %+v", c)
		}
		if body := e.get(t, "/api/v1/contacts?email=erin@example.com"); strings.Contains(string(body), `"id"`) {
			t.Fatalf("a contact has the erased address: %s", body)
		}
	})
}

// TestLockedContactsCannotBeSubscribed: a contact whose data was erased,
// or who asked to stop processing, cannot be subscribed to a list (423
// contact_erased, processing_stopped, as PATCH answers), and nothing is
// written: no subscription, no list.subscribed event. A locked contact can
// still be unsubscribed. An erased contact gets no new preferences link.
func TestLockedContactsCannotBeSubscribed(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		if r := e.do(t, "POST", "/api/v1/lists", `{"name":"News"}`, ""); r.status != http.StatusCreated {
			t.Fatalf("create list: %d %s", r.status, r.body)
		}
		create := func(email string) string {
			t.Helper()
			r := e.do(t, "POST", "/api/v1/contacts", `{"email":"`+email+`"}`, "")
			if r.status != http.StatusCreated {
				t.Fatalf("create %s: %d %s", email, r.status, r.body)
			}
			return decodeAs[contact.Contact](t, r.body).ID
		}
		erased, stopped := create("eve@example.com"), create("stan@example.com")
		if r := e.do(t, "PUT", "/api/v1/contacts/"+stopped+"/lists/News", `{"state":"subscribed"}`, ""); r.status != http.StatusOK {
			t.Fatalf("subscribe before the lock: %d %s", r.status, r.body)
		}
		if r := e.do(t, "POST", "/api/v1/contacts/"+erased+"/erase", ``, e.vars["admin"]); r.status != http.StatusOK {
			t.Fatalf("erase: %d %s", r.status, r.body)
		}
		// The lock is set on the preferences page, confirmed by email;
		// here it is set directly.
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			return contactstate.StopProcessingTx(tx, stopped, time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		events := func(typ, id string) int {
			t.Helper()
			var n int
			if err := db.Read.QueryRow(`SELECT count(*) FROM events WHERE type = $1 AND contact_id = $2`, typ, id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		for id, code := range map[string]string{erased: "contact_erased", stopped: "processing_stopped"} {
			before := events("list.subscribed", id)
			r := e.do(t, "PATCH", "/api/v1/contacts/"+id, `{"first_name":"X"}`, "")
			if r.status != http.StatusLocked {
				t.Fatalf("PATCH: %d %s", r.status, r.body)
			}
			checkError(t, r, code, "")
			r = e.do(t, "PUT", "/api/v1/contacts/"+id+"/lists/News", `{"state":"subscribed"}`, "")
			if r.status != http.StatusLocked {
				t.Fatalf("subscribe a %s contact: %d %s", code, r.status, r.body)
			}
			checkError(t, r, code, "")
			if n := events("list.subscribed", id); n != before {
				t.Fatalf("%s: a refused subscribe wrote %d list.subscribed events", code, n-before)
			}
		}
		if body := e.get(t, "/api/v1/contacts/"+erased+"/lists"); strings.Contains(string(body), "News") {
			t.Fatalf("the erased contact's lists: %s", body)
		}
		r := e.do(t, "PUT", "/api/v1/contacts/"+stopped+"/lists/News", `{"state":"unsubscribed"}`, "")
		if r.status != http.StatusOK || events("list.unsubscribed", stopped) != 1 {
			t.Fatalf("unsubscribe the stopped contact: %d %s", r.status, r.body)
		}
		r = e.do(t, "POST", "/api/v1/contacts/"+erased+"/preferences-link", ``, "")
		if r.status != http.StatusLocked {
			t.Fatalf("preferences link of an erased contact: %d %s", r.status, r.body)
		}
		checkError(t, r, "contact_erased", "")
		if r := e.do(t, "POST", "/api/v1/contacts/"+stopped+"/preferences-link", ``, ""); r.status != http.StatusCreated {
			t.Fatalf("preferences link of a stopped contact (it may still say no there): %d %s", r.status, r.body)
		}
	})
}
