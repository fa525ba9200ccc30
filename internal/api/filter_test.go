package api_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestFilterAndCount selects contacts with a condition through
// GET /api/v1/contacts?filter= (paged) and POST /api/v1/contacts/count, and
// checks that a bad condition is a 400 that carries its position.
func TestFilterAndCount(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		for _, c := range []string{
			`{"email":"a@example.com","region":"EU","consents":[{"purpose":"E-marketing","state":"granted","source":"API"}]}`,
			`{"email":"b@example.com","region":"EU"}`,
			`{"email":"c@example.com","region":"US","consents":[{"purpose":"E-marketing","state":"granted","source":"API"}]}`,
			`{"email":"d@example.se","region":"EU","consents":[{"purpose":"E-marketing","state":"granted","source":"API"}]}`,
		} {
			if r := e.do(t, "POST", "/api/v1/contacts", c, ""); r.status != 201 {
				t.Fatalf("create: %d %s", r.status, r.body)
			}
		}
		const cond = `region == "EU" && consent("E-marketing") == "granted"`
		var emails []string
		after := ""
		for {
			var page struct {
				Items []struct{ Email string }
				Next  string
			}
			path := "/api/v1/contacts?limit=1&filter=" + url.QueryEscape(cond)
			if after != "" {
				path += "&after=" + after
			}
			if err := json.Unmarshal(e.get(t, path), &page); err != nil {
				t.Fatal(err)
			}
			for _, it := range page.Items {
				emails = append(emails, it.Email)
			}
			if after = page.Next; after == "" {
				break
			}
		}
		if strings.Join(emails, ",") != "a@example.com,d@example.se" {
			t.Fatalf("filtered pages: %v", emails)
		}

		r := e.do(t, "POST", "/api/v1/contacts/count", `{"filter":"`+strings.ReplaceAll(cond, `"`, `\"`)+`"}`, "")
		if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"count":2}` {
			t.Fatalf("count: %d %s", r.status, r.body)
		}
		if r := e.do(t, "POST", "/api/v1/contacts/count", `{}`, ""); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"count":4}` {
			t.Fatalf("count of all: %d %s", r.status, r.body)
		}

		for _, bad := range []struct {
			method, path, body string
			pos                int
			msg                string
		}{
			{"GET", "/api/v1/contacts?filter=" + url.QueryEscape(`regoin == "EU"`), "", 1, "did you mean region?"},
			{"POST", "/api/v1/contacts/count", `{"filter":"region == \"EU\" && consent(\"Nope\") == \"granted\""}`, 27, "unknown purpose"},
			{"POST", "/api/v1/contacts/count", `{"filter":"region =="}`, 9, ""},
		} {
			r := e.do(t, bad.method, bad.path, bad.body, "")
			var body struct {
				Error struct {
					Code, Message, Field string
					Position             int
				}
			}
			json.Unmarshal(r.body, &body)
			if r.status != 400 || body.Error.Code != "invalid_condition" || body.Error.Field != "filter" ||
				body.Error.Position != bad.pos || !strings.Contains(body.Error.Message, bad.msg) {
				t.Errorf("%s %s: %d %s", bad.method, bad.path, r.status, r.body)
			}
		}
	})
}

func TestWrongMethodIs405(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	r := e.do(t, "PUT", "/api/v1/contacts/x", `{}`, "")
	if r.status != 405 || r.header.Get("Allow") != "GET, PATCH, DELETE" || !strings.Contains(string(r.body), "method_not_allowed") {
		t.Fatalf("PUT on a contact: %d %q %s", r.status, r.header.Get("Allow"), r.body)
	}
	if r := e.do(t, "GET", "/api/v1/nothing", "", ""); r.status != 404 {
		t.Fatalf("unknown route: %d", r.status)
	}
}

// TestFieldLookupsByType looks contacts up by a number, a boolean and a
// date field through ?field.NAME=, and refuses a value of the wrong type.
func TestFieldLookupsByType(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		for _, f := range []string{`{"name":"score","type":"number"}`, `{"name":"vip","type":"boolean"}`, `{"name":"birthday","type":"date"}`} {
			if r := e.do(t, "POST", "/api/v1/fields", f, ""); r.status != 201 {
				t.Fatalf("field: %d %s", r.status, r.body)
			}
		}
		if r := e.do(t, "POST", "/api/v1/contacts", `{"email":"n@example.com","fields":{"score":7.5,"vip":true,"birthday":"1985-01-01"}}`, ""); r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		e.do(t, "POST", "/api/v1/contacts", `{"email":"m@example.com","fields":{"score":3}}`, "")
		for _, q := range []string{"field.score=7.5", "field.vip=true", "field.birthday=1985-01-01", "field.score=7.5&field.vip=1"} {
			var page struct{ Items []struct{ Email string } }
			if err := json.Unmarshal(e.get(t, "/api/v1/contacts?"+q), &page); err != nil {
				t.Fatal(err)
			}
			if len(page.Items) != 1 || page.Items[0].Email != "n@example.com" {
				t.Errorf("%s: %+v", q, page.Items)
			}
		}
		for q, field := range map[string]string{"field.score=lots": "field.score", "field.vip=maybe": "field.vip", "field.nope=1": "field.nope"} {
			r := e.do(t, "GET", "/api/v1/contacts?"+q, "", "")
			if r.status != 400 || !strings.Contains(string(r.body), `"field":"`+field+`"`) {
				t.Errorf("%s: %d %s", q, r.status, r.body)
			}
		}
	})
}
