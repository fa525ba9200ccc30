package app_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webform"
)

// TestListPages: lists are made and changed through their pages, each
// post redirecting with a notice; a bad one is refused next to its field
// with what was typed kept and nothing written; the list page counts each
// list's subscribers. An agent may not see them.
func TestListPages(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		base := e.srv.URL + "/admin/lists"
		ctx := context.Background()

		if code, body := admin.get(base); code != 200 || !strings.Contains(body, "No list yet.") || !strings.Contains(body, `href="/admin/lists" aria-current="page"`) {
			t.Fatalf("empty lists: %d %s", code, body)
		}
		code, body := admin.post(base, url.Values{"name": {" "}, "description": {"Kept as typed"}, "public": {"off", "on"}})
		if code != 400 || !strings.Contains(body, `id="name-error" role="alert"`) || !strings.Contains(body, ">Kept as typed</textarea>") {
			t.Fatalf("a list without a name: %d %s", code, body)
		}
		if all, _ := e.a.Lists.All(ctx); len(all) != 0 {
			t.Fatalf("a refused list was written: %+v", all)
		}
		code, body = admin.post(base, url.Values{"name": {"Newsletter"}, "description": {"Monthly news"}, "public": {"off", "on"}})
		if code != 200 || admin.last.Request.URL.RequestURI() != "/admin/lists?done=created" || !strings.Contains(body, "List created.") {
			t.Fatalf("creating a list: %d at %s: %s", code, admin.last.Request.URL, body)
		}
		code, body = admin.post(base, url.Values{"name": {"NEWSLETTER"}, "description": {"again"}, "public": {"off"}})
		if code != 409 || !strings.Contains(body, `id="name-error" role="alert"`) || !strings.Contains(body, `value="NEWSLETTER"`) {
			t.Fatalf("a taken name: %d %s", code, body)
		}
		l, err := e.a.Lists.Get(ctx, "Newsletter")
		if err != nil || !l.Public || l.Description != "Monthly news" {
			t.Fatalf("list: %+v %v", l, err)
		}

		// Two subscribers and one who left: the page counts two.
		for i, email := range []string{"ann@example.com", "bo@example.com", "cy@example.com"} {
			var c struct{ ID string }
			e.api("POST", "/api/v1/contacts", `{"email":"`+email+`"}`, 201, &c)
			state := "subscribed"
			if i == 2 {
				state = "unsubscribed"
			}
			e.api("PUT", "/api/v1/contacts/"+c.ID+"/lists/"+l.ID, `{"state":"`+state+`"}`, 200, nil)
		}
		if _, body := admin.get(base); !strings.Contains(body, `<td class="subscribers">2</td>`) || !strings.Contains(body, "Public") {
			t.Fatalf("subscriber count: %s", body)
		}

		page := base + "/" + l.ID
		if _, body := admin.get(page); !strings.Contains(body, `value="Newsletter"`) || !strings.Contains(body, `name="public" value="on" checked`) {
			t.Fatalf("edit page: %s", body)
		}
		code, body = admin.post(page, url.Values{"name": {"News\nletter"}, "description": {"Changed"}, "public": {"off"}})
		if code != 400 || !strings.Contains(body, `id="name-error" role="alert"`) || !strings.Contains(body, ">Changed</textarea>") {
			t.Fatalf("a name on two lines: %d %s", code, body)
		}
		code, body = admin.post(page, url.Values{"name": {"Internal"}, "description": {""}, "public": {"off"}})
		if code != 200 || admin.last.Request.URL.RequestURI() != "/admin/lists?done=saved" || !strings.Contains(body, "List saved.") || !strings.Contains(body, "Private") {
			t.Fatalf("saving a list: %d %s", code, body)
		}
		if l, _ := e.a.Lists.Get(ctx, l.ID); l.Name != "Internal" || l.Public {
			t.Fatalf("saved list: %+v", l)
		}

		agent := e.signIn(admin, "agent@acme.example", auth.RoleAgent)
		if code, _ := agent.get(base); code != 403 {
			t.Fatalf("an agent's list page: %d", code)
		}
		if code, _ := agent.post(base, url.Values{"name": {"Agents"}}); code != 403 {
			t.Fatalf("an agent's new list: %d", code)
		}
		if _, body := agent.get(e.srv.URL + "/admin/"); strings.Contains(body, `href="/admin/lists"`) || strings.Contains(body, `href="/admin/webforms"`) {
			t.Fatal("an agent's menu offers lists or webforms")
		}
		if _, body := admin.get(e.srv.URL + "/admin/"); !strings.Contains(body, `<a href="/admin/lists">Lists</a>`) || !strings.Contains(body, `<a href="/admin/webforms">Webforms</a>`) {
			t.Fatal("the admin's menu lacks lists or webforms")
		}

		code, body = admin.post(page+"/delete", url.Values{})
		if code != 200 || !strings.Contains(body, "List deleted.") || !strings.Contains(body, "No list yet.") {
			t.Fatalf("deleting: %d %s", code, body)
		}
	})
}

// webformPost is a valid new webform's editor post: the first name asked
// for and required, the Newsletter list, a consent box for Sales and
// service and the marketing box.
func webformPost(listID, sales string) url.Values {
	return url.Values{"name": {"signup"}, "title": {"Sign up"}, "language": {"en"}, "privacy_policy_url": {"https://acme.example/privacy"},
		"redirect_url": {""}, "submit_label": {""},
		"field": {"email", "first_name", "last_name"}, "field_on": {"email", "first_name"}, "field_required": {"email", "first_name"},
		"field_label.email": {""}, "field_label.first_name": {"Your first name"}, "field_label.last_name": {""},
		"list": {listID}, "list_on": {listID}, "list_label." + listID: {""},
		"consent": {sales}, "consent_on": {sales}, "consent_label." + sales: {""},
		"marketing": {"on"}, "marketing_purpose": {optin.EMarketing}, "marketing_label": {""}}
}

// TestWebformPages: a webform is made and changed through its editor,
// each post redirecting to its page with a notice; a bad definition is
// refused by the webform package next to the input it is about, with what
// was typed kept and nothing written. The form's page has the hosted
// form's address, the snippet and a preview made by the public page's
// code. An agent may not see them.
func TestWebformPages(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		base := e.srv.URL + "/admin/webforms"
		var list, sales struct{ ID string }
		e.api("POST", "/api/v1/lists", `{"name":"Newsletter","description":"Monthly news"}`, 201, &list)
		e.api("GET", "/api/v1/purposes/Sales%20and%20service", "", 200, &sales)

		if code, body := admin.get(base); code != 200 || !strings.Contains(body, "No webform yet.") {
			t.Fatalf("empty webforms: %d %s", code, body)
		}
		if _, body := admin.get(base + "/new"); !strings.Contains(body, `name="marketing" value="on" checked`) || !strings.Contains(body, "Ask for consent to Sales and service") {
			t.Fatalf("new webform: %s", body)
		}
		bad := func(change url.Values, status int, input string) {
			t.Helper()
			f := webformPost(list.ID, sales.ID)
			for k, v := range change {
				f[k] = v
			}
			code, body := admin.post(base, f)
			if code != status || !strings.Contains(body, `id="`+input+`-error" role="alert"`) || !strings.Contains(body, `aria-describedby="`+input+`-error"`) ||
				!strings.Contains(body, `value="Your first name"`) {
				t.Fatalf("%v: %d\n%s", change, code, body)
			}
			var all []any
			if e.api("GET", "/api/v1/webforms", "", 200, &all); len(all) != 0 {
				t.Fatalf("%v: a refused form was written", change)
			}
		}
		bad(url.Values{"privacy_policy_url": {"http://acme.example/privacy"}}, 400, "privacy_policy_url")
		bad(url.Values{"name": {""}}, 400, "name")
		bad(url.Values{"marketing_purpose": {sales.ID}}, 400, "consent_on."+sales.ID)
		bad(url.Values{"field_label.email": {strings.Repeat("x", 201)}}, 400, "field_label.email")

		code, body := admin.post(base, webformPost(list.ID, sales.ID))
		if code != 200 || !strings.Contains(body, "Webform saved.") {
			t.Fatalf("saving: %d %s", code, body)
		}
		page := admin.last.Request.URL
		id := strings.TrimPrefix(page.Path, "/admin/webforms/")
		hosted := e.srv.URL + "/f/" + id
		for _, want := range []string{`id="hosted-url" class="wide" value="` + hosted + `"`, `action=&#34;` + hosted + `&#34;`,
			`<div class="webform-preview" id="webform-preview" inert>`, `<label for="wf` + id[len(id)-8:] + `-first_name">Your first name (required)</label>`,
			"Yes, I would like to receive newsletters"} {
			if !strings.Contains(body, want) {
				t.Fatalf("the form's page lacks %s:\n%s", want, body)
			}
		}
		var w webform.Webform
		e.api("GET", "/api/v1/webforms/"+id, "", 200, &w)
		if len(w.Fields) != 2 || !w.Fields[1].Required || w.Marketing == nil || len(w.Consents) != 1 || len(w.Lists) != 1 {
			t.Fatalf("stored: %+v", w)
		}
		if _, body := admin.get(base); !strings.Contains(body, `<a href="/admin/webforms/`+id+`">signup</a>`) || !strings.Contains(body, "<td>Newsletter</td>") ||
			!strings.Contains(body, "Email marketing (E-marketing), Sales and service") {
			t.Fatalf("webforms list: %s", body)
		}

		// The editor shows the form as stored; leaving the marketing box
		// out removes it, and a redirect URL is kept.
		if _, body := admin.get(base + "/" + id + "/edit"); !strings.Contains(body, `value="Your first name"`) ||
			!strings.Contains(body, `name="field_required" value="first_name" checked`) || !strings.Contains(body, `name="consent_on" value="`+sales.ID+`" checked`) {
			t.Fatalf("edit page: %s", body)
		}
		f := webformPost(list.ID, sales.ID)
		f.Del("marketing")
		f.Set("redirect_url", "https://acme.example/thanks")
		if code, body := admin.post(base+"/"+id+"/edit", f); code != 200 || admin.last.Request.URL.RequestURI() != "/admin/webforms/"+id+"?done=saved" {
			t.Fatalf("saving an edit: %d %s", code, body)
		}
		w = webform.Webform{}
		if e.api("GET", "/api/v1/webforms/"+id, "", 200, &w); w.Marketing != nil || w.RedirectURL != "https://acme.example/thanks" {
			t.Fatalf("after the edit: %+v", w)
		}

		agent := e.signIn(admin, "agent@acme.example", auth.RoleAgent)
		for _, p := range []string{base, base + "/" + id, base + "/" + id + "/edit"} {
			if code, _ := agent.get(p); code != 403 {
				t.Fatalf("an agent at %s: %d", p, code)
			}
		}
		if code, body := admin.post(base+"/"+id+"/delete", url.Values{}); code != 200 || !strings.Contains(body, "Webform deleted.") || !strings.Contains(body, "No webform yet.") {
			t.Fatalf("deleting: %d %s", code, body)
		}
	})
}
