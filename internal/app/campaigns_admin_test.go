package app_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// campaignAudience creates the contacts a campaign to "@example.com"
// selects: two who would get it (double opt-in, consent to E-marketing),
// one without consent and one who opted out. It returns the first's id.
func campaignAudience(e *env, db *store.DB) string {
	e.t.Helper()
	var first string
	for _, p := range []struct {
		email, status string
		consent       bool
	}{{"ana@example.com", contactstate.DoubleOptIn, true}, {"bo@example.com", contactstate.DoubleOptIn, true},
		{"cy@example.com", contactstate.DoubleOptIn, false}, {"di@example.com", contactstate.OptOutContact, true}} {
		body := `{"email":"` + p.email + `","first_name":"` + strings.ToUpper(p.email[:1]) + p.email[1:2] + `"`
		if p.consent {
			body += `,"consents":[{"purpose":"E-marketing","state":"granted","source":"api"}]`
		}
		var c struct{ ID string }
		e.api("POST", "/api/v1/contacts", body+"}", 201, &c)
		// Set-up only: the opt-in flows are tested on their own.
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			return contactstate.SetOptInTx(tx, c.ID, p.status, time.Now())
		}); err != nil {
			e.t.Fatal(err)
		}
		if first == "" {
			first = c.ID
		}
	}
	return first
}

// campaignForm is a valid new campaign's form, to the contacts at
// example.com, in English.
func campaignForm(name string) url.Values {
	return url.Values{"name": {name}, "purpose": {"E-marketing"}, "condition": {`lower(email) endsWith "@example.com"`},
		"opt_in_policy": {""}, "default_language": {"en"}, "template_id": {""},
		"subject_en": {"News for {{first_name}}"}, "html_en": {"<p>Hello {{first_name}}</p>"}, "text_en": {""},
		"subject_sv": {""}, "html_sv": {""}, "text_sv": {""}}
}

// TestCampaignPages: a campaign is made through its form, with every bad
// field refused next to it (a condition's with its position) and nothing
// saved; its page counts the audience with the exclusions by reason,
// previews it as a contact (in a sandboxed frame) and says why another
// would not get it, sends a test to the user, and sends it through the
// buttons, each a post that redirects. Templates are made, refused
// without {{content}}, and deleted; a body without the unsubscribe link
// in a template without it is refused next to the body. An agent may not
// see any of it.
func TestCampaignPages(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		campaignAudience(e, db)
		base := e.srv.URL + "/admin/campaigns"

		if code, body := admin.get(base); code != 200 || !strings.Contains(body, "No campaign yet.") || !strings.Contains(body, `href="/admin/campaigns/new"`) {
			t.Fatalf("empty list: %d %s", code, body)
		}
		if _, body := admin.get(base + "/new"); !strings.Contains(body, "{{first_name}}") || !strings.Contains(body, `<option value="E-marketing" selected>`) {
			t.Fatalf("new campaign form: %s", body)
		}
		bad := func(change url.Values, want string) {
			t.Helper()
			f := campaignForm("Spring news")
			for k, v := range change {
				f[k] = v
			}
			code, body := admin.post(base, f)
			if code < 400 || !strings.Contains(body, want) {
				t.Fatalf("%v: %d, want %q in %s", change, code, want, body)
			}
		}
		bad(url.Values{"name": {" "}}, `id="name-error"`)
		bad(url.Values{"condition": {`lower(email) endsWith`}}, `id="condition-error"`)
		bad(url.Values{"condition": {`lower(email) == "x" && nosuch == "y"`}}, "                       ^")
		bad(url.Values{"html_en": {"<p>{{nosuch}}</p>"}}, `id="html_en-error"`)
		bad(url.Values{"subject_en": {""}}, `id="subject_en-error"`)
		bad(url.Values{"html_sv": {"<p>Hej</p>"}}, `id="subject_sv-error"`)
		bad(url.Values{"default_language": {"sv"}}, `id="variants-error"`)
		if n := count(t, db, `SELECT count(*) FROM campaigns`); n != 0 {
			t.Fatalf("%d campaigns saved from bad forms", n)
		}

		code, body := admin.post(base, campaignForm("Spring news"))
		if code != 200 || !strings.Contains(body, "Campaign saved as a draft.") {
			t.Fatalf("create: %d %s", code, body)
		}
		page := admin.last.Request.URL.String()
		page = page[:strings.Index(page, "?")]
		for _, want := range []string{`<dd id="audience-selected">4</dd>`, `<dd id="audience-recipients">2</dd>`,
			"Left out: No consent to the purpose (or objected)</dt><dd>1</dd>", "Left out: Opted out (by the contact)</dt><dd>1</dd>", "Draft"} {
			if !strings.Contains(body, want) {
				t.Fatalf("campaign page lacks %q: %s", want, body)
			}
		}
		if _, body := admin.get(page + "?contact=ana@example.com"); !strings.Contains(body, `<dd id="preview-subject">News for An</dd>`) ||
			!strings.Contains(body, `<iframe sandbox="" src="/admin/campaigns/`) || !strings.Contains(body, "This contact would get it") {
			t.Fatalf("preview as ana: %s", body)
		}
		if _, body := admin.get(page + "?contact=cy@example.com"); !strings.Contains(body, "would not get it:</strong> No consent to the purpose") {
			t.Fatalf("preview as cy: %s", body)
		}
		if code, body := admin.get(page + "?contact=nobody@example.com"); code != 200 || !strings.Contains(body, `id="contact-error"`) {
			t.Fatalf("preview as no one: %d %s", code, body)
		}
		if code, body := admin.post(page+"/test", url.Values{"to": {"stranger@example.org"}}); code != 400 || !strings.Contains(body, `id="to-error"`) {
			t.Fatalf("test to a stranger: %d %s", code, body)
		}
		if code, body := admin.post(page+"/test", url.Values{"to": {"ada@acme.example"}}); code != 200 || !strings.Contains(body, "Test message sent.") {
			t.Fatalf("test: %d %s", code, body)
		}
		if m := e.smtp.Wait(t, 1)[0]; m.To[0] != "ada@acme.example" || !strings.HasPrefix(m.Subject, "[Test] News for") {
			t.Fatalf("test message: %+v", m)
		}

		// Edit: the Swedish content is added; the form shows what is saved.
		f := campaignForm("Spring news")
		f.Set("subject_sv", "Nytt för {{first_name}}")
		f.Set("html_sv", "<p>Hej</p>")
		if code, body := admin.post(page+"/edit", f); code != 200 || !strings.Contains(body, "Campaign saved.") || !strings.Contains(body, "Swedish (sv)") {
			t.Fatalf("edit: %d %s", code, body)
		}
		if _, body := admin.get(page + "/edit"); !strings.Contains(body, "Nytt för {{first_name}}") {
			t.Fatalf("edit form: %s", body)
		}
		if code, body := admin.post(page+"/schedule", url.Values{"scheduled_at": {"2001-01-01T10:00"}}); code != 400 || !strings.Contains(body, `id="scheduled_at-error"`) {
			t.Fatalf("schedule in the past: %d %s", code, body)
		}
		// The time is read on the clock of the zone given, and a refused
		// form shows what was typed.
		if code, body := admin.post(page+"/schedule", url.Values{"scheduled_at": {"2030-01-31T09:00"}, "timezone": {"Mars/Olympus"}}); code != 400 ||
			!strings.Contains(body, `id="timezone-error"`) || !strings.Contains(body, `value="Mars/Olympus"`) || !strings.Contains(body, `value="2030-01-31T09:00"`) {
			t.Fatalf("an unknown time zone: %d %s", code, body)
		}
		if code, body := admin.post(page+"/schedule", url.Values{"scheduled_at": {"2030-03-31T02:30"}, "timezone": {"Europe/Stockholm"}}); code != 400 || !strings.Contains(body, "the clocks move forward") {
			t.Fatalf("a time the zone skips: %d %s", code, body)
		}
		if code, body := admin.post(page+"/schedule", url.Values{"scheduled_at": {"2030-01-31T09:00"}, "timezone": {"Europe/Stockholm"}}); code != 200 || !strings.Contains(body, "Campaign scheduled.") {
			t.Fatalf("schedule: %d %s", code, body)
		}
		scheduled, err := e.a.Campaigns.Get(context.Background(), page[strings.LastIndexByte(page, '/')+1:])
		if err != nil {
			t.Fatal(err)
		}
		if scheduled.ScheduledAt == nil || !scheduled.ScheduledAt.Equal(time.Date(2030, 1, 31, 8, 0, 0, 0, time.UTC)) {
			t.Fatalf("scheduled at %v, want 08:00 UTC", scheduled.ScheduledAt)
		}
		if code, body := admin.post(page+"/unschedule", nil); code != 200 || !strings.Contains(body, "Back to draft.") {
			t.Fatalf("unschedule: %d %s", code, body)
		}
		if code, body := admin.post(page+"/pause", nil); code != 409 || !strings.Contains(body, "the campaign is draft") {
			t.Fatalf("pause a draft: %d %s", code, body)
		}
		if code, body := admin.post(page+"/send", nil); code != 200 || !strings.Contains(body, "Sending started.") {
			t.Fatalf("send: %d %s", code, body)
		}
		got := map[string]bool{}
		for _, m := range e.smtp.Wait(t, 3)[1:] {
			got[m.To[0]] = true
		}
		if !got["ana@example.com"] || !got["bo@example.com"] {
			t.Fatalf("sent to %v", got)
		}
		for {
			if _, body := admin.get(page); strings.Contains(body, `<dd id="campaign-status">Sent`) {
				if !strings.Contains(body, `<progress id="progress" max="2" value="2"`) || strings.Contains(body, `http-equiv="refresh"`) {
					t.Fatalf("sent campaign page: %s", body)
				}
				break
			}
		}
		if _, body := admin.get(base); !strings.Contains(body, "2 recipients of 4 selected") {
			t.Fatalf("list after sending: %s", body)
		}

		// Templates.
		tp := e.srv.URL + "/admin/campaign-templates"
		if code, body := admin.post(tp, url.Values{"name": {"Plain"}, "html": {"<div>no body</div>"}}); code != 400 || !strings.Contains(body, `id="html-error"`) {
			t.Fatalf("template without content: %d %s", code, body)
		}
		const layout = `<div>{{content}}</div><p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>`
		if code, body := admin.post(tp, url.Values{"name": {"Plain"}, "html": {layout}}); code != 200 || !strings.Contains(body, "Template saved.") || !strings.Contains(body, ">Plain</a>") {
			t.Fatalf("template: %d %s", code, body)
		}
		var tid string
		if err := db.Read.QueryRow(`SELECT id FROM campaign_templates`).Scan(&tid); err != nil {
			t.Fatal(err)
		}
		if code, body := admin.post(tp+"/"+tid, url.Values{"name": {"Plainer"}, "html": {layout}}); code != 200 || !strings.Contains(body, ">Plainer</a>") {
			t.Fatalf("template edit: %d %s", code, body)
		}
		// A template without the unsubscribe link: a body without it is
		// refused next to the body.
		if code, body := admin.post(tp, url.Values{"name": {"Bare"}, "html": {"<div>{{content}}</div>"}}); code != 200 || !strings.Contains(body, ">Bare</a>") {
			t.Fatalf("template without the link: %d %s", code, body)
		}
		var bare string
		if err := db.Read.QueryRow(`SELECT id FROM campaign_templates WHERE name = 'Bare'`).Scan(&bare); err != nil {
			t.Fatal(err)
		}
		bad(url.Values{"template_id": {bare}}, `id="html_en-error"`)
		bad(url.Values{"template_id": {bare}}, "{{unsubscribe_url}}")
		// A campaign on a list, with the template: the form keeps both, and
		// the template cannot be deleted while the campaign uses it.
		var list struct{ ID string }
		e.api("POST", "/api/v1/lists", `{"name":"Newsletter"}`, 201, &list)
		f = campaignForm("Autumn news")
		f.Set("condition", "")
		f["lists"] = []string{list.ID}
		f.Set("template_id", tid)
		if code, body := admin.post(base, f); code != 200 || !strings.Contains(body, "<dd>Newsletter</dd>") || !strings.Contains(body, "<dd>Plainer</dd>") {
			t.Fatalf("campaign on a list: %d %s", code, body)
		}
		autumn := strings.Split(admin.last.Request.URL.String(), "?")[0]
		if _, body := admin.get(autumn + "/edit"); !strings.Contains(body, `value="`+list.ID+`" checked`) || !strings.Contains(body, `value="`+tid+`" selected`) {
			t.Fatalf("edit form of a campaign on a list: %s", body)
		}
		if code, body := admin.post(tp+"/"+tid+"/delete", nil); code != 409 || !strings.Contains(body, "1 campaign(s) use this template") {
			t.Fatalf("deleting a template in use: %d %s", code, body)
		}
		if code, body := admin.post(autumn+"/delete", nil); code != 200 || !strings.Contains(body, "Draft deleted.") || strings.Contains(body, "Autumn news") {
			t.Fatalf("deleting the draft: %d %s", code, body)
		}
		if code, body := admin.post(tp+"/"+tid+"/delete", nil); code != 200 || !strings.Contains(body, "Template deleted.") {
			t.Fatalf("template delete: %d %s", code, body)
		}

		agent := e.signIn(admin, "agent@acme.example", "agent")
		if code, body := agent.get(base); code != 403 || strings.Contains(body, "Spring news") {
			t.Fatalf("agent: %d", code)
		}
		if _, body := agent.get(e.srv.URL + "/admin/"); strings.Contains(body, `href="/admin/campaigns"`) {
			t.Fatal("the agent's menu shows Campaigns")
		}
	})
}
