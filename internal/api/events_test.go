package api_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/consentry/consentry/internal/api"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// GET /api/v1/events lists what the API's own changes wrote, in order, by
// type and contact, page after page; it needs a token and refuses a bad
// limit, type or cursor by name.
func TestEventsList(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		r := e.do(t, "POST", "/api/v1/contacts", `{"email":"events@example.com"}`, "")
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		id := decodeAs[struct {
			ID string `json:"id"`
		}](t, r.body).ID
		for _, state := range []string{"granted", "withdrawn"} {
			r := e.do(t, "POST", "/api/v1/contacts/"+id+"/consents", `{"purpose":"E-marketing","state":"`+state+`","source":"Phone"}`, "")
			if r.status != http.StatusCreated {
				t.Fatalf("consent: %d %s", r.status, r.body)
			}
		}

		all := decodeAs[api.EventPage](t, e.get(t, "/api/v1/events?contact="+id))
		var types []string
		for _, it := range all.Items {
			types = append(types, it.Type)
			if it.ContactID != id || it.ID != "evt_"+strconv.FormatInt(it.Seq, 10) || it.Version != 1 || it.Timestamp.IsZero() {
				t.Errorf("item %+v", it)
			}
		}
		want := []string{events.ContactCreated, events.ConsentGranted, events.ConsentWithdrawn}
		if !equal(types, want) {
			t.Fatalf("types %v, want %v", types, want)
		}

		page := decodeAs[api.EventPage](t, e.get(t, "/api/v1/events?type=consent.granted&contact="+id))
		if len(page.Items) != 1 {
			t.Fatalf("by type: %+v", page)
		}
		raw, _ := json.Marshal(page.Items[0].Data)
		var d events.ConsentData
		if err := json.Unmarshal(raw, &d); err != nil || d.Purpose != "E-marketing" || d.State != "granted" || d.Source != "Phone" || d.ContactID != id {
			t.Fatalf("data %s: %v", raw, err)
		}

		first := decodeAs[api.EventPage](t, e.get(t, "/api/v1/events?limit=1&contact="+id))
		second := decodeAs[api.EventPage](t, e.get(t, "/api/v1/events?limit=1&contact="+id+"&after="+strconv.FormatInt(first.Next, 10)))
		if len(first.Items) != 1 || len(second.Items) != 1 || second.Items[0].Seq <= first.Items[0].Seq || second.Items[0].Type != events.ConsentGranted {
			t.Fatalf("pages: %+v then %+v", first, second)
		}
		last := decodeAs[api.EventPage](t, e.get(t, "/api/v1/events?after="+strconv.FormatInt(all.Items[2].Seq, 10)+"&contact="+id))
		if len(last.Items) != 0 || last.Next != all.Items[2].Seq {
			t.Fatalf("after the last: %+v", last)
		}

		for _, c := range []struct{ query, field string }{
			{"limit=0", "limit"}, {"limit=501", "limit"}, {"type=consent.maybe", "type"}, {"after=x", "after"}, {"after=-1", "after"},
		} {
			r := e.do(t, "GET", "/api/v1/events?"+c.query, "", "")
			if r.status != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400", c.query, r.status)
				continue
			}
			var body struct {
				Error struct {
					Field string `json:"field"`
				} `json:"error"`
			}
			if json.Unmarshal(r.body, &body); body.Error.Field != c.field {
				t.Errorf("%s: %s, want field %s", c.query, r.body, c.field)
			}
		}
		if r := e.do(t, "GET", "/api/v1/events", "", noAuth); r.status != http.StatusUnauthorized {
			t.Errorf("without a token: %d", r.status)
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The document describes every event type under webhooks: the envelope
// with the type's name and version, and its data's schema, which carries
// references (a contact, a campaign or an import) and no address.
func TestOpenAPIWebhooks(t *testing.T) {
	raw, err := json.Marshal(api.New(&api.Server{Version: "test"}).OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI  string `json:"openapi"`
		Webhooks map[string]struct {
			Post struct {
				RequestBody struct {
					Content map[string]struct {
						Schema struct {
							Required   []string `json:"required"`
							Properties struct {
								Type    struct{ Const string }
								Version struct{ Const int }
								Data    jsonSchema
							} `json:"properties"`
						} `json:"schema"`
					} `json:"content"`
				} `json:"requestBody"`
			} `json:"post"`
		} `json:"webhooks"`
		openAPIDoc
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q: webhooks need 3.1", doc.OpenAPI)
	}
	if len(doc.Webhooks) != len(events.Types) {
		t.Errorf("%d webhooks, %d event types", len(doc.Webhooks), len(events.Types))
	}
	for _, typ := range events.Types {
		sc := doc.Webhooks[typ.Name].Post.RequestBody.Content["application/json"].Schema
		p := sc.Properties
		if p.Type.Const != typ.Name || p.Version.Const != typ.Version || len(sc.Required) != 5 {
			t.Errorf("%s: envelope %+v", typ.Name, sc)
			continue
		}
		data := doc.resolve(p.Data)
		if len(data.Properties) == 0 {
			t.Errorf("%s: data has no properties: %+v", typ.Name, p.Data)
		}
		_, contact := data.Properties["contact_id"]
		_, campaign := data.Properties["campaign_id"]
		_, imported := data.Properties["import_id"]
		if !contact && !campaign && !(imported && typ.Name == events.ImportUndone) {
			t.Errorf("%s: data names neither a contact, nor a campaign, nor an import (import.undone)", typ.Name)
		}
		for _, personal := range []string{"email", "first_name", "last_name", "phone", "value", "values", "ip", "user_agent"} {
			if _, ok := data.Properties[personal]; ok {
				t.Errorf("%s: data carries %s", typ.Name, personal)
			}
		}
	}
}
