package workflow_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/workflow"
)

// fuzzEnv is an installation fixed in memory: a few fields, a purpose, a
// list and a webhook endpoint.
func fuzzEnv() *workflow.Env {
	defs := map[string]*contact.FieldDefinition{
		"company":     {Name: "company", Label: "Company", Type: contact.TypeText},
		"score":       {Name: "score", Type: contact.TypeNumber},
		"card_number": {Name: "card_number", Type: contact.TypeText, Sensitive: true, Mask: "last:4"},
	}
	schema := &filter.Schema{Fields: map[string]*filter.Field{
		"email":       {Name: "email", Type: filter.String, Column: "email"},
		"first_name":  {Name: "first_name", Type: filter.String, Column: "first_name"},
		"stage":       {Name: "stage", Type: filter.String, Column: "stage"},
		"company":     {Name: "company", Type: filter.String},
		"score":       {Name: "score", Type: filter.Number},
		"card_number": {Name: "card_number", Type: filter.String, Sensitive: true},
	}, Purposes: map[string]string{"share with partners": "p1", "p1": "p1"}}
	fields := map[string]workflow.FieldInfo{"company": {Label: "Company"}, "score": {Label: "score"}, "card_number": {Label: "Card", Sensitive: true}}
	for _, f := range contact.CoreFields {
		fields[f.Name] = workflow.FieldInfo{Label: f.Label}
	}
	lists := map[string]string{"partners": "l1", "l1": "l1"}
	return &workflow.Env{Schema: schema, Now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		ListID:   func(s string) (string, bool) { id, ok := lists[s]; return id, ok },
		Fields:   fields,
		SetValue: func(f string, v any) (any, error) { return contact.CheckSetValue(f, v, defs) },
		Endpoint: func(id string) bool { return id == "ep_1" }}
}

// FuzzRuleDefinition decodes and checks rule definitions: it never
// panics, every refusal is an invalid-input error that names a field, and
// every definition accepted round-trips through JSON unchanged.
func FuzzRuleDefinition(f *testing.F) {
	for _, s := range []string{
		`{"name": "Share", "trigger": "consent.granted", "condition": "event.purpose == \"Share with partners\" && event.state == \"granted\"",
			"actions": [{"type": "email_address", "to": "leads@partner.example", "subject": "Lead", "fields": ["first_name", "card_number"]}]}`,
		`{"name": "Later", "trigger": "list.subscribed", "delay_minutes": 2880, "enabled": false,
			"actions": [{"type": "email_contact", "subject": "Hi {{first_name}}", "text": "{{preferences_url}} {{unsubscribe_url}}", "html": "<p>x</p>"}]}`,
		`{"name": "Fields", "trigger": "opt_in.changed", "condition": "event.to == \"double_opt_in\" && score > 3",
			"actions": [{"type": "set_field", "field": "score", "value": 4.5}, {"type": "set_field", "field": "stage", "value": "x"},
			{"type": "list_add", "list": "Partners"}, {"type": "list_remove", "list": "l1"}, {"type": "webhook", "endpoint_id": "ep_1"},
			{"type": "double_opt_in"}, {"type": "notify_users", "subject": "s"}]}`,
		`{"name": "x", "trigger": "campaign.sent", "actions": []}`,
		`{"actions": [{"type": "set_field", "field": "card_number", "value": {"a": 1}}]}`,
		`{"name": "\u202e", "trigger": 1}`,
		`[]`, `null`, `{"name": "a"}{}`, ``,
	} {
		f.Add([]byte(s))
	}
	env := fuzzEnv()
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := workflow.ParseDefinition(data)
		if err == nil {
			err = d.Check(env)
		}
		if err != nil {
			if e := errs.As(err); e == nil || e.Kind != errs.KindInvalid || e.Field == "" {
				t.Fatalf("%q: an error that names no field: %v", data, err)
			}
			return
		}
		first, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		again, err := workflow.ParseDefinition(first)
		if err == nil {
			err = again.Check(env)
		}
		if err != nil {
			t.Fatalf("%s: the accepted definition is refused once encoded: %v", first, err)
		}
		if second, _ := json.Marshal(again); string(second) != string(first) {
			t.Fatalf("round trip:\n%s\n%s", first, second)
		}
	})
}
