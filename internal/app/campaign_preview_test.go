package app_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// draftPreview is the editor's preview answer.
type draftPreview struct {
	Subject, Text, Note, Field, Error string
}

// previewDraft posts the editor's form to the preview as v and returns
// the status and the answer.
func previewDraft(t testing.TB, v *visitor, f url.Values) (int, draftPreview) {
	t.Helper()
	code, body := v.post(v.e.srv.URL+"/admin/campaigns/preview", f)
	var p draftPreview
	if ct := v.last.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("preview answered %d as %q: %s", code, ct, body)
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("preview answer %q: %v", body, err)
	}
	return code, p
}

// rowCounts counts the rows of every table but those that the service's
// own workers and signed-in sessions change while the test runs (among
// them the ledger's tree, its checkpoints and the key that signs them,
// which the tree's background step writes after the setup's consents),
// and the link key, which any first render makes once per installation.
func rowCounts(t testing.TB, db *store.DB) map[string]int {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	if db.Dialect == store.Postgres {
		q = `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`
	}
	rows, err := db.Read.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	skip := map[string]bool{"jobs": true, "daily_tallies": true, "fence_probe": true, "user_sessions": true,
		"ledger_verifications": true, "campaign_keys": true,
		"ledger_tree": true, "ledger_tree_tiles": true, "ledger_checkpoints": true, "signing_keys": true}
	out := map[string]int{}
	for _, n := range names {
		if !skip[n] {
			out[n] = count(t, db, `SELECT count(*) FROM `+n)
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d tables counted: %v", len(out), out)
	}
	return out
}

// TestCampaignEditorPreview: the editor's live preview renders a draft
// that is not saved, as the example contact Alex Example or as a chosen
// contact would get it, with the code that sends; the same post made into
// the frame answers the HTML under the preview's policy. An unknown tag
// is a 400 naming the field and the tag; a cross-site post, a post
// without a session and a user without the campaigns permission are
// refused; nothing is written. The editor page alone allows its script,
// which is served with its type and a validator.
func TestCampaignEditorPreview(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		admin := e.firstAdmin()
		campaignAudience(e, db)
		officer := e.signIn(admin, "olga@acme.example", "privacy_officer")
		agent := e.signIn(admin, "agent@acme.example", "agent")
		base := e.srv.URL + "/admin/campaigns"

		// The editor, and it only, runs its script; without it the preview is hidden.
		if code, body := admin.get(base + "/new"); code != 200 || !strings.Contains(body, `<script src="/admin/static/campaign-preview.js" defer></script>`) ||
			!strings.Contains(body, `data-endpoint="/admin/campaigns/preview" hidden>`) || !strings.Contains(body, `<iframe sandbox="" title=`) {
			t.Fatalf("editor: %d %s", code, body)
		}
		if csp := admin.last.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") ||
			!strings.Contains(csp, "frame-src 'self'") || !strings.HasPrefix(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
			t.Fatalf("editor policy: %q", csp)
		}
		if _, body := admin.get(base); strings.Contains(body, "<script") || strings.Contains(admin.last.Header.Get("Content-Security-Policy"), "script-src") {
			t.Fatalf("the campaign list allows a script: %q", admin.last.Header.Get("Content-Security-Policy"))
		}
		for file, ctype := range map[string]string{"campaign-preview.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"} {
			code, body := admin.get(e.srv.URL + "/admin/static/" + file)
			h := admin.last.Header
			if code != 200 || h.Get("Content-Type") != ctype || h.Get("Cache-Control") != "no-cache" || h.Get("ETag") == "" || len(body) < 100 {
				t.Fatalf("%s: %d %v", file, code, h)
			}
			req, _ := http.NewRequest("GET", e.srv.URL+"/admin/static/"+file, nil)
			req.Header.Set("If-None-Match", h.Get("ETag"))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusNotModified {
				t.Fatalf("%s again, unchanged: %d", file, res.StatusCode)
			}
		}
		if code, _ := admin.get(e.srv.URL + "/admin/static/nothing.js"); code != 404 {
			t.Fatalf("an unknown static file: %d", code)
		}

		before := rowCounts(t, db)
		// A new campaign, no name yet, as the example contact, in English.
		f := campaignForm("")
		f.Set("preview_language", "en")
		code, p := previewDraft(t, admin, f)
		if code != 200 || p.Subject != "News for Alex" || !strings.Contains(p.Text, "Hello Alex") || p.Error != "" ||
			p.Note != "As the example contact Alex Example would get it, in English (en)." {
			t.Fatalf("example preview: %d %+v", code, p)
		}
		// The same post, made into the frame, answers the HTML under the preview's policy.
		if code, body := admin.post(base+"/preview/html", f); code != 200 || !strings.Contains(body, "<p>Hello Alex</p>") || !strings.Contains(body, `style="max-width:600px`) {
			t.Fatalf("frame: %d %s", code, body)
		}
		if csp := admin.last.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") || strings.Contains(csp, "script-src") ||
			!strings.HasPrefix(admin.last.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("frame headers: %v", admin.last.Header)
		}
		// The Swedish content being edited, by the language it is typed in.
		f.Set("subject_sv", "Nytt för {{first_name}} {{last_name}}")
		f.Set("html_sv", "<p>Hej {{first_name}}</p>")
		f.Set("preview_language", "sv")
		if code, p := previewDraft(t, officer, f); code != 200 || p.Subject != "Nytt för Alex Example" || !strings.Contains(p.Note, "Swedish (sv)") {
			t.Fatalf("Swedish preview: %d %+v", code, p)
		}

		// As a chosen contact: their name and language, and whether they would get it.
		f.Set("preview_contact", "ana@example.com")
		if code, p := previewDraft(t, admin, f); code != 200 || p.Subject != "News for An" || p.Note != "As this contact would get it, in English (en)." {
			t.Fatalf("preview as ana: %d %+v", code, p)
		}
		f.Set("preview_contact", "cy@example.com")
		if code, p := previewDraft(t, admin, f); code != 200 || p.Subject != "News for Cy" ||
			!strings.HasPrefix(p.Note, "This contact would not get it: No consent to the purpose") {
			t.Fatalf("preview as cy: %d %+v", code, p)
		}
		f.Set("preview_contact", "nobody@example.com")
		if code, p := previewDraft(t, admin, f); code != 400 || p.Field != "contact" || p.Error != "Preview as: no contact has this address" {
			t.Fatalf("preview as no one: %d %+v", code, p)
		}
		f.Set("preview_contact", "")

		// Bad content: the field and the tag are named.
		bad := func(field, value, wantField, want string) {
			t.Helper()
			g := url.Values{}
			for k, v := range f {
				g[k] = v
			}
			g.Set(field, value)
			code, p := previewDraft(t, admin, g)
			if code != 400 || p.Field != wantField || !strings.Contains(p.Error, want) || p.Subject != "" {
				t.Fatalf("%s=%q: %d %+v", field, value, code, p)
			}
			if code, body := admin.post(base+"/preview/html", g); code != 400 || !strings.HasPrefix(body, "No preview: ") {
				t.Fatalf("%s=%q into the frame: %d %s", field, value, code, body)
			}
		}
		bad("html_en", "<p>Hello {{frist_name}}</p>", "html_en", "HTML body, English (en): unknown tag {{frist_name}} at character 10")
		bad("subject_sv", "Hej {{name}}", "subject_sv", "Subject, Swedish (sv): unknown tag {{name}}")
		bad("text_en", "Hello {{first_name}", "text_en", "Plain text, English (en): an unclosed tag")
		bad("condition", "lower(email) endsWith", "condition", "Condition: ")
		bad("template_id", "no-such-template", "template_id", "Template: ")

		// Refused: a cross-site post, no session, no permission.
		for _, u := range []string{base + "/preview", base + "/preview/html"} {
			if code := admin.crossSitePost(u, f); code != 403 {
				t.Fatalf("cross-site %s: %d", u, code)
			}
			if code, _ := e.visitor().post(u, f); code != 401 {
				t.Fatalf("%s without a session: %d", u, code)
			}
			if code, body := agent.post(u, f); code != 403 || strings.Contains(body, "Alex") {
				t.Fatalf("an agent's %s: %d %s", u, code, body)
			}
		}

		after := rowCounts(t, db)
		for table, n := range before {
			if after[table] != n {
				t.Errorf("the previews changed %s: %d rows, then %d", table, n, after[table])
			}
		}
	})
}
