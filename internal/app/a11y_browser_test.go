package app_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/docs"
	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/browsertest"
	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/clientip"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webhook"
	"github.com/consentry/consentry/internal/workflow"
)

// getRoutes returns the GET routes the Go files of dir (a package of this
// module) register, as written after "GET ": a pattern, or the name of the
// constant it is built from.
func getRoutes(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`"GET ([^"]*)"(?:\s*\+\s*([\w.]+))?`)
	var routes []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			routes = append(routes, m[1]+m[2])
		}
	}
	if len(routes) == 0 {
		t.Fatalf("no GET routes found in %s", dir)
	}
	return routes
}

// skippedPages are the GET routes that are not pages a person reads, each
// with the reason it is not checked.
var skippedPages = map[string]string{
	"/admin/static/": "the stylesheet and scripts",
	"staticPrefix":   "the public pages' stylesheet, which every public page loads (see check)",
	"/{$}":           "redirects to the dashboard",
	"/admin":         "redirects to the dashboard",
	"/admin/campaigns/{id}/preview/{contact}/html": "the operator's own message, in a sandboxed frame of the campaign page",
	"/m/v/{rid}/{sig}":                               "the operator's own message, as sent",
	"/m/o/{rid}/{sig}":                               "the open pixel, an image",
	"/m/c/{rid}/{n}/{sig}":                           "a click's redirect to the operator's link",
	"settings.LogoPath":                              "the operator's logo, an image",
	"/admin/imports/{id}/progress":                   "the progress a running import's page polls, as JSON",
	"/admin/imports/{id}/report.csv":                 "an import's report, a CSV file",
	"/admin/repermission/{id}/report.csv":            "a re-permission run's report, a CSV file",
	"/admin/contacts/{id}/consents/{record}/receipt": "a consent receipt, a JSON file",
	"/admin/contacts/{id}/audit-bundle":              "a contact's audit bundle, a zip file",
	"/admin/mailbox/{id}/attachments/{n}":            "a dev-mailbox message's attachment, a file to save",
	"/dev/mailbox/{id}/attachments/{n}":              "a dev-mailbox message's attachment, a file to save",
	"/ledger/checkpoint":                             "the ledger's signed checkpoint, plain text",
	"/ledger/consistency":                            "a consistency proof, JSON",
	"/ledger/key":                                    "the verifier keys, plain text",
	"tilePrefix":                                     "the ledger tree's tiles, raw hashes",
	"JWKSPath":                                       "the signing keys, a JSON key set",
	"receipts.LinkPath":                              "a receipt email's download, a JSON file (an unusable link gets the neutral page /confirm/{token} gets)",
}

// a11y checks pages in one browser tab: each at 1280 and then at 375
// pixels with axe-core, that it fits the width, that it came with a
// Content-Security-Policy, and that a public page is in the language the
// tab asks for; it counts the routes it saw.
type a11y struct {
	t    testing.TB
	ctx  context.Context
	base string
	// lang is the language the tab asks for (Accept-Language), which
	// every public page must be in.
	lang string
	seen map[string]bool
	// checked holds the parts of documents checked already (a page's
	// header, and the rest): a page made only of parts checked before (the
	// page that refuses a role, say, or a page another role saw with
	// other navigation) is not checked again, as axe-core would find the
	// same in it.
	checked map[[sha256.Size]byte]bool
	shots   int
}

// visit opens url (a path of the service, or a whole link), which route
// serves, checks the page it ends on and returns its HTTP status.
func (a *a11y) visit(route, url string) int {
	a.t.Helper()
	if strings.HasPrefix(url, "/") {
		url = a.base + url
	}
	if err := chromedp.Do(a.ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		a.t.Fatal(err)
	}
	res, err := chromedp.Run(a.ctx, chromedp.NavigateResponse(url))
	if err != nil {
		a.t.Fatalf("%s: %v", url, err)
	}
	return a.check(route, res)
}

// press clicks the button css selects, which leads to a page of route,
// and checks that page.
func (a *a11y) press(route, css string) {
	a.t.Helper()
	if err := chromedp.Do(a.ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		a.t.Fatal(err)
	}
	// A click that leads nowhere fails here rather than at the test's
	// deadline.
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	res, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(css)))
	if err != nil {
		a.t.Fatalf("%s: click %s: %v", route, css, err)
	}
	a.check(route, res)
}

// speak makes the tab ask for pages in lang, as a browser set to that
// language does, and, unless from is "", come from that address through
// the service's trusted proxy: the public pages' rate limit counts each
// address's requests.
func (a *a11y) speak(lang, from string) {
	a.t.Helper()
	h := network.Headers{"Accept-Language": lang}
	if from != "" {
		h["X-Forwarded-For"] = from
	}
	if _, err := chromedp.Call(a.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: h}); err != nil {
		a.t.Fatal(err)
	}
	a.lang = lang
}

// check checks the page showing now, which res brought, and returns its
// HTTP status.
func (a *a11y) check(route string, res *network.Response) int {
	a.t.Helper()
	a.seen[route] = true
	where := strings.TrimPrefix(res.URL, a.base)
	if res.Status >= 500 {
		a.t.Errorf("%s: status %d", where, res.Status)
	}
	csp := ""
	for k, v := range res.Headers {
		if strings.EqualFold(k, "Content-Security-Policy") {
			csp, _ = v.(string)
		}
	}
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		a.t.Errorf("%s: Content-Security-Policy %q", where, csp)
	}
	// Styles come from the service's stylesheet, which the policy lets
	// load and which did: no inline style is allowed, and none is there
	// to be blocked (emails keep theirs; they are not served as pages).
	if strings.Contains(csp, "'unsafe-inline'") || !strings.Contains(csp, "style-src 'self'") {
		a.t.Errorf("%s: Content-Security-Policy %q allows inline styles, or not the stylesheet", where, csp)
	}
	styled, err := chromedp.Run(a.ctx, chromedp.Evaluate[string](`(() => {
		if (document.querySelector("style, [style]")) return "an inline style: " + document.querySelector("style, [style]").outerHTML.slice(0, 120);
		const sheets = [...document.styleSheets].filter(s => s.href && s.cssRules.length > 0);
		return sheets.length > 0 ? "" : "no stylesheet loaded";
	})()`))
	if err != nil {
		a.t.Fatal(err)
	}
	if styled != "" {
		a.t.Errorf("%s: %s", where, styled)
	}
	// The page's header (the admin UI's navigation, which differs by role
	// and section) apart from the rest of the document.
	doc, err := chromedp.Run(a.ctx, chromedp.Evaluate[[]string](`(() => {
		const header = document.querySelector("body > header");
		const html = document.documentElement.outerHTML;
		return [document.documentElement.lang, header ? html.replace(header.outerHTML, "") : html, header ? header.outerHTML : ""];
	})()`))
	if err != nil {
		a.t.Fatal(err)
	}
	if !strings.HasPrefix(route, "/admin") && doc[0] != a.lang {
		a.t.Errorf("%s: a page in %q, asked for in %q", where, doc[0], a.lang)
	}
	// A page whose header and rest were each checked already, in other
	// pages, is not checked again: the pages that differ only in their
	// navigation, as the same page does for another role, would find the
	// same in each part.
	rest, header := sha256.Sum256([]byte("rest\x00"+doc[1])), sha256.Sum256([]byte("header\x00"+doc[2]))
	if a.checked[rest] && a.checked[header] {
		return int(res.Status)
	}
	a.checked[rest], a.checked[header] = true, true
	for _, width := range []int64{1280, 375} {
		if err := chromedp.Do(a.ctx, chromedp.EmulateViewport(width, 800)); err != nil {
			a.t.Fatal(err)
		}
		bad := false
		for _, v := range browsertest.AxeViolations(a.t, a.ctx) {
			a.t.Errorf("%s at %d px: accessibility: %s", where, width, v)
			bad = true
		}
		fits, err := chromedp.Run(a.ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
		if err != nil {
			a.t.Fatal(err)
		}
		if !fits {
			a.t.Errorf("%s is wider than %d pixels", where, width)
			bad = true
		}
		if bad {
			a.screenshot(where, width)
		}
	}
	return int(res.Status)
}

// screenshot saves the whole page in the test's artifact directory (kept
// with go test -artifacts) and logs where.
func (a *a11y) screenshot(where string, width int64) {
	a.t.Helper()
	png, err := chromedp.Run(a.ctx, chromedp.FullScreenshot(100)) // quality 100 makes a PNG
	if err != nil {
		a.t.Fatal(err)
	}
	a.shots++
	name := fmt.Sprintf("%02d-%s-%s-%d.png", a.shots, a.lang, strings.Trim(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(where, "-"), "-"), width)
	if len(name) > 100 {
		name = name[:96] + ".png"
	}
	path := filepath.Join(a.t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		a.t.Fatal(err)
	}
	a.t.Logf("screenshot of %s at %d px: %s", where, width, path)
}

// mailLink waits for an email to the address to with a link to the
// service starting with path, and returns the link.
func mailLink(e *env, to, path string) string {
	e.t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(e.srv.URL+path) + `[^\s<>"]+`)
	for n := 1; ; n++ {
		for _, m := range e.smtp.Wait(e.t, n) {
			if !slices.Contains(m.To, to) {
				continue
			}
			if l := re.FindString(m.Text + " " + m.HTML + " " + m.Header.Get("List-Unsubscribe")); l != "" {
				return l
			}
		}
	}
}

// erasureAsked is a subject asking for erasure in each language, which the
// confirmation is then written in.
var erasureAsked = map[string]string{"en": "Please DELETE my data", "sv": "RADERA mina uppgifter", "nl": "Verwijder mijn gegevens"}

// pageAt is a page to check: the route that serves it, and its address.
type pageAt struct{ route, url string }

// TestEveryPageIsAccessible opens every page of the admin UI and of the
// public pages in Chromium, on both databases, with data on each: a
// contact with consents and a sensitive value, purposes, a list, a
// webform, a campaign draft and a sent one, requests, an API token. Each
// page passes axe-core with no violation at 1280 and 375 pixels, fits the
// width, has a Content-Security-Policy that allows no inline style, and
// is styled by its stylesheet, with no inline style; a failing page is saved as a
// screenshot whose path the log gives. The admin UI is checked as the
// admin sees it and as each other role does, the pages it may open and
// the one that refuses it the others; the public pages are checked in
// every language the product speaks, each page in the language the
// browser asks for. Every GET route of the admin UI and of the public
// pages is visited or listed in skippedPages with a reason, so a new page
// cannot go unchecked.
func TestEveryPageIsAccessible(t *testing.T) {
	routes := append(getRoutes(t, "web"), getRoutes(t, "public")...)
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		// Each database in a tab of its own, with its own cookies: both
		// services are on 127.0.0.1, and cookies do not tell ports apart.
		t.(*testing.T).Parallel()
		tab := browsertest.Tab(t, 20*time.Minute)
		rc := newReceiver(t)
		e := start(t, db, localWebhooks, func(a *app.App) {
			a.Config.InboundSMTPAddr = "127.0.0.1:0"
			a.Public.Mailbox = true
			proxy, err := clientip.Parse("127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			a.Public.IPs = proxy
		})
		e.api("PATCH", "/api/v1/settings", `{"privacy_address":"`+privacyAddress+`"}`, 200, nil)
		a := &a11y{t: t, ctx: tab, base: e.srv.URL, seen: map[string]bool{}, checked: map[[sha256.Size]byte]bool{}}
		d := driver{t, tab}
		ctx := context.Background()

		// Before anyone signs in.
		a.speak(i18n.Languages[0], "")
		a.visit("/admin/setup/{token}", e.setupLink())
		d.firstAdmin(e)

		// The data the pages show, with what the public pages need in
		// each language: a preferences link, a campaign's recipient, a
		// contact asked to confirm, a webform.
		id, prefs := pageSetUp(e)
		prefsLinks := map[string]string{i18n.Languages[0]: prefs}
		// A workflow rule that acts on the request below, so that its
		// run log has a run.
		if _, err := e.a.WorkflowRunner.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		rule, err := e.a.Workflows.Create(ctx, audit.Actor{Kind: "user"}, workflow.Definition{Name: "Stage on request", Trigger: "request.created",
			Condition: `event.kind == "access"`, Actions: []workflow.Action{{Type: workflow.SetField, Field: "stage", Value: "Asked"}}})
		if err != nil {
			t.Fatal(err)
		}
		var dsr struct{ ID string }
		e.api("POST", "/api/v1/requests", `{"kind":"access","contact_id":"`+id+`","note":"asked by phone"}`, 201, &dsr)
		forms := map[string]string{}
		for _, lang := range i18n.Languages {
			if lang != i18n.Languages[0] {
				var c struct{ ID string }
				e.api("POST", "/api/v1/contacts", `{"email":"lena.`+lang+`@example.com","language":"`+lang+`","fields":{"card_number":"4111111111111111"},
					"consents":[{"purpose":"Card on file","state":"granted","source":"Web form"}]}`, 201, &c)
				e.api("PUT", "/api/v1/contacts/"+c.ID+"/lists/Newsletter", `{"state":"subscribed"}`, 200, nil)
				var link struct{ URL string }
				e.api("POST", "/api/v1/contacts/"+c.ID+"/preferences-link", "", 201, &link)
				prefsLinks[lang] = link.URL
			}
			anna := campaignPerson(t, e, "anna."+lang+"@example.com", "E-marketing")
			e.api("PATCH", "/api/v1/contacts/"+anna, `{"language":"`+lang+`"}`, 200, nil)
			if _, err := e.a.Lists.Set(ctx, anna, "Newsletter", lists.Subscribed, lists.SourceAPI, nil); err != nil {
				t.Fatal(err)
			}
			var form struct{ ID string }
			e.api("POST", "/api/v1/webforms", `{"name":"signup-`+lang+`","title":"Sign up","language":"`+lang+`",
				"fields":[{"name":"email"},{"name":"first_name","label":"First name"}],
				"lists":[{"list":"Newsletter","label":"Monthly news"}],"consents":[{"purpose":"Card on file","label":"Keep my card"}],
				"marketing":{},"privacy_policy_url":"https://acme.example/privacy"}`, 201, &form)
			forms[lang] = form.ID
		}
		sendCampaign(t, e, "Spring", []string{"Newsletter"}, "", len(i18n.Languages))
		tpl, err := e.a.Campaigns.CreateTemplate(ctx, audit.Actor{Kind: "user"}, campaign.TemplateInput{Name: ptr("Plain"), HTML: ptr(`<div>{{content}}</div><p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>`)})
		if err != nil {
			t.Fatal(err)
		}
		draft, err := e.a.Campaigns.Create(ctx, audit.Actor{Kind: "user"}, campaign.Input{Name: ptr("Autumn"), Lists: &[]string{"Newsletter"}, TemplateID: ptr(tpl.ID),
			Variants: &[]campaign.Variant{{Language: "en", Subject: "Autumn news", HTML: "<p>Hello {{first_name}}</p>"}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, lang := range i18n.Languages {
			var c struct{ ID string }
			e.api("POST", "/api/v1/contacts", `{"email":"bea.`+lang+`@example.com","first_name":"Bea","language":"`+lang+`"}`, 201, &c)
			e.api("POST", "/api/v1/double-opt-in", `{"contact_ids":["`+c.ID+`"]}`, 200, nil)
		}

		// The admin UI.
		record, form := "/admin/contacts/"+id, forms[i18n.Languages[0]]
		var sent string
		if err := db.Read.QueryRowContext(ctx, `SELECT id FROM campaigns WHERE name = 'Spring'`).Scan(&sent); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			runs, _, err := e.a.Workflows.Runs(ctx, workflow.RunQuery{RuleID: rule.ID})
			return err == nil && len(runs) == 1
		})
		pages := []pageAt{{"/admin/{$}", "/admin/"}, {"/admin/contacts", "/admin/contacts"}, {"/admin/contacts/new", "/admin/contacts/new"},
			{"/admin/contacts/{id}", record}, {"/admin/contacts/{id}/erasure", record + "/erasure"},
			{"/admin/outbox", "/admin/outbox"}, {"/admin/mailbox", "/admin/mailbox"}, {"/admin/access-log", "/admin/access-log"},
			{"/admin/ledger", "/admin/ledger"}, {"/admin/audit-log", "/admin/audit-log"}, {"/admin/audit-log", "/admin/audit-log?kind=webform"},
			{"/admin/campaigns", "/admin/campaigns"}, {"/admin/campaigns/new", "/admin/campaigns/new"},
			{"/admin/campaigns/{id}", "/admin/campaigns/" + sent}, {"/admin/campaigns/{id}", "/admin/campaigns/" + draft.ID},
			{"/admin/campaigns/{id}", "/admin/campaigns/" + draft.ID + "?contact=anna.en%40example.com"},
			{"/admin/campaigns/{id}/edit", "/admin/campaigns/" + draft.ID + "/edit"}, {"/admin/campaign-templates", "/admin/campaign-templates"},
			{"/admin/campaign-templates/new", "/admin/campaign-templates/new"}, {"/admin/campaign-templates/{id}", "/admin/campaign-templates/" + tpl.ID},
			{"/admin/lists", "/admin/lists"}, {"/admin/lists/{id}", "/admin/lists/" + listID(e, "Newsletter")},
			{"/admin/requests", "/admin/requests"}, {"/admin/requests/new", "/admin/requests/new"}, {"/admin/requests/{id}", "/admin/requests/" + dsr.ID},
			{"/admin/retention", "/admin/retention"}, {"/admin/settings", "/admin/settings"}, {"/admin/settings/purposes", "/admin/settings/purposes"},
			{"/admin/settings/purposes/{id}", "/admin/settings/purposes/" + purposeID(e, "Card on file")}, {"/admin/settings/sources", "/admin/settings/sources"},
			{"/admin/settings/fields", "/admin/settings/fields"}, {"/admin/settings/preferences-page", "/admin/settings/preferences-page"},
			{"/admin/settings/tokens", "/admin/settings/tokens"}, {"/admin/users", "/admin/users"}, {"/admin/account", "/admin/account"},
			{"/admin/webforms", "/admin/webforms"}, {"/admin/webforms/new", "/admin/webforms/new"}, {"/admin/webforms/{id}", "/admin/webforms/" + form},
			{"/admin/webforms/{id}/edit", "/admin/webforms/" + form + "/edit"},
			{"/admin/workflows", "/admin/workflows"}, {"/admin/workflows/new", "/admin/workflows/new"}, {"/admin/workflows/{id}", "/admin/workflows/" + rule.ID},
			{"/admin/workflows/{id}/runs", "/admin/workflows/" + rule.ID + "/runs"}, {"/admin/workflows/runs", "/admin/workflows/runs?contact=" + id},
			// A page for a contact that does not exist.
			{"/admin/contacts/{id}", "/admin/contacts/no-such-contact"},
		}
		guides, err := fs.Glob(docs.Guides, "*.md")
		if err != nil || len(guides) == 0 {
			t.Fatalf("guides: %v %v", guides, err)
		}
		for _, g := range guides {
			pages = append(pages, pageAt{"/admin/docs/{name}", "/admin/docs/" + strings.TrimSuffix(g, ".md")})
		}
		for _, p := range pages {
			a.visit(p.route, p.url)
		}
		// A consent's proof, and the text it was given to.
		d.do(chromedp.Navigate(e.srv.URL + record))
		proof, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector("a.proof-link").getAttribute("href")`))
		if err != nil {
			t.Fatal(err)
		}
		a.visit("/admin/contacts/{id}/consents/{record}", proof)
		text, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector("#proof-text-link").getAttribute("href")`))
		if err != nil {
			t.Fatal(err)
		}
		a.visit("/admin/purposes/{id}/texts/{version}", text)
		pages = append(pages, pageAt{"/admin/contacts/{id}/consents/{record}", proof}, pageAt{"/admin/purposes/{id}/texts/{version}", text})
		// A revealed value, and a new token's secret: each shown once.
		d.do(chromedp.Navigate(e.srv.URL+record), chromedp.Click(chromedp.CSS("#reveal-open-card_number")),
			chromedp.SendKeys(chromedp.CSS("#reason-card_number"), "Card query"))
		a.press("/admin/contacts/{id}/reveal/{field}/{grant}", "#reveal-card_number")
		d.do(chromedp.Navigate(e.srv.URL+"/admin/settings/tokens"), chromedp.SendKeys(chromedp.CSS("#name"), "CRM"))
		a.press("/admin/settings/tokens/{id}/created/{grant}", `form[action="/admin/settings/tokens"] button[type="submit"]`)
		// A webhook endpoint's secret, shown once when it is added and when
		// it is rotated, and its delivery of a contact created since.
		d.do(chromedp.Navigate(e.srv.URL+"/admin/webhooks"), chromedp.SendKeys(chromedp.CSS("#url"), rc.URL))
		a.press("/admin/webhooks/{id}/created/{grant}", "#add-webhook")
		endpoints, err := e.a.Webhooks.List(ctx)
		if err != nil || len(endpoints) != 1 {
			t.Fatalf("webhook endpoints: %v %v", endpoints, err)
		}
		hook := "/admin/webhooks/" + endpoints[0].ID
		e.api("POST", "/api/v1/contacts", `{"email":"hooked@example.com"}`, 201, nil)
		var delivery string
		waitFor(t, func() bool {
			ds, err := e.a.Webhooks.Deliveries(ctx, endpoints[0].ID, webhook.Page{})
			if err != nil || len(ds) == 0 || ds[0].Status != webhook.StatusDelivered {
				return false
			}
			delivery = hook + "/deliveries/" + itoa(ds[0].ID)
			return true
		})
		hookPages := []pageAt{{"/admin/webhooks", "/admin/webhooks"}, {"/admin/webhooks/{id}", hook},
			{"/admin/webhooks/{id}/deliveries/{delivery}", delivery}, {"/admin/webhooks/{id}", "/admin/webhooks/no-such-endpoint"}}
		for _, p := range hookPages {
			a.visit(p.route, p.url)
		}
		pages = append(pages, hookPages...)
		// An import waiting for its mapping, with a preview, and one that
		// ran, with its report.
		importPages := importsToCheck(t, e)
		for _, p := range importPages {
			a.visit(p.route, p.url)
		}
		pages = append(pages, importPages...)
		d.do(chromedp.Navigate(e.srv.URL + hook))
		a.press("/admin/webhooks/{id}/rotated/{grant}", "#rotate-secret")
		// Forms sent empty, with their errors.
		for route, action := range map[string]string{"/admin/contacts/new": "/admin/contacts", "/admin/account": "/admin/account",
			"/admin/settings/purposes": "/admin/settings/purposes", "/admin/requests/new": "/admin/requests", "/admin/workflows/new": "/admin/workflows",
			"/admin/webhooks": "/admin/webhooks"} {
			d.do(chromedp.Navigate(e.srv.URL+route),
				chromedp.Evaluate[chromedp.Void](`document.querySelector('form[action="`+action+`"]').noValidate = true`))
			a.press(route, `form[action="`+action+`"] button[type="submit"]`)
			if n, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll(".error").length`)); err != nil || n == 0 {
				t.Errorf("%s sent empty shows no error (%v)", route, err)
			}
		}

		// The admin UI as each other role sees it: the pages it may open,
		// and the one that refuses it the others. The other roles and
		// languages show the same data in other words, so they are
		// checked on SQLite only: each check takes seconds.
		roles, languages := auth.Roles, i18n.Languages
		if db.Dialect != store.SQLite {
			roles, languages = nil, languages[:1]
		}
		for _, role := range roles {
			if role == auth.RoleAdmin {
				continue
			}
			email := strings.ReplaceAll(role, "_", ".") + "@acme.example"
			if _, err := e.a.Users.Create(ctx, audit.Actor{Kind: "user"}, auth.NewUser{Email: email, Name: role, Role: role, Password: "a long enough password"}); err != nil {
				t.Fatal(err)
			}
			d.do(chromedp.Navigate(e.srv.URL+"/admin/account"), chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.CSS("#password")),
				chromedp.SendKeys(chromedp.CSS("#email"), email), chromedp.SendKeys(chromedp.CSS("#password"), "a long enough password"),
				chromedp.Submit(chromedp.CSS("#password")), chromedp.WaitVisible(chromedp.CSS(".signout")))
			refused := 0
			for _, p := range pages {
				if a.visit(p.route, p.url) == http.StatusForbidden {
					refused++
				}
			}
			if refused == 0 {
				t.Errorf("the %s role may open every page, so the page that refuses was not checked", role)
			}
		}

		// The public pages, in each language, each asked for by a person
		// of their own.
		for i, lang := range languages {
			a.speak(lang, fmt.Sprintf("192.0.2.%d", 10+i))
			bea, wim, anna := "bea."+lang+"@example.com", "wim."+lang+"@example.nl", "anna."+lang+"@example.com"
			lena := "lena@example.com"
			if lang != i18n.Languages[0] {
				lena = "lena." + lang + "@example.com"
			}
			// The double opt-in link and its answer.
			a.visit("/confirm/{token}", mailLink(e, bea, "/confirm/"))
			a.press("/p/confirmed", "form button")
			// The hosted webform, filled in with a known address, and the
			// confirmation that asks.
			a.visit("/f/{form}", "/f/"+forms[lang])
			d.do(chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), bea), chromedp.Click(chromedp.CSS(`input[name="marketing.checked"]`)))
			a.press("/f/sent", `form button[type="submit"]`)
			a.visit("/f/confirm/{token}", mailLink(e, bea, "/f/confirm/"))
			a.press("/p/form-confirmed", "form button")
			// A request emailed to the privacy address, and its
			// confirmation.
			if err := smtp.SendMail(e.a.InboundSMTP.BoundAddr().String(), nil, wim, []string{privacyAddress},
				[]byte(rawMessage(wim, erasureAsked[lang]))); err != nil {
				t.Fatal(err)
			}
			a.visit("/r/{token}", mailLink(e, wim, "/r/"))
			a.press("/r/confirmed", "form button")
			// The campaign's unsubscribe page, its answer, and its link to
			// the preferences page.
			a.visit("/m/u/{rid}/{sig}", mailLink(e, anna, "/m/u/"))
			a.press("/m/u/done", `form button[type="submit"]`)
			a.visit("/m/p/{rid}/{sig}", mailLink(e, anna, "/m/p/"))
			// The preferences page through its link: a change, its
			// confirmation, and a download of one's data.
			a.visit("/p/{token}", prefsLinks[lang])
			a.visit("/p", "/p")
			d.do(chromedp.Click(chromedp.CSS("#c-" + purposeID(e, "Card on file") + "-no")))
			a.press("/p/sent", "#save")
			a.visit("/p/confirm/{token}", mailLink(e, lena, "/p/confirm/"))
			a.press("/p/done", "form button")
			a.visit("/p", "/p")
			a.press("/p/export/sent", "#ask-export")
			a.visit("/p/export/{token}", mailLink(e, lena, "/p/export/"))
			a.visit("/u/sent", "/u/sent")
			// Closing the page on this device, and the page that says so.
			a.visit("/p", "/p")
			a.press("/p/ended", `form[action="/p/end"] button`)
			// Links that are not (or no longer) valid.
			for route, url := range map[string]string{"/p/{token}": "/p/not-a-link", "/u/{token}": "/u/not-a-link", "/confirm/{token}": "/confirm/not-a-link",
				"/p/link-invalid": "/p/link-invalid", "/p/not-applied": "/p/not-applied",
				"/f/{form}": "/f/no-such-form", "/r/{token}": "/r/not-a-link", "/p/export/{token}": "/p/export/not-a-link"} {
				a.visit(route, url)
			}
		}
		// The development mailbox, shown only to this machine.
		a.speak(i18n.Languages[0], "")
		a.visit("/dev/mailbox", "/dev/mailbox")

		// Signed out: the sign-in page, and one with an error.
		d.do(chromedp.Navigate(e.srv.URL+"/admin/account"), chromedp.Click(chromedp.CSS(".signout button")),
			// The account page has a #password too: wait for the sign-in form's own.
			chromedp.WaitVisible(chromedp.CSS(`#password[autocomplete="current-password"]`)))
		a.visit("/admin/login", "/admin/login")
		d.do(chromedp.SendKeys(chromedp.CSS("#email"), "ada@acme.example"), chromedp.SendKeys(chromedp.CSS("#password"), "wrong password"))
		a.press("/admin/login", `form button[type="submit"]`)

		for _, r := range routes {
			if _, skip := skippedPages[r]; !a.seen[r] && !skip {
				t.Errorf("GET %s is neither visited nor listed in skippedPages with a reason", r)
			}
		}
		for r := range a.seen {
			if !slices.Contains(routes, r) {
				t.Errorf("visited %s, which is not a GET route", r)
			}
		}
	})
	for r := range skippedPages {
		if !slices.Contains(routes, r) {
			t.Errorf("skippedPages lists %s, which is not a GET route", r)
		}
	}
}
