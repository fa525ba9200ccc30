package app_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
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
