package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/requests"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestEraseHoldAndSuppressThroughTheAPI: a hold refuses deletion and keeps
// part of an erasure; lifting it lets the erasure finish; the erased
// address comes back through the API only with a new explicit consent and
// says so; the ledger verifies throughout.
func TestEraseHoldAndSuppressThroughTheAPI(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"Gone.Soon@example.com","first_name":"Greta","consents":[{"purpose":"E-marketing",
			"state":"granted","source":"api","evidence":{"ip":"198.51.100.23","user_agent":"GretaBrowser"}}]}`, 201, &c)
		var req *requests.Request
		if err := db.Write(context.Background(), func(tx *store.Tx) (err error) {
			req, err = requests.CreateTx(tx, requests.New{Kind: requests.KindErasure, Channel: requests.ChannelAPI, ContactID: c.ID,
				Verified: true, Actor: consent.Actor{Kind: consent.ActorAPIToken}}, nil, time.Now())
			return err
		}); err != nil {
			t.Fatal(err)
		}

		var hold struct {
			ID     string
			Active bool
		}
		e.api("POST", "/api/v1/contacts/"+c.ID+"/holds", `{"reason":"open invoice 42","legal_basis":"bookkeeping"}`, 400, nil)
		e.api("POST", "/api/v1/contacts/"+c.ID+"/holds", `{"reason":"open invoice 42","legal_basis":"legal_obligation"}`, 201, &hold)
		var problem struct {
			Error struct{ Code, Message string }
		}
		e.api("DELETE", "/api/v1/contacts/"+c.ID, "", 422, &problem)
		if problem.Error.Code != "legal_hold" || !strings.Contains(problem.Error.Message, "open invoice 42") {
			t.Fatalf("delete under hold: %+v", problem)
		}
		var out struct {
			Status  string
			Message string
			Hold    struct{ ID string }
		}
		e.api("POST", "/api/v1/contacts/"+c.ID+"/erase", `{"request_id":"`+req.ID+`","note":"asked by phone"}`, 200, &out)
		if out.Status != "partly_erased" || out.Hold.ID != hold.ID {
			t.Fatalf("erase under hold: %+v", out)
		}
		r, err := requests.Get(context.Background(), db.Read, req.ID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != "partly_done" || !strings.Contains(r.Reason, "open invoice 42") {
			t.Fatalf("request under hold: %+v", r)
		}
		var lifted struct {
			Hold    struct{ Active bool }
			Erasure struct{ Status string }
		}
		e.api("POST", "/api/v1/contacts/"+c.ID+"/holds/"+hold.ID+"/lift", `{}`, 400, nil)
		e.api("POST", "/api/v1/contacts/"+c.ID+"/holds/"+hold.ID+"/lift", `{"reason":"invoice paid"}`, 200, &lifted)
		if lifted.Hold.Active || lifted.Erasure.Status != "erased" {
			t.Fatalf("lift: %+v", lifted)
		}
		var holds []struct{ Active bool }
		e.api("GET", "/api/v1/contacts/"+c.ID+"/holds", "", 200, &holds)
		if len(holds) != 1 || holds[0].Active {
			t.Fatalf("holds: %+v", holds)
		}
		var got struct {
			Email     string
			FirstName string `json:"first_name"`
			ErasedAt  string `json:"erased_at"`
		}
		e.api("GET", "/api/v1/contacts/"+c.ID, "", 200, &got)
		if got.Email != "erased-"+c.ID || got.FirstName != "" || got.ErasedAt == "" {
			t.Fatalf("after erasure: %+v", got)
		}
		e.api("POST", "/api/v1/contacts/"+c.ID+"/erase", "", 200, &out)
		if out.Status != "already_erased" {
			t.Fatalf("erasing again: %+v", out)
		}
		e.api("POST", "/api/v1/contacts/no-such/erase", "", 404, nil)
		e.ledgerVerifies()

		// The address comes back only with a new explicit consent.
		e.api("POST", "/api/v1/contacts", `{"email":"gone.soon@example.com"}`, 422, &problem)
		if problem.Error.Code != "address_erased" {
			t.Fatalf("re-creating an erased address: %+v", problem)
		}
		var back struct {
			ID                 string
			PreviouslyErasedAt string `json:"previously_erased_at"`
		}
		e.api("POST", "/api/v1/contacts", `{"email":"gone.soon@example.com","consents":[{"purpose":"E-marketing","state":"granted","source":"api"}]}`, 201, &back)
		if back.PreviouslyErasedAt == "" {
			t.Fatalf("re-created without previously_erased_at: %+v", back)
		}
		// Deleting leaves a suppression entry too.
		e.api("DELETE", "/api/v1/contacts/"+back.ID, "", 204, nil)
		e.api("POST", "/api/v1/contacts", `{"email":"gone.soon@example.com"}`, 422, nil)
		if n := count(t, db, `SELECT count(*) FROM erasure_log WHERE action = 'deleted'`); n != 1 {
			t.Fatalf("%d deletions logged", n)
		}
		e.ledgerVerifies()
	})
}

// TestWebformPostOfAnErasedAddress: the public form answers a post of an
// erased address exactly as any other; without a new explicit consent
// nothing is stored, with the marketing box checked the contact comes
// back, marked as erased before.
func TestWebformPostOfAnErasedAddress(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		form := signupForm(e, "")
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"erased@example.com"}`, 201, &c)
		e.api("POST", "/api/v1/contacts/"+c.ID+"/erase", "", 200, nil)
		contacts := count(t, db, `SELECT count(*) FROM contacts`)

		bare := url.Values{"email": {"erased@example.com"}, "first_name": {"Eve"}}
		want := postForm(e, form, url.Values{"email": {"never-seen@example.com"}, "first_name": {"Eve"}})
		got := postForm(e, form, bare)
		if got.status != want.status || got.body != want.body {
			t.Fatalf("the answer differs for an erased address: %d %s, want %d %s", got.status, got.body, want.status, want.body)
		}
		if n := count(t, db, `SELECT count(*) FROM contacts`); n != contacts+1 {
			t.Fatalf("%d contacts, want %d: the erased address was stored without a new consent", n, contacts+1)
		}
		postForm(e, form, everything("erased@example.com", "Eve"))
		var list struct {
			Items []struct {
				Email              string
				PreviouslyErasedAt string `json:"previously_erased_at"`
			}
		}
		e.api("GET", "/api/v1/contacts?email=erased@example.com", "", 200, &list)
		if len(list.Items) != 1 || list.Items[0].PreviouslyErasedAt == "" {
			t.Fatalf("after a post with consent: %+v", list)
		}
		e.ledgerVerifies()
	})
}

// TestErasureRefusals: what the erasure and hold routes refuse, and that a
// refusal writes nothing: a request of another contact, a note too long,
// an unknown contact or hold, a hold's bad dates; on the admin pages, a
// role without the Delete permission, and an erasure not confirmed.
func TestErasureRefusals(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		var a, b struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"a@example.com"}`, 201, &a)
		e.api("POST", "/api/v1/contacts", `{"email":"b@example.com"}`, 201, &b)
		var reqB *requests.Request
		if err := db.Write(context.Background(), func(tx *store.Tx) (err error) {
			reqB, err = requests.CreateTx(tx, requests.New{Kind: requests.KindErasure, Channel: requests.ChannelAPI, ContactID: b.ID,
				Actor: consent.Actor{Kind: consent.ActorAPIToken}}, nil, time.Now())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			path, body string
			status     int
			field      string
		}{
			{"/api/v1/contacts/" + a.ID + "/erase", `{"request_id":"` + reqB.ID + `"}`, 400, "request_id"},
			{"/api/v1/contacts/" + a.ID + "/erase", `{"note":"` + strings.Repeat("x", 501) + `"}`, 400, "note"},
			{"/api/v1/contacts/" + a.ID + "/erase", `{"reason":"x"}`, 400, "reason"},
			{"/api/v1/contacts/" + a.ID + "/holds", `{"reason":"audit","legal_basis":"contract","until":"2001-01-01T00:00:00Z"}`, 400, "until"},
			{"/api/v1/contacts/" + a.ID + "/holds", `{"reason":"  ","legal_basis":"contract"}`, 400, "reason"},
			{"/api/v1/contacts/" + a.ID + "/holds", `{"reason":"audit"}`, 400, "legal_basis"},
			{"/api/v1/contacts/no-such/holds", `{"reason":"audit","legal_basis":"contract"}`, 404, ""},
			{"/api/v1/contacts/" + a.ID + "/holds/no-such/lift", `{"reason":"done"}`, 404, ""},
		} {
			var problem struct{ Error struct{ Field string } }
			e.api("POST", c.path, c.body, c.status, &problem)
			if problem.Error.Field != c.field {
				t.Errorf("POST %s %s: field %q, want %q", c.path, c.body, problem.Error.Field, c.field)
			}
		}
		e.api("GET", "/api/v1/contacts/no-such/holds", "", 404, nil)
		if n := count(t, db, `SELECT count(*) FROM legal_holds`) + count(t, db, `SELECT count(*) FROM erasure_log`) +
			count(t, db, `SELECT count(*) FROM contacts WHERE erased_at IS NOT NULL`); n != 0 {
			t.Fatalf("a refused request wrote %d rows", n)
		}

		admin := e.firstAdmin()
		agent := e.signIn(admin, "agent@acme.example", auth.RoleAgent)
		page := e.srv.URL + "/admin/contacts/" + a.ID
		if code, body := agent.get(page + "/erasure"); code != 200 || strings.Contains(body, `id="erase"`) || strings.Contains(body, `id="set-hold"`) {
			t.Fatalf("an agent sees the erasure forms: %d", code)
		}
		for _, path := range []string{"/erase", "/holds"} {
			if code, _ := agent.post(page+path, url.Values{"confirm": {"yes"}, "reason": {"x"}, "legal_basis": {"contract"}}); code != 403 {
				t.Errorf("agent POST %s: %d", path, code)
			}
		}
		if code, body := admin.post(page+"/erase", url.Values{}); code != 400 || !strings.Contains(body, `id="confirm-error"`) {
			t.Fatalf("erase without confirming: %d", code)
		}
		if code, body := admin.post(page+"/holds", url.Values{"reason": {"audit"}, "legal_basis": {"contract"}, "until": {"soon"}}); code != 400 ||
			!strings.Contains(body, `id="until-error"`) || !strings.Contains(body, `value="audit"`) {
			t.Fatalf("a hold with a bad date: %d", code)
		}
		if n := count(t, db, `SELECT count(*) FROM legal_holds`) + count(t, db, `SELECT count(*) FROM erasure_log`); n != 0 {
			t.Fatalf("a refused form wrote %d rows", n)
		}
		// A good form redirects to the page, which says what happened.
		if code, body := admin.post(page+"/holds", url.Values{"reason": {"audit"}, "legal_basis": {"contract"}, "until": {"2099-12-31"}}); code != 200 ||
			admin.last.Request.URL.Query().Get("done") != "hold_set" || !strings.Contains(body, "Legal hold set.") {
			t.Fatalf("setting a hold: %d at %s", code, admin.last.Request.URL)
		}
	})
}

// TestEditToAnErasedAddressShowsTheErrorByTheAddress: the admin's edit
// form of a contact goes through the same check as the API: changing the
// address to one that was erased is refused, the error shows next to the
// address field, and nothing of the edit is written.
func TestEditToAnErasedAddressShowsTheErrorByTheAddress(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		var gone, other struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"erin@example.com","first_name":"Erin"}`, 201, &gone)
		e.api("POST", "/api/v1/contacts/"+gone.ID+"/erase", ``, 200, nil)
		e.api("POST", "/api/v1/contacts", `{"email":"otto@example.com","first_name":"Otto"}`, 201, &other)
		code, body := admin.post(e.srv.URL+"/admin/contacts/"+other.ID, url.Values{"email": {"Erin@Example.com"}, "first_name": {"Changed"}})
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, `id="email-error" role="alert"`) ||
			!strings.Contains(body, `aria-describedby="email-error"`) || !strings.Contains(body, "was erased on") {
			t.Fatalf("edit to an erased address: %d, no error next to the address: %s", code, body)
		}
		var c contact.Contact
		e.api("GET", "/api/v1/contacts/"+other.ID, "", 200, &c)
		if c.Email != "otto@example.com" || c.FirstName != "Otto" {
			t.Fatalf("the refused edit was written: %+v", c)
		}
	})
}
