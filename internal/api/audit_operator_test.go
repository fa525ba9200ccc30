package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// Every operator change of how the service treats contacts made through
// the API gets entries in the audit log, in its own transaction, naming
// the token, the object (its kind, id and name at the time) and each
// field before and after: sources, custom fields, lists, workflow rules,
// campaigns with each step of their sending, and campaign templates. A
// refused change, one that fails inside its transaction and one that
// changes nothing write none. A campaign's body, a template's layout and
// a rule's email are written as their digests, never as they are.
func TestOperatorChangesThroughTheAPIAreAudited(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		secret, tok, err := e.a.Tokens.Create(ctx, audit.Actor{Kind: audit.ActorCommandLine}, "operator", nil,
			auth.ScopeAdmin, auth.ScopeAutomation, auth.ScopeCampaigns)
		if err != nil {
			t.Fatal(err)
		}
		byToken := audit.Actor{Kind: "api_token", ID: tok.ID}
		do := e.expecting(t, "Bearer "+secret)
		log := auditLog{t: t, do: do}
		unchanged := func(n int, what string) {
			t.Helper()
			if got := log.count(); got != n {
				t.Fatalf("%s wrote %d entries", what, got-n)
			}
		}
		quoted := func(s string) string { b, _ := json.Marshal(s); return string(b) }

		// Sources: a new name is a change, deactivating and reactivating
		// are actions of their own.
		n := log.count()
		src := decodeAs[struct{ ID string }](t, do("POST", "/api/v1/sources", `{"name":"Trade fair"}`, 201))
		log.expect(n, audit.Object{Kind: audit.KindSource, ID: src.ID, Name: "Trade fair"}, audit.ActionSourceCreated, byToken,
			map[string][2]string{"name": {"", `"Trade fair"`}, "active": {"", "true"}})
		n = log.count()
		do("POST", "/api/v1/sources", `{"name":"trade FAIR"}`, 409) // fails inside its transaction
		do("PATCH", "/api/v1/sources/"+src.ID, `{"name":"Web form"}`, 409)
		do("PATCH", "/api/v1/sources/"+src.ID, `{"name":"Trade\nfair"}`, 400)
		do("PATCH", "/api/v1/sources/"+src.ID, `{"active":true}`, 200) // as it is
		unchanged(n, "refused or empty changes of a source")
		do("PATCH", "/api/v1/sources/"+src.ID, `{"name":"Trade fair 2026","active":false}`, 200)
		log.expectEach(n, audit.Object{Kind: audit.KindSource, ID: src.ID, Name: "Trade fair 2026"}, byToken, map[string]wantField{
			"name":   {audit.ActionSourceChanged, `"Trade fair"`, `"Trade fair 2026"`},
			"active": {audit.ActionSourceDeactivated, "true", "false"}})
		n = log.count()
		do("PATCH", "/api/v1/sources/"+src.ID, `{"active":true}`, 200)
		log.expect(n, audit.Object{Kind: audit.KindSource, ID: src.ID, Name: "Trade fair 2026"}, audit.ActionSourceReactivated, byToken,
			map[string][2]string{"active": {"false", "true"}})

		// Custom fields: named by their name, which never changes, and
		// their label; making one sensitive is an action of its own, with
		// the mask it gets.
		n = log.count()
		do("POST", "/api/v1/fields", `{"name":"national_id","type":"colour"}`, 400)
		unchanged(n, "a refused field")
		do("POST", "/api/v1/fields", `{"name":"national_id","label":"National ID","type":"text"}`, 201)
		field := audit.Object{Kind: audit.KindField, ID: "national_id", Name: "National ID"}
		log.expect(n, field, audit.ActionFieldCreated, byToken, map[string][2]string{"label": {"", `"National ID"`}, "type": {"", `"text"`},
			"personal": {"", "false"}, "sensitive": {"", "false"}, "mask": {"", `""`}, "storage_purpose": {"", `""`}})
		n = log.count()
		do("POST", "/api/v1/fields", `{"name":"national_id","type":"text"}`, 409) // fails inside its transaction
		do("PATCH", "/api/v1/fields/national_id", `{"type":"number"}`, 400)
		do("PATCH", "/api/v1/fields/national_id", `{"label":"National ID","sensitive":false}`, 200) // as it is
		unchanged(n, "refused or empty changes of a field")
		do("PATCH", "/api/v1/fields/national_id", `{"label":"National id number","personal":true,"sensitive":true}`, 200)
		field.Name = "National id number"
		log.expectEach(n, field, byToken, map[string]wantField{
			"label":     {audit.ActionFieldChanged, `"National ID"`, `"National id number"`},
			"personal":  {audit.ActionFieldChanged, "false", "true"},
			"sensitive": {audit.ActionFieldMadeSensitive, "false", "true"},
			"mask":      {audit.ActionFieldMadeSensitive, `""`, `"last:4"`}})
		n = log.count()
		do("PATCH", "/api/v1/fields/national_id", `{"sensitive":false}`, 422)
		unchanged(n, "turning sensitive off, refused,")
		do("PATCH", "/api/v1/fields/national_id", `{"storage_purpose":"E-marketing"}`, 200)
		log.expect(n, field, audit.ActionFieldChanged, byToken, map[string][2]string{"storage_purpose": {`""`, "*"}})

		// Lists.
		n = log.count()
		l := decodeAs[struct{ ID string }](t, do("POST", "/api/v1/lists", `{"name":"Newsletter","description":"Monthly"}`, 201))
		list := audit.Object{Kind: audit.KindList, ID: l.ID, Name: "Newsletter"}
		log.expect(n, list, audit.ActionListCreated, byToken, map[string][2]string{"name": {"", `"Newsletter"`},
			"description": {"", `"Monthly"`}, "public": {"", "true"}, "purpose": {"", `""`}})
		n = log.count()
		do("POST", "/api/v1/lists", `{"name":"NEWSLETTER"}`, 409)
		do("PATCH", "/api/v1/lists/"+l.ID, `{"purpose":"Telepathy"}`, 400)
		do("PATCH", "/api/v1/lists/"+l.ID, `{"description":"Monthly"}`, 200)
		unchanged(n, "refused or empty changes of a list")
		do("PATCH", "/api/v1/lists/"+l.ID, `{"public":false,"purpose":"E-marketing"}`, 200)
		log.expect(n, list, audit.ActionListChanged, byToken, map[string][2]string{"public": {"true", "false"},
			"purpose": {`""`, `"E-marketing"`}})
		n = log.count()
		do("DELETE", "/api/v1/lists/"+l.ID, "", 204)
		log.expect(n, list, audit.ActionListDeleted, byToken, map[string][2]string{"name": {`"Newsletter"`, ""},
			"description": {`"Monthly"`, ""}, "public": {"false", ""}, "purpose": {`"E-marketing"`, ""}})
		n = log.count()
		do("DELETE", "/api/v1/lists/"+l.ID, "", 404)
		unchanged(n, "deleting a deleted list")

		// Workflow rules: turning one on or off is an action of its own;
		// the email it sends is written as its digest.
		welcome := "Hello there, and welcome."
		rule := func(enabled bool, delay string) string {
			on := "true"
			if !enabled {
				on = "false"
			}
			return `{"name":"Welcome","trigger":"contact.created","enabled":` + on + `,"delay_minutes":` + delay + `,
				"actions":[{"type":"email_contact","subject":"Welcome","text":` + quoted(welcome) + `}]}`
		}
		n = log.count()
		r := decodeAs[struct{ ID string }](t, do("POST", "/api/v1/workflows", rule(true, "0"), 201))
		wf := audit.Object{Kind: audit.KindWorkflowRule, ID: r.ID, Name: "Welcome"}
		actions := `[{"type":"email_contact","subject":"Welcome","text":` + quoted(audit.Digest(welcome)) + `}]`
		log.expect(n, wf, audit.ActionWorkflowRuleCreated, byToken, map[string][2]string{"name": {"", `"Welcome"`},
			"trigger": {"", `"contact.created"`}, "condition": {"", `""`}, "actions": {"", actions}, "delay_minutes": {"", "0"},
			"enabled": {"", "true"}})
		n = log.count()
		do("POST", "/api/v1/workflows", rule(true, "0"), 409) // the name is taken: fails inside its transaction
		do("PUT", "/api/v1/workflows/"+r.ID, strings.Replace(rule(true, "0"), "contact.created", "contact.teleported", 1), 400)
		do("PUT", "/api/v1/workflows/"+r.ID, rule(true, "0"), 200) // as it is
		unchanged(n, "refused or empty changes of a workflow rule")
		do("PUT", "/api/v1/workflows/"+r.ID, rule(false, "60"), 200)
		log.expectEach(n, wf, byToken, map[string]wantField{
			"enabled":       {audit.ActionWorkflowRuleDisabled, "true", "false"},
			"delay_minutes": {audit.ActionWorkflowRuleChanged, "0", "60"}})
		n = log.count()
		do("PUT", "/api/v1/workflows/"+r.ID, rule(true, "60"), 200)
		log.expect(n, wf, audit.ActionWorkflowRuleEnabled, byToken, map[string][2]string{"enabled": {"false", "true"}})
		n = log.count()
		do("DELETE", "/api/v1/workflows/"+r.ID, "", 204)
		log.expect(n, wf, audit.ActionWorkflowRuleDeleted, byToken, map[string][2]string{"name": {`"Welcome"`, ""},
			"trigger": {`"contact.created"`, ""}, "condition": {`""`, ""}, "actions": {actions, ""}, "delay_minutes": {"60", ""},
			"enabled": {"true", ""}})

		// Campaign templates: the layout is written as its digest.
		layout := `<div>{{content}}</div><p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>`
		n = log.count()
		tp := decodeAs[struct{ ID string }](t, do("POST", "/api/v1/campaign-templates", `{"name":"Plain","html":`+quoted(layout)+`}`, 201))
		tpl := audit.Object{Kind: audit.KindCampaignTemplate, ID: tp.ID, Name: "Plain"}
		log.expect(n, tpl, audit.ActionCampaignTemplateCreated, byToken, map[string][2]string{"name": {"", `"Plain"`},
			"html": {"", quoted(audit.Digest(layout))}})
		n = log.count()
		do("PATCH", "/api/v1/campaign-templates/"+tp.ID, `{"html":"<div>no content</div>"}`, 400)
		unchanged(n, "a refused template")
		layout2 := `<div class="x">{{content}}</div><p><a href="{{unsubscribe_url}}">Leave</a></p>`
		do("PATCH", "/api/v1/campaign-templates/"+tp.ID, `{"html":`+quoted(layout2)+`}`, 200)
		log.expect(n, tpl, audit.ActionCampaignTemplateChanged, byToken, map[string][2]string{
			"html": {quoted(audit.Digest(layout)), quoted(audit.Digest(layout2))}})

		// Campaigns: the content and rules, each language's subject and
		// bodies (as digests), and each step of the sending.
		body, body2 := "<p>Spring is here, {{first_name}}.</p>", "<p>Spring has come, {{first_name}}!</p>"
		n = log.count()
		c := decodeAs[struct{ ID string }](t, do("POST", "/api/v1/campaigns", `{"name":"Spring","condition":"email != \"\"","template_id":"`+tp.ID+
			`","variants":[{"language":"en","subject":"Spring news","html":`+quoted(body)+`}]}`, 201))
		camp := audit.Object{Kind: audit.KindCampaign, ID: c.ID, Name: "Spring"}
		log.expect(n, camp, audit.ActionCampaignCreated, byToken, map[string][2]string{"name": {"", `"Spring"`},
			"purpose": {"", `"E-marketing"`}, "template_id": {"", quoted(tp.ID)}, "list_ids": {"", "[]"}, "condition": {"", `"email != \"\""`},
			"opt_in_policy": {"", `""`}, "default_language": {"", `"en"`}, "variants.en.subject": {"", `"Spring news"`},
			"variants.en.html": {"", quoted(audit.Digest(body))}, "variants.en.text": {"", `""`}})
		n = log.count()
		do("PATCH", "/api/v1/campaigns/"+c.ID, `{"variants":[{"language":"en","subject":"Hi {{firstname}}","html":"<p>x</p>"}]}`, 400)
		do("PATCH", "/api/v1/campaigns/"+c.ID, `{"name":"Spring"}`, 200)
		do("DELETE", "/api/v1/campaign-templates/"+tp.ID, "", 409) // in use
		unchanged(n, "refused or empty changes of a campaign")
		do("PATCH", "/api/v1/campaigns/"+c.ID, `{"name":"Spring 2026","variants":[{"language":"en","subject":"Spring news","html":`+quoted(body2)+`},
			{"language":"sv","subject":"Vårnytt","html":"<p>Hej {{first_name}}</p>"}]}`, 200)
		camp.Name = "Spring 2026"
		log.expect(n, camp, audit.ActionCampaignChanged, byToken, map[string][2]string{"name": {`"Spring"`, `"Spring 2026"`},
			"variants.en.html": {quoted(audit.Digest(body)), quoted(audit.Digest(body2))}, "variants.sv.subject": {"", `"Vårnytt"`},
			"variants.sv.html": {"", quoted(audit.Digest("<p>Hej {{first_name}}</p>"))}, "variants.sv.text": {"", `""`}})

		at := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
		n = log.count()
		do("POST", "/api/v1/campaigns/"+c.ID+"/schedule", `{"scheduled_at":"`+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)+`"}`, 400)
		unchanged(n, "scheduling in the past")
		do("POST", "/api/v1/campaigns/"+c.ID+"/schedule", `{"scheduled_at":"`+at.Format(time.RFC3339)+`"}`, 200)
		atJSON, _ := json.Marshal(at)
		log.expect(n, camp, audit.ActionCampaignScheduled, byToken, map[string][2]string{"status": {`"draft"`, `"scheduled"`},
			"scheduled_at": {"null", string(atJSON)}})
		// Unscheduling is the admin pages' alone.
		admin := audit.Actor{Kind: "user", ID: "admin-1"}
		n = log.count()
		if _, err := e.a.Campaigns.Unschedule(ctx, admin, c.ID); err != nil {
			t.Fatal(err)
		}
		log.expect(n, camp, audit.ActionCampaignUnscheduled, admin, map[string][2]string{"status": {`"scheduled"`, `"draft"`},
			"scheduled_at": {string(atJSON), "null"}})
		n = log.count()
		if _, err := e.a.Campaigns.Unschedule(ctx, admin, c.ID); err == nil {
			t.Fatal("a draft was unscheduled")
		}
		do("POST", "/api/v1/campaigns/"+c.ID+"/pause", "", 409)
		unchanged(n, "refused steps of a campaign")
		for _, step := range []struct{ path, action, from, to string }{
			{"send", audit.ActionCampaignStarted, "draft", "sending"},
			{"pause", audit.ActionCampaignPaused, "sending", "paused"},
			{"resume", audit.ActionCampaignResumed, "paused", "sending"},
		} {
			n = log.count()
			do("POST", "/api/v1/campaigns/"+c.ID+"/"+step.path, "", 200)
			log.expect(n, camp, step.action, byToken, map[string][2]string{"status": {quoted(step.from), quoted(step.to)}})
		}
		n = log.count()
		do("PATCH", "/api/v1/campaigns/"+c.ID, `{"name":"Too late"}`, 409) // sending: refused inside its transaction
		do("POST", "/api/v1/campaigns/"+c.ID+"/retry-unknown", "", 200)    // no recipient's outcome is unknown
		unchanged(n, "changing a sending campaign, or retrying none")

		// The campaign finished with one recipient's outcome unknown, as a
		// crash in the middle of a batch leaves it; sending it again is the
		// operator's word, and sends the campaign again.
		if err := db.Write(ctx, func(tx *store.Tx) error {
			if _, err := tx.Exec(`INSERT INTO campaign_recipients (campaign_no, contact_id, status) SELECT no, 'someone', 'unknown'
				FROM campaigns WHERE id = $1`, c.ID); err != nil {
				return err
			}
			_, err := tx.Exec(`UPDATE campaigns SET status = 'sent', finished_at = started_at WHERE id = $1`, c.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		n = log.count()
		do("POST", "/api/v1/campaigns/"+c.ID+"/retry-unknown", "", 200)
		log.expect(n, camp, audit.ActionCampaignRetried, byToken, map[string][2]string{"status": {`"sent"`, `"sending"`},
			"recipients_queued_again": {"", "1"}})
		n = log.count()
		do("POST", "/api/v1/campaigns/"+c.ID+"/cancel", "", 200)
		log.expect(n, camp, audit.ActionCampaignCancelled, byToken, map[string][2]string{"status": {`"sending"`, `"cancelled"`}})
		n = log.count()
		do("POST", "/api/v1/campaigns/"+c.ID+"/cancel", "", 409)
		do("DELETE", "/api/v1/campaigns/"+c.ID, "", 409)
		unchanged(n, "cancelling or deleting a cancelled campaign")

		d := decodeAs[struct{ ID string }](t, do("POST", "/api/v1/campaigns", `{"name":"Draft","condition":"email != \"\"","variants":[
			{"language":"en","subject":"Soon","html":"<p>Soon. <a href=\"{{unsubscribe_url}}\">Leave</a></p>","text":"Soon."}]}`, 201))
		n = log.count()
		do("DELETE", "/api/v1/campaigns/"+d.ID, "", 204)
		log.expect(n, audit.Object{Kind: audit.KindCampaign, ID: d.ID, Name: "Draft"}, audit.ActionCampaignDeleted, byToken,
			map[string][2]string{"name": {`"Draft"`, ""}, "purpose": {`"E-marketing"`, ""}, "template_id": {`""`, ""},
				"list_ids": {"[]", ""}, "condition": {`"email != \"\""`, ""}, "opt_in_policy": {`""`, ""}, "default_language": {`"en"`, ""},
				"variants.en.subject": {`"Soon"`, ""}, "variants.en.html": {"*", ""}, "variants.en.text": {quoted(audit.Digest("Soon.")), ""}})

		spare := decodeAs[struct{ ID string }](t, do("POST", "/api/v1/campaign-templates", `{"name":"Spare","html":`+quoted(layout)+`}`, 201))
		n = log.count()
		do("DELETE", "/api/v1/campaign-templates/"+spare.ID, "", 204)
		log.expect(n, audit.Object{Kind: audit.KindCampaignTemplate, ID: spare.ID, Name: "Spare"}, audit.ActionCampaignTemplateDeleted,
			byToken, map[string][2]string{"name": {`"Spare"`, ""}, "html": {quoted(audit.Digest(layout)), ""}})
		n = log.count()
		do("DELETE", "/api/v1/campaign-templates/"+spare.ID, "", 404)
		unchanged(n, "deleting a deleted template")

		// No body, layout or email is in the log, only their digests; each
		// new kind is kept by the filter, and only it.
		for _, en := range log.entries("") {
			for _, s := range []string{"Spring is here", "Spring has come", "Hej {{first_name}}", "Soon.", "{{content}}", welcome} {
				if strings.Contains(en.OldValue+en.NewValue, s) || strings.Contains(en.OldValue+en.NewValue, strings.ReplaceAll(quoted(s), `"`, "")) {
					t.Errorf("the audit log holds a body (%q): %+v", s, en)
				}
			}
		}
		for _, kind := range []string{audit.KindSource, audit.KindField, audit.KindList, audit.KindWorkflowRule, audit.KindCampaign,
			audit.KindCampaignTemplate} {
			got := log.entries("&kind=" + kind)
			if len(got) == 0 {
				t.Errorf("kind=%s: no entries", kind)
			}
			for _, en := range got {
				if en.Kind != kind {
					t.Errorf("kind=%s gave %+v", kind, en)
				}
			}
		}
	})
}
