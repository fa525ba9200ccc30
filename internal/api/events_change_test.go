package api_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"testing"

	"github.com/consentry/consentry/internal/api"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// Each change made through the API writes its event with the documented
// data, and only then: a refused change and a change that changes nothing
// write none. Every step runs after the previous one; want is the events
// the step writes, each as its type and the data fields that matter.
func TestEachChangeWritesItsEvent(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		r := e.do(t, "POST", "/api/v1/contacts", `{"email":"steps@example.com","first_name":"Ada"}`, "")
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		id := decodeAs[struct {
			ID string `json:"id"`
		}](t, r.body).ID
		after := int64(0)
		check := func(step string, want []map[string]any) {
			t.Helper()
			page := decodeAs[api.EventPage](t, e.get(t, "/api/v1/events?after="+strconv.FormatInt(after, 10)))
			after = page.Next
			if len(page.Items) != len(want) {
				t.Fatalf("%s: %d events, want %d: %+v", step, len(page.Items), len(want), page.Items)
			}
			for i, w := range want {
				it := page.Items[i]
				raw, _ := json.Marshal(it.Data)
				var got map[string]any
				if err := json.Unmarshal(raw, &got); err != nil {
					t.Fatal(err)
				}
				if it.Type != w["type"] {
					t.Errorf("%s: event %d is %s, want %s", step, i, it.Type, w["type"])
				}
				for k, v := range w {
					if k != "type" && !reflect.DeepEqual(got[k], v) {
						t.Errorf("%s: %s %s = %#v, want %#v (%s)", step, it.Type, k, got[k], v, raw)
					}
				}
				if _, ok := got["email"]; ok {
					t.Errorf("%s: %s carries an address: %s", step, it.Type, raw)
				}
				if _, ok := got["reason"]; ok {
					t.Errorf("%s: %s carries free text: %s", step, it.Type, raw)
				}
			}
		}
		do := func(method, path, body string, status int) {
			t.Helper()
			if r := e.do(t, method, path, body, ""); r.status != status {
				t.Fatalf("%s %s: %d, want %d: %s", method, path, r.status, status, r.body)
			}
		}
		c := "/api/v1/contacts/" + id
		check("create", []map[string]any{{"type": "contact.created", "contact_id": id, "actor_kind": "api_token", "method": "api"}})

		do("PATCH", c, `{"first_name":"Ada","region":"EU"}`, 200)
		check("update", []map[string]any{{"type": "contact.updated", "contact_id": id, "fields": []any{"region"}}})
		do("PATCH", c, `{"first_name":"Ada"}`, 200)
		check("update that changes nothing", nil)
		do("PATCH", c, `{"country":"Sweden"}`, 400)
		check("refused update", nil)

		do("POST", c+"/consents", `{"purpose":"E-marketing","state":"granted","source":"Phone"}`, 201)
		check("grant", []map[string]any{{"type": "consent.granted", "contact_id": id, "purpose": "E-marketing", "state": "granted",
			"source": "Phone", "actor_kind": "api_token", "text_version": float64(1)}})
		do("POST", c+"/consents", `{"purpose":"E-marketing","state":"granted","source":"Phone"}`, 201)
		check("grant again (a new consent record)", []map[string]any{{"type": "consent.granted", "state": "granted"}})
		do("POST", c+"/consents", `{"purpose":"No such purpose","state":"granted","source":"Phone"}`, 422)
		check("refused grant", nil)

		do("POST", c+"/opt-in", `{"status":"double_opt_in"}`, 422)
		check("refused opt-in change", nil)
		do("POST", c+"/opt-in", `{"status":"opt_out_user"}`, 200)
		check("opt-out", []map[string]any{{"type": "opt_in.changed", "contact_id": id, "from": "none", "to": "opt_out_user"}})
		do("POST", c+"/opt-in", `{"status":"opt_out_user"}`, 200)
		check("opt-out again", nil)

		r = e.do(t, "POST", "/api/v1/lists", `{"name":"Steps"}`, "")
		list := decodeAs[struct {
			ID string `json:"id"`
		}](t, r.body).ID
		do("PUT", c+"/lists/"+list, `{"state":"subscribed"}`, 200)
		check("subscribe", []map[string]any{{"type": "list.subscribed", "contact_id": id, "list_id": list, "list": "Steps", "source": "api"}})
		do("PUT", c+"/lists/"+list, `{"state":"subscribed"}`, 200)
		check("subscribe again", nil)
		do("PUT", c+"/lists/"+list, `{"state":"unsubscribed"}`, 200)
		check("unsubscribe", []map[string]any{{"type": "list.unsubscribed", "list_id": list, "state": "unsubscribed"}})

		r = e.do(t, "POST", "/api/v1/requests", `{"kind":"access","contact_id":"`+id+`"}`, "")
		if r.status != http.StatusCreated {
			t.Fatalf("request: %d %s", r.status, r.body)
		}
		req := decodeAs[struct {
			ID string `json:"id"`
		}](t, r.body).ID
		check("request", []map[string]any{{"type": "request.created", "request_id": req, "contact_id": id, "kind": "access", "status": "verified"}})
		do("PATCH", "/api/v1/requests/"+req, `{"status":"in_progress"}`, 200)
		check("request in progress", nil)
		do("PATCH", "/api/v1/requests/"+req, `{"status":"done"}`, 200)
		check("request done", []map[string]any{{"type": "request.done", "request_id": req, "status": "done"}})

		do("POST", c+"/blocklist", ``, 200)
		check("blocklist", []map[string]any{{"type": "deliverability.changed", "contact_id": id, "from": "ok", "to": "blocklisted", "cause": "blocklisted"}})
		do("POST", c+"/blocklist", ``, 200)
		check("blocklist again", nil)
		do("DELETE", c+"/blocklist", ``, 200)
		check("off the blocklist", []map[string]any{{"type": "deliverability.changed", "contact_id": id, "from": "blocklisted", "to": "ok", "cause": "unblocklisted"}})
		do("DELETE", c+"/blocklist", ``, 200)
		check("off the blocklist again", nil)
		do("POST", "/api/v1/bounces", `{"email":"steps@example.com","type":"hard"}`, 200)
		check("hard bounce", []map[string]any{{"type": "deliverability.changed", "contact_id": id, "from": "ok", "to": "bounced", "cause": "hard_bounce"}})
		do("POST", "/api/v1/bounces", `{"email":"steps@example.com","type":"hard"}`, 200)
		check("bounce of a bounced address", nil)
		do("POST", "/api/v1/bounces", `{"email":"nobody@example.com","type":"hard"}`, 422)
		check("bounce of an address no contact has", nil)

		// Legal holds, an erasure they hold back, and the erasure that
		// follows when the last is lifted; never the hold's reason.
		operator := e.vars["admin"]
		as := func(method, path, body string, status int) []byte {
			t.Helper()
			r := e.do(t, method, path, body, operator)
			if r.status != status {
				t.Fatalf("%s %s: %d, want %d: %s", method, path, r.status, status, r.body)
			}
			return r.body
		}
		hold := decodeAs[struct {
			ID string `json:"id"`
		}](t, as("POST", c+"/holds", `{"reason":"invoice 42 to Ada","legal_basis":"legal_obligation"}`, 201)).ID
		held := map[string]any{"contact_id": id, "hold_id": hold, "legal_basis": "legal_obligation", "actor_kind": "api_token"}
		with := func(typ string, m map[string]any) map[string]any {
			out := map[string]any{"type": typ}
			for k, v := range m {
				out[k] = v
			}
			return out
		}
		check("hold", []map[string]any{with("legal_hold.set", held)})
		as("POST", c+"/holds", `{"reason":"","legal_basis":"legal_obligation"}`, 400)
		check("refused hold", nil)
		as("POST", c+"/erase", ``, 200)
		check("erasure under the hold", []map[string]any{with("erasure.held", held)})
		as("POST", c+"/erase", ``, 200)
		check("erasure again under the same hold", nil)
		as("POST", c+"/holds/"+hold+"/lift", `{"reason":"invoice 42 paid"}`, 200)
		lifted := with("legal_hold.lifted", held)
		lifted["cause"] = "lifted"
		check("lift", []map[string]any{lifted, {"type": "contact.erased", "contact_id": id, "actor_kind": "system"}})
		as("POST", c+"/holds/"+hold+"/lift", `{"reason":"again"}`, 409)
		check("lift again", nil)

		as("DELETE", c, ``, 204)
		check("delete", []map[string]any{{"type": "contact.deleted", "contact_id": id}})
		as("DELETE", c, ``, 404)
		check("delete again", nil)
	})
}
