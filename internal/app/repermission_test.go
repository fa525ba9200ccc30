package app_test

import (
	"context"
	"encoding/csv"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/app"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/repermission"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// laterClock moves the re-permission sweep's clock ahead of the wall
// clock, so that a run's days pass without waiting.
type laterClock struct{ ahead atomic.Int64 }

func (c *laterClock) set(a *app.App) {
	a.Repermission.Now = func() time.Time { return time.Now().Add(time.Duration(c.ahead.Load())) }
}

type runBody struct {
	ID                                         string
	Status                                     string
	Total, Invited, Confirmed, Lapsed, Waiting int
	Skipped                                    map[string]int
}

// TestRepermissionOverAPI asks contacts again through the API: refusals
// name their field and write nothing; a run by condition emails the
// contact without a valid consent over SMTP, and following the link in
// the email and pressing its button counts them confirmed. A second run's
// contact who does not confirm lapses once the sweep's clock passes the
// days, and the condition repermission_lapsed == true finds them. The
// report is a CSV with every contact, its cells defused.
func TestRepermissionOverAPI(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		var clock laterClock
		e := start(t, db, clock.set)
		var anna, bo struct{ ID string }
		e.api("POST", "/api/v1/contacts", `{"email":"anna@example.com","kind":"lead","first_name":"=Anna"}`, 201, &anna)
		e.api("POST", "/api/v1/contacts", `{"email":"carl@example.com","kind":"lead",
			"consents":[{"purpose":"E-marketing","state":"granted","source":"Web form"}]}`, 201, nil)

		for _, c := range []struct {
			body, field string
			status      int
		}{
			{`{}`, "condition", 400},
			{`{"condition":"nosuch == 1"}`, "condition", 400},
			{`{"condition":"kind == \"lead\"","days":0}`, "days", 400},
			{`{"condition":"kind == \"lead\"","days":400}`, "days", 400},
			{`{"import_id":"no-such-import"}`, "import_id", 400},
			{`{"condition":"true","import_id":"x"}`, "condition", 400},
			{`{"condition":"true","dayz":3}`, "dayz", 400},
		} {
			res, b := e.call("POST", "/api/v1/repermissions", c.body)
			if res.StatusCode != c.status || !strings.Contains(string(b), `"field":"`+c.field+`"`) {
				t.Errorf("%s: %d %s", c.body, res.StatusCode, b)
			}
		}
		var runs []runBody
		e.api("GET", "/api/v1/repermissions", "", 200, &runs)
		if len(runs) != 0 {
			t.Fatalf("refusals made runs: %+v", runs)
		}

		var run runBody
		e.api("POST", "/api/v1/repermissions", `{"condition":"kind == \"lead\"","days":5}`, 202, &run)
		if run.Total != 2 || run.Skipped["valid_consent"] != 1 || run.Status != "inviting" {
			t.Fatalf("the run: %+v", run)
		}
		msg := e.smtp.Wait(t, 1)[0]
		if msg.To[0] != "anna@example.com" || !strings.Contains(msg.Text, "Yes, I would like to receive") || len(msg.Links()) != 1 {
			t.Fatalf("the email: %v %q", msg.To, msg.Text)
		}
		waitFor(t, func() bool {
			e.api("GET", "/api/v1/repermissions/"+run.ID, "", 200, &run)
			return run.Status == "waiting"
		})
		if to := e.visitor().redirectOf(msg.Links()[0], url.Values{}); to != e.srv.URL+"/p/confirmed" {
			t.Fatalf("confirming redirects to %s", to)
		}
		e.api("GET", "/api/v1/repermissions/"+run.ID, "", 200, &run)
		if run.Confirmed != 1 || run.Invited != 1 || run.Waiting != 0 || run.Status != "done" {
			t.Fatalf("after confirming: %+v", run)
		}

		e.api("POST", "/api/v1/contacts", `{"email":"bo@example.com","kind":"contact"}`, 201, &bo)
		var second runBody
		e.api("POST", "/api/v1/repermissions", `{"condition":"kind == \"contact\"","days":2}`, 202, &second)
		e.smtp.Wait(t, 2)
		waitFor(t, func() bool {
			e.api("GET", "/api/v1/repermissions/"+second.ID, "", 200, &second)
			return second.Status == "waiting"
		})
		clock.ahead.Store(int64(49 * time.Hour))
		if n, err := e.a.Repermission.Sweep(context.Background()); err != nil || n != 1 {
			t.Fatalf("sweep: %d, %v", n, err)
		}
		e.api("GET", "/api/v1/repermissions/"+second.ID, "", 200, &second)
		if second.Lapsed != 1 || second.Status != "done" {
			t.Fatalf("after the days: %+v", second)
		}
		var page struct{ Items []struct{ ID string } }
		e.api("GET", "/api/v1/contacts?filter="+url.QueryEscape("repermission_lapsed == true"), "", 200, &page)
		if len(page.Items) != 1 || page.Items[0].ID != bo.ID {
			t.Fatalf("lapsed contacts: %+v", page.Items)
		}
		var c struct {
			RepermissionLapsedAt *time.Time `json:"repermission_lapsed_at"`
		}
		e.api("GET", "/api/v1/contacts/"+bo.ID, "", 200, &c)
		if c.RepermissionLapsedAt == nil {
			t.Fatal("the contact does not say it lapsed")
		}

		res, b := e.call("GET", "/api/v1/repermissions/"+run.ID+"/report.csv", "")
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("report: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		recs, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
		if err != nil || len(recs) != 3 {
			t.Fatalf("report: %v %q", err, b)
		}
		for _, r := range recs[1:] {
			if r[0] == anna.ID && (r[2] != "'=Anna" || r[4] != "confirmed") {
				t.Fatalf("anna's row: %q", r)
			}
		}
		if res, _ := e.call("GET", "/api/v1/repermissions/no-such-run", ""); res.StatusCode != 404 {
			t.Fatalf("an unknown run: %d", res.StatusCode)
		}
		e.ledgerVerifies()
	})
}

// TestRepermissionPagesInABrowser asks an import's contacts again from the
// import's page (one granted, one said no, one left the answer empty):
// the button leads to the run's page (post, redirect, get) with its
// counts and the report's link; the condition form refuses
// a bad condition next to its field. The run page and the re-permission
// page pass axe-core at 1280 and 375 pixels and do not scroll sideways.
func TestRepermissionPagesInABrowser(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e, d := signedIn(t, db)
		imp := ranImportWith(t, e, askableImportFile, "")
		d.do(chromedp.Navigate(e.srv.URL+"/admin/imports/"+imp.ID), chromedp.Click(chromedp.CSS("#ask-again")),
			chromedp.WaitVisible(chromedp.CSS("#run-counts")))
		loc := strings.TrimPrefix(mustLocation(t, d.ctx), e.srv.URL)
		if !strings.HasPrefix(loc, "/admin/repermission/") {
			t.Fatalf("the button led to %s", loc)
		}
		if got := d.text("#count-total") + " " + d.text("#count-skipped"); got != "3 2" {
			t.Fatalf("the run's counts: %q", got)
		}
		id := strings.Split(strings.TrimPrefix(loc, "/admin/repermission/"), "?")[0]
		waitFor(t, func() bool {
			r, err := e.a.Repermission.Get(context.Background(), id)
			return err == nil && r.Status == repermission.StatusWaiting
		})
		d.do(chromedp.Navigate(e.srv.URL + "/admin/repermission/" + id))
		if got := d.text("#count-invited") + " " + d.text("#run-status"); got != "1 waiting" {
			t.Fatalf("the run's page: %q", got)
		}
		d.do(chromedp.Navigate(e.srv.URL+"/admin/repermission"), chromedp.SetValue(chromedp.CSS("#condition"), "nosuch == 1"),
			chromedp.Click(chromedp.CSS("#ask")), chromedp.WaitVisible(chromedp.CSS("#condition-error")))
		if d.value("#condition") != "nosuch == 1" {
			t.Fatal("the refused form lost the condition")
		}
		d.herePasses("the re-permission form with an error")
		d.pagesPass(e.srv.URL, "/admin/repermission", "/admin/repermission/"+id)
		d.do(chromedp.Navigate(e.srv.URL+"/admin/repermission/"+id), chromedp.Click(chromedp.CSS("#lapsed-contacts")),
			chromedp.WaitVisible(chromedp.CSS("#filter")))
		if got := d.value("#filter"); got != "repermission_lapsed == true" {
			t.Fatalf("the lapsed contacts' link filters by %q", got)
		}
	})
}

// askableImportFile is importFile with a contact who left the answer
// empty: the one a re-permission run asks (the others granted or said no).
const askableImportFile = importFile + "dora@example.com,Dora,,2026-11-03\n"

// ranImport imports importFile (two contacts, one granting E-marketing)
// and waits for it to end.
func ranImport(t testing.TB, e *env) *imports.Import { return ranImportWith(t, e, importFile, "") }

// ranImportWith is ranImport of file (importFile's columns), with the
// notice shown described by notice instead of text version 1 when notice
// is not empty.
func ranImportWith(t testing.TB, e *env, file, notice string) *imports.Import {
	t.Helper()
	ctx := context.Background()
	imp, err := e.a.Imports.Upload(ctx, "fair.csv", strings.NewReader(file), consent.Actor{Kind: consent.ActorSystem})
	if err != nil {
		t.Fatal(err)
	}
	def := imports.Definition{Source: "API", Columns: []imports.Column{{Column: "E-mail", Field: "email"}, {Column: "Voornaam", Field: "first_name"}},
		Consents: []imports.Consent{{Purpose: purposeID(e, "E-marketing"), Column: "Nieuwsbrief", LegalBasis: consent.BasisConsent,
			CollectedAtColumn: "Aangemeld", TextVersion: 1}}}
	if notice != "" {
		def.Consents[0].TextVersion, def.Consents[0].Notice = 0, notice
	}
	if _, err := e.a.Imports.Start(ctx, imp.ID, def, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		got, err := e.a.Imports.Get(ctx, imp.ID)
		return err == nil && got.Status == imports.StatusDone
	})
	return imp
}
