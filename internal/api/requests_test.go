package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/api"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestRequestsRoundTrip records, reads, lists and moves on data subject
// requests through the API on both databases: a created request is due a
// month on, verified, with a ledger event and an email to the privacy
// address; bad input is refused naming the field and writes nothing (no
// request, no ledger event, no email); a status change appends a ledger
// event, an extension works once, and a closed request is final.
func TestRequestsRoundTrip(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		var id string
		requestCount := func(t testing.TB) int {
			return len(decodeAs[api.RequestPage](t, e.get(t, "/api/v1/requests?limit=500")).Items)
		}
		operatorMail := func(t testing.TB) int {
			var n int
			if err := db.Read.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE kind = $1`, mail.KindOperator).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		e.run(t, []scenario{
			{name: "privacy address", method: "PATCH", auth: "{{admin}}", url: "/api/v1/settings", body: `{"privacy_address":"privacy@acme.example"}`, status: 200},
			{name: "a contact", method: "POST", url: "/api/v1/contacts", body: `{"email":"anna@example.com"}`, status: 201,
				check: func(t testing.TB, body []byte) { e.vars["c1"] = decodeAs[contact.Contact](t, body).ID }},
		})
		sent := operatorMail(t)
		var bad []scenario
		for _, b := range []struct{ name, body, code, field string }{
			{"unknown kind", `{"kind":"everything","contact_id":"{{c1}}"}`, "invalid", "kind"},
			{"no kind", `{"contact_id":"{{c1}}"}`, "required", "kind"},
			{"nobody", `{"kind":"access"}`, "required", "contact_id"},
			{"unknown contact", `{"kind":"access","contact_id":"nope"}`, "contact_not_found", "contact_id"},
			{"bad address", `{"kind":"erasure","address":"Anna <anna@example.com>"}`, "invalid", "address"},
			{"a contact and an address", `{"kind":"access","contact_id":"{{c1}}","address":"x@example.org"}`, "invalid", "address"},
			{"unknown key", `{"kind":"access","contact_id":"{{c1}}","channel":"email"}`, "unknown_field", "channel"},
			{"duplicate key", `{"kind":"access","kind":"erasure","contact_id":"{{c1}}"}`, "duplicate_key", "kind"},
			{"note not text", `{"kind":"access","contact_id":"{{c1}}","note":"a\u0000b"}`, "invalid", "note"},
			{"note a number", `{"kind":"access","contact_id":"{{c1}}","note":5}`, "invalid", "note"},
		} {
			status := 400
			if b.code == "contact_not_found" {
				status = 422
			}
			sc := scenario{name: "refused: " + b.name, method: "POST", url: "/api/v1/requests", body: b.body, status: status,
				errCode: b.code, errField: b.field}
			if b.name == "a contact and an address" {
				sc.contains = []string{"give contact_id or address, not both"} // the message names the other field too
			}
			bad = append(bad, sc)
		}
		e.run(t, bad)
		if n := requestCount(t); n != 0 {
			t.Fatalf("refused requests left %d requests", n)
		}
		if n := operatorMail(t); n != sent {
			t.Fatalf("refused requests emailed the operator %d times", n-sent)
		}
		before := time.Now()
		e.run(t, []scenario{
			{name: "create", method: "POST", url: "/api/v1/requests", body: `{"kind":"access","contact_id":"{{c1}}","note":"by phone"}`,
				status: 201, events: 1, check: func(t testing.TB, body []byte) {
					r := decodeAs[requests.Request](t, body)
					id, e.vars["r1"] = r.ID, r.ID
					if r.Status != requests.StatusVerified || r.Channel != requests.ChannelAPI || r.Actor.ID != e.tokID || r.Overdue ||
						!r.DueAt.Equal(requests.DueDate(r.ReceivedAt)) || r.ReceivedAt.Before(before.Add(-time.Second)) || r.DaysLeft < 27 {
						t.Fatalf("created %s", body)
					}
				}},
			{name: "create by address", method: "POST", url: "/api/v1/requests", body: `{"kind":"erasure","address":"someone@example.org"}`,
				status: 201, events: 1, contains: []string{`"address":"someone@example.org"`}, absent: []string{`"contact_id"`},
				check: func(t testing.TB, body []byte) { e.vars["r2"] = decodeAs[requests.Request](t, body).ID }},
			{name: "get", method: "GET", url: "/api/v1/requests/{{r1}}", status: 200, contains: []string{`"kind":"access"`, `"note":"by phone"`}},
			{name: "get unknown", method: "GET", url: "/api/v1/requests/nope", status: 404, errCode: "request_not_found"},
			{name: "list by kind", method: "GET", url: "/api/v1/requests?kind=erasure", status: 200, check: func(t testing.TB, body []byte) {
				if p := decodeAs[api.RequestPage](t, body); len(p.Items) != 1 || p.Items[0].ID != e.vars["r2"] || p.NextOffset != 0 {
					t.Fatalf("erasure requests: %s", body)
				}
			}},
			{name: "list by contact", method: "GET", url: "/api/v1/requests?contact={{c1}}&open=true", status: 200, check: func(t testing.TB, body []byte) {
				if p := decodeAs[api.RequestPage](t, body); len(p.Items) != 1 || p.Items[0].ID != e.vars["r1"] {
					t.Fatalf("the contact's requests: %s", body)
				}
			}},
			{name: "list paged", method: "GET", url: "/api/v1/requests?limit=1", status: 200, contains: []string{`"next_offset":1`}},
			{name: "list bad kind", method: "GET", url: "/api/v1/requests?kind=all", status: 400, errCode: "invalid", errField: "kind"},
			{name: "list bad status", method: "GET", url: "/api/v1/requests?status=open", status: 400, errCode: "invalid", errField: "status"},
			{name: "list bad open", method: "GET", url: "/api/v1/requests?open=yes", status: 400, errCode: "invalid", errField: "open"},
			{name: "list bad offset", method: "GET", url: "/api/v1/requests?offset=-1", status: 400, errCode: "invalid", errField: "offset"},
			{name: "list bad limit", method: "GET", url: "/api/v1/requests?limit=501", status: 400, errCode: "invalid", errField: "limit"},

			{name: "refuse without reason", method: "PATCH", url: "/api/v1/requests/{{r1}}", body: `{"status":"refused"}`, status: 400,
				errCode: "required", errField: "reason"},
			{name: "unknown status", method: "PATCH", url: "/api/v1/requests/{{r1}}", body: `{"status":"lost"}`, status: 400,
				errCode: "invalid", errField: "status"},
			{name: "back to received", method: "PATCH", url: "/api/v1/requests/{{r1}}", body: `{"status":"received"}`, status: 400,
				errCode: "invalid", errField: "status"},
			{name: "extend by three", method: "PATCH", url: "/api/v1/requests/{{r1}}", body: `{"extend":{"months":3,"reason":"many"}}`,
				status: 400, errCode: "invalid", errField: "extend.months"},
			{name: "extend without reason", method: "PATCH", url: "/api/v1/requests/{{r1}}", body: `{"extend":{"months":1}}`,
				status: 400, errCode: "required", errField: "extend.reason"},
			{name: "extend unknown key", method: "PATCH", url: "/api/v1/requests/{{r1}}", body: `{"extend":{"months":1,"reason":"x","weeks":2}}`,
				status: 400, errCode: "unknown_field", errField: "extend.weeks"},
			{name: "link to unknown contact", method: "PATCH", url: "/api/v1/requests/{{r2}}", body: `{"contact_id":"nope"}`,
				status: 422, errCode: "contact_not_found", errField: "contact_id"},
			{name: "patch unknown", method: "PATCH", url: "/api/v1/requests/nope", body: `{"note":"x"}`, status: 404, errCode: "request_not_found"},

			{name: "in progress", method: "PATCH", url: "/api/v1/requests/{{r1}}", body: `{"status":"in_progress","note":"gathering"}`,
				status: 200, events: 1, contains: []string{`"status":"in_progress"`, `"note":"gathering"`}},
			{name: "note only", method: "PATCH", url: "/api/v1/requests/{{r1}}", body: `{"note":"still gathering"}`, status: 200, events: 0},
			{name: "extend", method: "PATCH", url: "/api/v1/requests/{{r1}}", body: `{"extend":{"months":2,"reason":"many systems to search"}}`,
				status: 200, events: 0, check: func(t testing.TB, body []byte) {
					r := decodeAs[requests.Request](t, body)
					if r.ExtendedAt == nil || r.ExtensionReason != "many systems to search" || r.DueAt.Sub(requests.DueDate(r.ReceivedAt)) < 59*24*time.Hour {
						t.Fatalf("extended: %s", body)
					}
				}},
			{name: "extend again", method: "PATCH", url: "/api/v1/requests/{{r1}}", body: `{"extend":{"months":1,"reason":"more"}}`,
				status: 409, errCode: "already_extended", errField: "extend"},
			{name: "partly done", method: "PATCH", url: "/api/v1/requests/{{r1}}", body: `{"status":"partly_done","reason":"the invoices are kept for bookkeeping"}`,
				status: 200, events: 1, contains: []string{`"closed_at"`, `"days_left":0`}},
			{name: "closed is final", method: "PATCH", url: "/api/v1/requests/{{r1}}", body: `{"status":"done"}`, status: 409,
				errCode: "request_closed", errField: "status"},
			{name: "link by address", method: "PATCH", url: "/api/v1/requests/{{r2}}", body: `{"contact_id":"{{c1}}","status":"done"}`,
				status: 200, events: 1, contains: []string{`"contact_id":"{{c1}}"`, `"status":"done"`}, absent: []string{"someone@example.org"}},
			{name: "closed last", method: "GET", url: "/api/v1/requests?open=true", status: 200, contains: []string{`"items":[]`}},
		})
		if n := operatorMail(t); n != sent+2 {
			t.Fatalf("the operator got %d emails for 2 requests", n-sent)
		}
		var subject string
		if err := db.Read.QueryRowContext(ctx, `SELECT subject FROM outbox WHERE kind = $1 AND subject_id = $2`, mail.KindOperator, id).Scan(&subject); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(subject, "access") || strings.Contains(subject, "anna") {
			t.Fatalf("operator email subject %q", subject)
		}
		if rep := decodeAs[ledger.Report](t, e.get(t, "/api/v1/ledger/verify")); !rep.OK {
			t.Fatalf("the ledger does not verify: %+v", rep)
		}
	})
}

// TestErasedAddressLeavesTheRequest: a request opened through the API for
// an address alone keeps the address while it is open; erasing the
// contact who has that address erases it from the request as well, and
// the request reads on with its id, kind and status and the time its
// address was erased.
func TestErasedAddressLeavesTheRequest(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		e.run(t, []scenario{
			{name: "a request from an address", method: "POST", url: "/api/v1/requests", body: `{"kind":"access","address":"Bo.Ek@example.com"}`,
				status: 201, events: 1, contains: []string{`"address":"Bo.Ek@example.com"`},
				check: func(t testing.TB, body []byte) { e.vars["r1"] = decodeAs[requests.Request](t, body).ID }},
			{name: "the contact with that address", method: "POST", url: "/api/v1/contacts", body: `{"email":"bo.ek@example.com"}`, status: 201,
				check: func(t testing.TB, body []byte) { e.vars["c1"] = decodeAs[contact.Contact](t, body).ID }},
			{name: "erased", method: "POST", auth: "{{admin}}", url: "/api/v1/contacts/{{c1}}/erase", status: 200, events: 1, contains: []string{`"status":"erased"`}},
			{name: "the request without the address", method: "GET", url: "/api/v1/requests/{{r1}}", status: 200,
				contains: []string{`"id":"{{r1}}"`, `"kind":"access"`, `"status":"verified"`, `"address_erased_at":"`},
				absent:   []string{"@example.com", `"address":`, `"closed_at"`}},
			{name: "nor in the list", method: "GET", url: "/api/v1/requests", status: 200, contains: []string{`"id":"{{r1}}"`}, absent: []string{"@example.com"}},
		})
	})
}
