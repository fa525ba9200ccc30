package app_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// jobClock holds a's jobs back: the job runner's clock runs an hour
// late until released, so a queued import stays queued for its page to
// be seen, then runs when the test says.
type jobClock struct{ lag atomic.Int64 }

func holdJobs(c *jobClock) func(*app.App) {
	c.lag.Store(int64(time.Hour))
	return func(a *app.App) {
		a.Jobs.Now = func() time.Time { return time.Now().Add(-time.Duration(c.lag.Load())) }
	}
}

func (c *jobClock) release() { c.lag.Store(0) }

// runJobsUntil runs the due jobs until cond holds.
func runJobsUntil(t testing.TB, e *env, cond func() bool) {
	t.Helper()
	waitFor(t, func() bool {
		if _, err := e.a.Jobs.RunDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		return cond()
	})
}

// upload posts a file as the imports page's upload form does, following
// the redirect, and returns the status and body.
func (v *visitor) upload(u, name, content string) (int, string) {
	v.e.t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	f, _ := w.CreateFormFile("file", name)
	io.WriteString(f, content)
	w.Close()
	req, _ := http.NewRequest("POST", u, &b)
	req.Header.Set("Content-Type", w.FormDataContentType())
	res, err := v.client.Do(req)
	if err != nil {
		v.e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	v.last = res
	return res.StatusCode, string(body)
}

// importFile is the file the import pages' tests upload: three rows, the
// second with an address that is not one.
const importFile = "E-mail,Voornaam,Nieuwsbrief,Aangemeld\nanna@example.com,Anna,ja,2026-11-01\nnot-an-address,Bo,nee,2026-11-01\ncarl@example.com,Carl,nee,2026-11-02\n"

// TestImportPages drives an import through the admin pages: a file that
// cannot be read is refused next to the file input and nothing is kept;
// a good one leads to its mapping form, its columns suggested. A mapping
// without a legal basis is refused next to that purpose's legal basis,
// keeping what was chosen; the preview shows the rows as they would be
// stored, each with what the import would do with it, and the row in
// error. A dry run shows its progress while
// queued, then its counts above the form, filled in as it ran. The
// import, its mapping saved, ends with a report of its counts and the
// failed row, downloadable as CSV; undo asks for confirmation and removes
// the contacts it created. A billing user may not see the pages; an agent
// may not undo.
func TestImportPages(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		var clock jobClock
		e := start(t, db, holdJobs(&clock))
		ctx := context.Background()
		admin := e.firstAdmin()
		base := e.srv.URL + "/admin/imports"

		code, body := admin.get(base)
		if code != 200 || !strings.Contains(body, "No import yet.") || !strings.Contains(body, `href="/admin/imports" aria-current="page"`) ||
			!strings.Contains(body, `enctype="multipart/form-data"`) || !strings.Contains(body, `accept=".csv,.txt,.xlsx`) {
			t.Fatalf("no imports: %d %s", code, body)
		}
		if code, body := admin.get(e.srv.URL + "/admin/docs/imports"); code != 200 || !strings.Contains(body, `<h2 id="in-the-admin-ui">`) {
			t.Fatalf("the guide's admin section, which the page links to: %d", code)
		}
		code, body = admin.upload(base, "empty.csv", "E-mail\n")
		if code != 400 || !strings.Contains(body, `id="file-error" role="alert"`) || !strings.Contains(body, "has a header and no rows") ||
			!strings.Contains(body, `aria-describedby="file-error"`) {
			t.Fatalf("a header-only file: %d %s", code, body)
		}
		if all, err := e.a.Imports.List(ctx, 10); err != nil || len(all) != 0 {
			t.Fatalf("a refused file was kept: %v %v", all, err)
		}

		code, body = admin.upload(base, "leads.csv", importFile)
		all, err := e.a.Imports.List(ctx, 10)
		if err != nil || len(all) != 1 {
			t.Fatalf("imports: %v %v", all, err)
		}
		imp := all[0]
		page := base + "/" + imp.ID
		if code != 200 || admin.last.Request.URL.String() != page || !strings.Contains(body, `id="mapping-form"`) ||
			!strings.Contains(body, `<option value="email" selected>`) || !strings.Contains(body, `<option value="first_name" selected>`) {
			t.Fatalf("the upload leads to %s: %d %s", admin.last.Request.URL, code, body)
		}
		if _, body := admin.get(base); !strings.Contains(body, `<a href="/admin/imports/`+imp.ID+`">leads.csv</a>`) {
			t.Fatalf("the list: %s", body)
		}

		p, err := e.a.Consent.Purpose(ctx, "E-marketing")
		if err != nil {
			t.Fatal(err)
		}
		src, err := e.a.Consent.ActiveSource(ctx, "API")
		if err != nil {
			t.Fatal(err)
		}
		k := "p-" + p.ID + "-"
		form := url.Values{"col-0": {"email"}, "col-1": {"first_name"}, "col-2": {""}, "col-3": {""}, "source": {src.ID},
			"duplicates": {"skip"}, "optin": {""}, k + "use": {"off", "on"}, k + "answer": {"col:Nieuwsbrief"}, k + "legal_basis": {""},
			k + "date_column": {"Aangemeld"}, k + "text_version": {"1"}, k + "notice": {""}, "action": {"start"}}
		code, body = admin.post(page+"/start", form)
		if code != 400 || !strings.Contains(body, `id="`+k+`legal_basis-error" role="alert"`) ||
			!strings.Contains(body, `aria-describedby="`+k+`legal_basis-error"`) || !strings.Contains(body, "is required: on what legal basis") ||
			!strings.Contains(body, `<option value="col:Nieuwsbrief" selected>`) || !strings.Contains(body, `<option value="Aangemeld" selected>`) {
			t.Fatalf("no legal basis: %d %s", code, body)
		}
		if got, _ := e.a.Imports.Get(ctx, imp.ID); got.Status != imports.StatusUploaded || got.Definition != nil {
			t.Fatalf("a refused mapping started the import: %+v", got)
		}

		form.Set(k+"legal_basis", "consent")

		// Values no control offers are refused next to their control,
		// or above the form, and start nothing.
		for _, bad := range []struct{ key, value, control, want string }{
			{"action", "go", "", "the form must say whether to start the import or run a dry run"},
			{"col-99", "last_name", "", "the form maps a column the file does not have (col-99); the file has 4 columns"},
			{"optin", "double_opt_in", "optin", "is not one of the choices offered"},
			{k + "answer", "maybe", k + "answer", "is not one of the choices offered"},
			// A ticked purpose's answer is chosen, never the first column.
			{k + "answer", "", k + "answer", "give a column with each row&#39;s answer, or a state for every row"},
			{k + "text_version", "one", k + "text_version", "is not a version of the consent text of E-marketing: choose version 1, or none"},
			{k + "text_version", "7", k + "text_version", "is not a version of the consent text of E-marketing"},
		} {
			tampered := url.Values{}
			for key, vs := range form {
				tampered[key] = vs
			}
			tampered.Set(bad.key, bad.value)
			code, body := admin.post(page+"/start", tampered)
			if code != 400 || !strings.Contains(body, bad.want) || bad.control != "" && !strings.Contains(body, `id="`+bad.control+`-error" role="alert"`) {
				t.Errorf("%s=%s: %d %s", bad.key, bad.value, code, body)
			}
		}
		if got, _ := e.a.Imports.Get(ctx, imp.ID); got.Status != imports.StatusUploaded || got.Definition != nil {
			t.Fatalf("a refused form started the import: %+v", got)
		}
		form.Del("action")
		code, body = admin.get(page + "/preview?" + form.Encode())
		if code != 200 || !strings.Contains(body, `id="preview-rows"`) || !strings.Contains(body, "<code>first_name</code> Anna") ||
			!strings.Contains(body, `<span class="state-granted">granted</span>`) || !strings.Contains(body, `<code>email</code>: `) ||
			!strings.Contains(body, `<option value="consent" selected>`) || strings.Count(body, `<td class="outcome-created">New contact</td>`) != 2 {
			t.Fatalf("preview: %d %s", code, body)
		}

		// A dry run: queued, its page shows the progress and follows it.
		form.Set("action", "dry_run")
		if to := admin.redirectOf(page+"/start", form); to != page+"?done=dry_run" {
			t.Fatalf("a dry run leads to %s", to)
		}
		code, body = admin.get(page + "?done=dry_run")
		if code != 200 || !strings.Contains(body, `<progress id="import-progress" max="3" value="0"`) ||
			!strings.Contains(body, `<script src="/admin/static/import-progress.js" defer></script>`) || !strings.Contains(body, `id="cancel-import"`) ||
			!strings.Contains(admin.last.Header.Get("Content-Security-Policy"), "script-src 'self'; connect-src 'self'") ||
			!strings.Contains(body, "the dry run starts again from the first row once Consentry runs again: within seconds on SQLite; on PostgreSQL, "+
				"when the instance that was running it died, within a minute") {
			t.Fatalf("the queued dry run: %d %s", code, body)
		}
		var prog struct {
			Status          string
			Position, Total int64
		}
		if code, body = admin.get(page + "/progress"); code != 200 || json.Unmarshal([]byte(body), &prog) != nil ||
			prog.Status != imports.StatusQueued || prog.Total != 3 {
			t.Fatalf("progress: %d %s", code, body)
		}
		if _, body = admin.get(page + "?follow=1"); !strings.Contains(body, `<meta http-equiv="refresh" content="5">`) {
			t.Fatalf("following without JavaScript: %s", body)
		}
		clock.release()
		runJobsUntil(t, e, func() bool {
			got, err := e.a.Imports.Get(ctx, imp.ID)
			return err == nil && got.Status == imports.StatusUploaded && got.FinishedAt != nil
		})
		code, body = admin.get(page)
		if code != 200 || !strings.Contains(body, "Dry run: what the import would do") || !strings.Contains(body, `<dd id="count-created">2</dd>`) ||
			!strings.Contains(body, `<dd id="count-failed">1</dd>`) || !strings.Contains(body, `id="mapping-form"`) ||
			!strings.Contains(body, `<option value="consent" selected>`) || strings.Contains(body, `id="undo"`) {
			t.Fatalf("after the dry run: %d %s", code, body)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM contacts`); n != 0 {
			t.Fatalf("the dry run wrote %d contacts", n)
		}

		// The import, its mapping saved.
		form.Set("action", "start")
		form.Set("save_as", "Leads")
		if to := admin.redirectOf(page+"/start", form); to != page+"?done=started" {
			t.Fatalf("start leads to %s", to)
		}
		runJobsUntil(t, e, func() bool {
			got, err := e.a.Imports.Get(ctx, imp.ID)
			return err == nil && got.Status == imports.StatusDone
		})
		code, body = admin.get(page)
		if code != 200 || !strings.Contains(body, `<h2 id="report-h">Report</h2>`) || !strings.Contains(body, `<dd id="count-created">2</dd>`) ||
			!strings.Contains(body, `<dd id="count-failed">1</dd>`) || !strings.Contains(body, `<tr class="outcome-failed"><th scope="row">3</th><td>failed</td><td><code>email</code></td>`) ||
			!strings.Contains(body, `href="/admin/imports/`+imp.ID+`/report.csv"`) || !strings.Contains(body, `id="undo"`) || strings.Contains(body, `id="mapping-form"`) {
			t.Fatalf("the report: %d %s", code, body)
		}
		if ms, err := e.a.Imports.Mappings(ctx); err != nil || len(ms) != 1 || ms[0].Name != "Leads" || len(ms[0].Definition.Consents) != 1 {
			t.Fatalf("saved mappings: %+v %v", ms, err)
		}
		// The next file of the kind loads the saved mapping by its column
		// names, whatever their order.
		admin.upload(base, "more.csv", "Nieuwsbrief,Aangemeld,E-mail,Voornaam\nja,2026-11-03,dora@example.com,Dora\n")
		next := strings.TrimPrefix(admin.last.Request.URL.Path, "/admin/imports/")
		code, body = admin.get(base + "/" + next + "?mapping=" + url.QueryEscape(ms0(t, e).ID))
		if code != 200 || !strings.Contains(body, `<option value="email" selected>`) || !strings.Contains(body, `value="Leads"`) ||
			!strings.Contains(body, `<option value="col:Nieuwsbrief" selected>`) || !strings.Contains(body, `<option value="consent" selected>`) {
			t.Fatalf("a saved mapping loaded: %d %s", code, body)
		}
		if code, body = admin.get(base + "/" + next + "?mapping=nothing"); code != 404 || !strings.Contains(body, `id="mapping-error"`) {
			t.Fatalf("an unknown mapping: %d %s", code, body)
		}

		res, err := admin.client.Get(page + "/report.csv")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || !bytes.HasPrefix(raw, []byte("\ufeffrow,")) {
			t.Fatalf("the report's CSV does not start with a byte order mark: %q %v", raw[:min(len(raw), 8)], err)
		}
		recs, err := csv.NewReader(bytes.NewReader(raw[len("\ufeff"):])).ReadAll()
		if err != nil || len(recs) != 2 || recs[1][0] != "3" || recs[1][5] != "not-an-address" ||
			!strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("the report's CSV: %q %v %v", recs, err, res.Header)
		}

		// Undo: only once confirmed.
		agent := e.signIn(admin, "agent@acme.example", "agent")
		if code, _ := agent.get(page); code != 200 {
			t.Fatalf("an agent's import page: %d", code)
		}
		if code, _ := agent.post(page+"/undo", url.Values{"confirm": {"on"}}); code != 403 {
			t.Fatalf("an agent's undo: %d", code)
		}
		billing := e.signIn(admin, "bill@acme.example", "billing")
		if code, body := billing.get(base); code != 403 || strings.Contains(body, `href="/admin/imports"`) {
			t.Fatalf("billing's imports page: %d", code)
		}
		code, body = admin.post(page+"/undo", url.Values{})
		if code != 400 || !strings.Contains(body, `id="confirm-error" role="alert"`) {
			t.Fatalf("undo unconfirmed: %d %s", code, body)
		}
		if to := admin.redirectOf(page+"/undo", url.Values{"confirm": {"on"}}); to != page+"?done=undoing" {
			t.Fatalf("undo leads to %s", to)
		}
		runJobsUntil(t, e, func() bool {
			got, err := e.a.Imports.Get(ctx, imp.ID)
			return err == nil && got.Status == imports.StatusUndone
		})
		if _, body = admin.get(page); !strings.Contains(body, `<dd id="count-removed">2</dd>`) || strings.Contains(body, `id="undo"`) {
			t.Fatalf("undone: %s", body)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM contacts`); n != 0 {
			t.Fatalf("%d contacts left after undo", n)
		}
		// The next import, held in its queue, is cancelled: it ends as
		// cancelled, with its report, and can be undone.
		clock.lag.Store(int64(time.Hour))
		second := url.Values{"col-0": {""}, "col-1": {""}, "col-2": {"email"}, "col-3": {"first_name"}, "source": {src.ID}, "duplicates": {"skip"},
			k + "use": {"on"}, k + "answer": {"col:Nieuwsbrief"}, k + "legal_basis": {"consent"}, k + "date_column": {"Aangemeld"},
			k + "text_version": {"1"}, "action": {"start"}}
		if to := admin.redirectOf(base+"/"+next+"/start", second); to != base+"/"+next+"?done=started" {
			t.Fatalf("the second import's start leads to %s", to)
		}
		code, body = admin.post(base+"/"+next+"/cancel", url.Values{})
		if code != 200 || !strings.Contains(body, "Cancel requested") || !strings.Contains(body, `id="import-progress"`) {
			t.Fatalf("cancel: %d %s", code, body)
		}
		clock.release()
		runJobsUntil(t, e, func() bool {
			got, err := e.a.Imports.Get(ctx, next)
			return err == nil && got.Status == imports.StatusCancelled
		})
		if _, body = admin.get(base + "/" + next); !strings.Contains(body, "cancelled") || !strings.Contains(body, `id="undo"`) ||
			strings.Contains(body, `id="cancel-import"`) {
			t.Fatalf("the cancelled import: %s", body)
		}
		if code, _ := admin.post(base+"/"+next+"/cancel", url.Values{}); code != 409 {
			t.Fatalf("cancelling an ended import: %d", code)
		}

		if code, _ := admin.get(base + "/no-such-import"); code != 404 {
			t.Fatalf("an unknown import: %d", code)
		}
	})
}

// ms0 is the one saved mapping.
func ms0(t testing.TB, e *env) *imports.Mapping {
	t.Helper()
	ms, err := e.a.Imports.Mappings(context.Background())
	if err != nil || len(ms) != 1 {
		t.Fatalf("saved mappings: %v %v", ms, err)
	}
	return ms[0]
}

// duplicateIDs are the ids that page body gives to more than one element.
func duplicateIDs(body string) []string {
	seen := map[string]int{}
	var dup []string
	for _, m := range regexp.MustCompile(` id="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		if seen[m[1]]++; seen[m[1]] == 2 {
			dup = append(dup, m[1])
		}
	}
	return dup
}

// TestImportMappingFormAfterPreview: the mapping form shown again by a
// preview or a refused start has each control once (each id once, each
// source once). A form naming a source, purpose or list that does not
// exist (a list deleted since the page was loaded) is shown again with
// the reason next to the control, or above the form for a list it no
// longer offers, with a 422, and nothing starts.
func TestImportMappingFormAfterPreview(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		ctx := context.Background()
		admin := e.firstAdmin()
		base := e.srv.URL + "/admin/imports"
		admin.upload(base, "leads.csv", importFile)
		page := admin.last.Request.URL.String()
		id := strings.TrimPrefix(admin.last.Request.URL.Path, "/admin/imports/")
		src, err := e.a.Consent.ActiveSource(ctx, "API")
		if err != nil {
			t.Fatal(err)
		}
		name := "Leads"
		list, err := e.a.Lists.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{"col-0": {"email"}, "col-1": {"first_name"}, "col-2": {""}, "col-3": {""}, "source": {src.ID},
			"duplicates": {"skip"}, "optin": {""}, "l-" + list.ID: {"col:Nieuwsbrief"}}
		once := func(what, body string) {
			t.Helper()
			if dup := duplicateIDs(body); len(dup) > 0 {
				t.Errorf("%s: ids given twice: %v", what, dup)
			}
			for _, s := range []string{`id="col-0"`, `<option value="` + src.ID + `"`, `id="mapping-form"`} {
				if n := strings.Count(body, s); n != 1 {
					t.Errorf("%s: %s %d times", what, s, n)
				}
			}
		}
		code, body := admin.get(page + "/preview?" + form.Encode())
		if code != 200 || !strings.Contains(body, `id="preview-rows"`) || !strings.Contains(body, `<option value="col:Nieuwsbrief" selected>The rows whose column “Nieuwsbrief” says yes`) {
			t.Fatalf("preview: %d %s", code, body)
		}
		once("the preview", body)
		refused := url.Values{"col-0": {"first_name"}, "source": {src.ID}, "action": {"start"}}
		code, body = admin.post(page+"/start", refused)
		if code != 400 || !strings.Contains(body, `id="columns-error"`) {
			t.Fatalf("a start without an email column: %d %s", code, body)
		}
		once("the refused start", body)

		// A source that does not exist.
		for _, action := range []string{"dry_run", "start"} {
			bad := url.Values{"col-0": {"email"}, "source": {"nope"}, "action": {action}}
			code, body = admin.post(page+"/start", bad)
			if code != 422 || !strings.Contains(body, `id="source-error" role="alert">there is no such source`) ||
				!strings.Contains(body, `aria-describedby="source-error"`) || !strings.Contains(body, `id="mapping-form"`) ||
				!strings.Contains(body, `<option value="email" selected>`) || strings.Contains(body, "no such import") {
				t.Fatalf("%s with an unknown source: %d %s", action, code, body)
			}
			once("an unknown source", body)
		}
		if code, body = admin.get(page + "/preview?" + url.Values{"col-0": {"email"}, "source": {"nope"}}.Encode()); code != 422 ||
			!strings.Contains(body, `id="source-error"`) {
			t.Fatalf("a preview with an unknown source: %d %s", code, body)
		}
		// A list deleted after the page was loaded, and a purpose that
		// does not exist.
		if err := e.a.Lists.Delete(ctx, audit.Actor{Kind: "user"}, list.ID); err != nil {
			t.Fatal(err)
		}
		form.Set("action", "start")
		code, body = admin.post(page+"/start", form)
		if code != 422 || !strings.Contains(body, "the form names a list that does not exist") || !strings.Contains(body, `id="mapping-form"`) {
			t.Fatalf("a deleted list: %d %s", code, body)
		}
		form.Del("l-" + list.ID)
		form.Set("p-nope-use", "on")
		code, body = admin.post(page+"/start", form)
		if code != 422 || !strings.Contains(body, "the form names a purpose that does not exist") {
			t.Fatalf("an unknown purpose: %d %s", code, body)
		}
		if got, err := e.a.Imports.Get(ctx, id); err != nil || got.Status != imports.StatusUploaded || got.Definition != nil {
			t.Fatalf("a refused form started the import: %+v %v", got, err)
		}
		// An unknown import is still not found.
		if code, _ := admin.post(base+"/no-such-import/start", url.Values{"col-0": {"email"}, "source": {src.ID}}); code != 404 {
			t.Fatalf("starting an unknown import: %d", code)
		}
	})
}

// wideHeader is the header of a file of n columns: E-mail, then c2 to cn.
func wideHeader(n int) string {
	cols := []string{"E-mail"}
	for i := 2; i <= n; i++ {
		cols = append(cols, "c"+strconv.Itoa(i))
	}
	return strings.Join(cols, ",")
}

// TestImportMappingFormOfAWideFile: the form of a file of 16,000 columns
// lists the column mapped to a field, not every column, and names the
// columns in text inputs sharing one list of the columns, so that its
// page and its preview stay small. A column named in a row for another
// is listed, mapped, after a preview; a column the file does not have is
// refused next to its input, without every column in the message. The
// import runs as mapped.
func TestImportMappingFormOfAWideFile(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := start(t, db)
		ctx := context.Background()
		admin := e.firstAdmin()
		const n = 16000
		row := make([]string, n)
		row[0], row[1], row[2], row[3] = "wide@example.com", "Wendy", "ja", "2026-11-01"
		imp, err := e.a.Imports.Upload(ctx, "wide.csv", strings.NewReader(wideHeader(n)+"\n"+strings.Join(row, ",")+"\n"),
			consent.Actor{Kind: consent.ActorSystem})
		if err != nil {
			t.Fatal(err)
		}
		page := e.srv.URL + "/admin/imports/" + imp.ID
		src, err := e.a.Consent.ActiveSource(ctx, "API")
		if err != nil {
			t.Fatal(err)
		}
		pid := purposeID(e, "E-marketing")
		k := "p-" + pid + "-"
		const most = 1 << 20
		code, body := admin.get(page)
		if code != 200 || len(body) > most || !strings.Contains(body, `<select id="col-0" name="col-0"`) || strings.Contains(body, `id="col-1"`) ||
			strings.Count(body, `<datalist id="file-columns">`) != 1 || strings.Count(body, `<option value="c16000">`) != 1 ||
			!strings.Contains(body, `id="add-1-column" name="add-1-column" list="file-columns"`) || !strings.Contains(body, `id="columns-wide"`) {
			t.Fatalf("the wide file's page: %d, %d bytes", code, len(body))
		}
		if dup := duplicateIDs(body); len(dup) > 0 {
			t.Fatalf("ids given twice: %v", dup)
		}
		form := url.Values{"col-0": {"email"}, "add-1-column": {"c2"}, "add-1-field": {"first_name"}, "source": {src.ID},
			"duplicates": {"skip"}, k + "use": {"on"}, k + "answer": {"col"}, k + "answer_column": {"c3"}, k + "legal_basis": {"consent"},
			k + "date_column": {"c4"}, k + "text_version": {"1"}}
		code, body = admin.get(page + "/preview?" + form.Encode())
		if code != 200 || len(body) > most || !strings.Contains(body, "<code>first_name</code> Wendy") ||
			!strings.Contains(body, `<span class="state-granted">granted</span>`) || !strings.Contains(body, `<select id="col-1" name="col-1"`) ||
			!strings.Contains(body, `<option value="first_name" selected>`) || strings.Contains(body, `id="col-2"`) ||
			!strings.Contains(body, `name="`+k+`answer_column" list="file-columns" autocomplete="off" value="c3"`) ||
			!strings.Contains(body, `value="c4"`) || !strings.Contains(body, `id="add-1-column" name="add-1-column" list="file-columns" autocomplete="off" value=""`) {
			t.Fatalf("the wide file's preview: %d, %d bytes %s", code, len(body), body[:min(len(body), 4000)])
		}
		if dup := duplicateIDs(body); len(dup) > 0 {
			t.Fatalf("ids given twice in the preview: %v", dup)
		}
		bad := url.Values{"col-0": {"email"}, "add-1-column": {"nothing"}, "add-1-field": {"last_name"}, "source": {src.ID},
			k + "use": {"on"}, k + "answer": {"col"}, k + "answer_column": {""}, "action": {"start"}}
		code, body = admin.post(page+"/start", bad)
		if code != 400 || len(body) > most || !strings.Contains(body, `id="add-1-column-error" role="alert">the file has no column “nothing”`) ||
			!strings.Contains(body, `aria-describedby="add-1-column-error"`) || !strings.Contains(body, `id="`+k+`answer_column-error"`) ||
			!strings.Contains(body, `value="nothing"`) {
			t.Fatalf("a column the file does not have: %d, %d bytes %s", code, len(body), body[:min(len(body), 4000)])
		}
		form.Set("action", "start")
		if to := admin.redirectOf(page+"/start", form); to != page+"?done=started" {
			t.Fatalf("start leads to %s", to)
		}
		waitFor(t, func() bool {
			got, err := e.a.Imports.Get(ctx, imp.ID)
			return err == nil && got.Status == imports.StatusDone
		})
		got, err := e.a.Imports.Get(ctx, imp.ID)
		if err != nil || got.Created != 1 || got.Definition == nil || len(got.Definition.Columns) != 2 ||
			got.Definition.Columns[1] != (imports.Column{Column: "c2", Field: "first_name"}) || got.Definition.Consents[0].Column != "c3" {
			t.Fatalf("the wide import: %+v %v", got, err)
		}
	})
}
