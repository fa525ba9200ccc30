package app_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/repermission"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestImportPagesInABrowser drives an import through the admin pages in
// Chromium on both databases: a header-only file is refused next to the
// file input; a good one is uploaded and leads to its mapping form, where
// a purpose without a legal basis is refused next to that control, with
// what was chosen kept. Put right, the preview shows the rows; the dry
// run's progress bar follows the job and the page turns into the dry
// run's report by itself when it ends, the form still filled in; the
// import then ends on its report. Each screen passes axe-core with no
// violation at 1280 and at 375 pixels and does not scroll sideways.
func TestImportPagesInABrowser(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		var clock jobClock
		e, d := signedIn(t, db, holdJobs(&clock))
		do, text := d.do, d.text
		ctx := context.Background()
		dir := t.TempDir()
		bad, good := filepath.Join(dir, "header-only.csv"), filepath.Join(dir, "leads.csv")
		if err := os.WriteFile(bad, []byte("E-mail\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(good, []byte(importFile), 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := e.a.Consent.Purpose(ctx, "E-marketing")
		if err != nil {
			t.Fatal(err)
		}
		src, err := e.a.Consent.ActiveSource(ctx, "API")
		if err != nil {
			t.Fatal(err)
		}
		k := "#p-" + p.ID + "-"

		do(chromedp.Click(chromedp.CSS(`nav a[href="/admin/imports"]`)), chromedp.WaitVisible(chromedp.CSS("#upload")))
		do(chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{bad}), chromedp.Click(chromedp.CSS("#upload")),
			chromedp.WaitVisible(chromedp.CSS("#file-error")))
		if got := text("#file-error"); !strings.Contains(got, "row 1: the file has a header and no rows") {
			t.Fatalf("a header-only file: %q", got)
		}
		d.herePasses("the upload form with an error")

		do(chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{good}), chromedp.Click(chromedp.CSS("#upload")),
			chromedp.WaitVisible(chromedp.CSS("#mapping-form")))
		if d.value("#col-0") != "email" || d.value("#col-1") != "first_name" {
			t.Fatalf("the suggested fields: %q %q", d.value("#col-0"), d.value("#col-1"))
		}
		d.herePasses("the mapping form")
		do(chromedp.SetValue(chromedp.CSS("#source"), src.ID), chromedp.Click(chromedp.CSS(k+"use")),
			chromedp.SetValue(chromedp.CSS(k+"answer"), "col:Nieuwsbrief"), chromedp.SetValue(chromedp.CSS(k+"date_column"), "Aangemeld"),
			chromedp.SetValue(chromedp.CSS(k+"text_version"), "1"), chromedp.Click(chromedp.CSS("#start")),
			chromedp.WaitVisible(chromedp.CSS(k+"legal_basis-error")))
		if d.value(k+"answer") != "col:Nieuwsbrief" || d.value(k+"date_column") != "Aangemeld" || d.value("#source") != src.ID {
			t.Fatalf("the refused mapping lost what was chosen: %q %q %q", d.value(k+"answer"), d.value(k+"date_column"), d.value("#source"))
		}
		d.herePasses("the mapping form with an error")

		do(chromedp.SetValue(chromedp.CSS(k+"legal_basis"), "consent"), chromedp.Click(chromedp.CSS("#preview-button")),
			chromedp.WaitVisible(chromedp.CSS("#preview-rows")))
		if got := text("#preview-rows tbody"); !strings.Contains(got, "Anna") || !strings.Contains(got, "granted") {
			t.Fatalf("the preview: %q", got)
		}
		d.herePasses("the preview")

		do(chromedp.Click(chromedp.CSS("#dry-run")), chromedp.WaitVisible(chromedp.CSS("#import-progress")))
		d.herePasses("the dry run's progress")
		clock.release()
		// The page follows the job and shows the report once it ends.
		do(chromedp.WaitVisible(chromedp.CSS("#report-h")), chromedp.WaitVisible(chromedp.CSS("#mapping-form")))
		if got := text("#count-created"); got != "2" {
			t.Fatalf("the dry run would create %q", got)
		}
		if d.value(k+"legal_basis") != "consent" {
			t.Fatalf("after the dry run the form holds legal basis %q", d.value(k+"legal_basis"))
		}
		d.herePasses("the dry run's report")

		do(chromedp.Click(chromedp.CSS("#start")), chromedp.WaitVisible(chromedp.CSS("#undo")))
		if got := text("#count-created") + " " + text("#count-failed"); got != "2 1" {
			t.Fatalf("the report's counts: %q", got)
		}
		if got := text("#report-rows tbody"); !strings.Contains(got, "3") || !strings.Contains(got, "email") {
			t.Fatalf("the report's rows: %q", got)
		}
		page := strings.TrimPrefix(mustLocation(t, d.ctx), e.srv.URL)
		d.pagesPass(e.srv.URL, "/admin/imports", strings.Split(page, "?")[0])
	})
}

// importsToCheck uploads importFile and askableImportFile, runs the second import to its
// end, uploads a file too wide to list each column, asks the second
// import's contacts again (re-permission), and returns the import and
// re-permission pages TestEveryPageIsAccessible checks: the list, the
// mapping form, its preview, the report and an unknown import; the wide
// file's form, its preview, and its preview naming a column the file does
// not have; the runs, the run and an unknown run.
func importsToCheck(t testing.TB, e *env) []pageAt {
	t.Helper()
	ctx := context.Background()
	system := consent.Actor{Kind: consent.ActorSystem}
	waiting, err := e.a.Imports.Upload(ctx, "leads.csv", strings.NewReader(importFile), system)
	if err != nil {
		t.Fatal(err)
	}
	ran, err := e.a.Imports.Upload(ctx, "fair.csv", strings.NewReader(askableImportFile), system)
	if err != nil {
		t.Fatal(err)
	}
	pid := purposeID(e, "E-marketing")
	def := imports.Definition{Source: "API", Columns: []imports.Column{{Column: "E-mail", Field: "email"}, {Column: "Voornaam", Field: "first_name"}},
		Consents: []imports.Consent{{Purpose: pid, Column: "Nieuwsbrief", LegalBasis: consent.BasisConsent, CollectedAtColumn: "Aangemeld", TextVersion: 1}}}
	if _, err := e.a.Imports.Start(ctx, ran.ID, def, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		got, err := e.a.Imports.Get(ctx, ran.ID)
		return err == nil && got.Status == imports.StatusDone
	})
	header := strings.SplitN(importFile, "\n", 2)[0]
	for i := 5; i <= 250; i++ {
		header += ",c" + strconv.Itoa(i)
	}
	wide, err := e.a.Imports.Upload(ctx, "wide.csv", strings.NewReader(header+"\nanna@example.com,Anna,ja,2026-11-01\n"), system)
	if err != nil {
		t.Fatal(err)
	}
	k := "p-" + pid + "-"
	widePreview := url.Values{"col-0": {"email"}, "add-1-column": {"Voornaam"}, "add-1-field": {"first_name"}, "source": {"API"},
		k + "use": {"on"}, k + "answer": {"col"}, k + "answer_column": {"Nieuwsbrief"}, k + "legal_basis": {"consent"},
		k + "date_column": {"Aangemeld"}, k + "text_version": {"1"}, "optin": {"col"}, "optin_column": {"c9"}}
	wideRefused := url.Values{"col-0": {"email"}, "add-1-column": {"nothing"}, "add-1-field": {"first_name"}, "source": {"API"},
		k + "use": {"on"}, k + "answer": {"col"}, k + "answer_column": {"nothing"}}
	preview := url.Values{"col-0": {"email"}, "col-1": {"first_name"}, "source": {"API"}, k + "use": {"on"}, k + "answer": {"col:Nieuwsbrief"},
		k + "legal_basis": {"consent"}, k + "date_column": {"Aangemeld"}, k + "text_version": {"1"}}
	// A re-permission run asked the import's contacts, and waits for
	// their answers.
	run, err := e.a.Repermission.Start(ctx, repermission.Input{ImportID: ran.ID}, system)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		got, err := e.a.Repermission.Get(ctx, run.ID)
		return err == nil && got.Status == repermission.StatusWaiting
	})
	return []pageAt{{"/admin/imports", "/admin/imports"}, {"/admin/imports/{id}", "/admin/imports/" + waiting.ID},
		{"/admin/imports/{id}/preview", "/admin/imports/" + waiting.ID + "/preview?" + preview.Encode()},
		{"/admin/imports/{id}", "/admin/imports/" + ran.ID}, {"/admin/imports/{id}", "/admin/imports/no-such-import"},
		{"/admin/imports/{id}", "/admin/imports/" + wide.ID}, {"/admin/imports/{id}/preview", "/admin/imports/" + wide.ID + "/preview?" + widePreview.Encode()},
		{"/admin/imports/{id}/preview", "/admin/imports/" + wide.ID + "/preview?" + wideRefused.Encode()},
		{"/admin/repermission", "/admin/repermission"}, {"/admin/repermission/{id}", "/admin/repermission/" + run.ID},
		{"/admin/repermission/{id}", "/admin/repermission/no-such-run"}}
}

// TestImportSuggestionsAreChosen uploads a file whose headers name a
// purpose's answer, its collection date and a list, in Chromium on both
// databases: the mapping form opens with them chosen (the purpose ticked,
// its answer and date columns, the list joined by the column's rows)
// besides the fields, and a purpose the file does not name left alone.
// With the source, legal basis and text version given, the preview shows
// the rows with that consent and list. The form passes axe-core at 1280
// and at 375 pixels.
func TestImportSuggestionsAreChosen(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e, d := signedIn(t, db)
		do, text := d.do, d.text
		ctx := context.Background()
		news, err := e.a.Consent.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: ptr("Newsletter"), LegalBasis: ptr(consent.BasisConsent),
			Text: ptr("May we send you our newsletter?")})
		if err != nil {
			t.Fatal(err)
		}
		customers, err := e.a.Lists.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("Customers")})
		if err != nil {
			t.Fatal(err)
		}
		marketing := purposeID(e, "E-marketing")
		file := filepath.Join(t.TempDir(), "signups.csv")
		if err := os.WriteFile(file, []byte("Email;First name;Newsletter consent;Consent date;List: Customers\n"+
			"anna@example.com;Anna;yes;2026-11-01;yes\nbo@example.com;Bo;no;2026-11-02;no\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		do(chromedp.Navigate(e.srv.URL+"/admin/imports"), chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}),
			chromedp.Click(chromedp.CSS("#upload")), chromedp.WaitVisible(chromedp.CSS("#mapping-form")))
		k, l := "#p-"+news.ID+"-", "#l-"+customers.ID
		checked := func(css string) bool {
			on, err := chromedp.Run(d.ctx, chromedp.Evaluate[bool](`document.querySelector("`+css+`").checked`))
			if err != nil {
				t.Fatal(err)
			}
			return on
		}
		if got := [...]string{d.value("#col-0"), d.value("#col-1"), d.value("#col-2"), d.value(k + "answer"), d.value(k + "date_column"), d.value(l)}; got !=
			[...]string{"email", "first_name", "", "col:Newsletter consent", "Consent date", "col:List: Customers"} {
			t.Fatalf("the form as suggested: %q", got)
		}
		if !checked(k+"use") || checked("#p-"+marketing+"-use") {
			t.Fatalf("ticked: Newsletter %t, E-marketing %t; want Newsletter only", checked(k+"use"), checked("#p-"+marketing+"-use"))
		}
		d.herePasses("the mapping form as suggested")

		src, err := e.a.Consent.ActiveSource(ctx, "API")
		if err != nil {
			t.Fatal(err)
		}
		do(chromedp.SetValue(chromedp.CSS("#source"), src.ID), chromedp.SetValue(chromedp.CSS(k+"legal_basis"), "consent"),
			chromedp.SetValue(chromedp.CSS(k+"text_version"), "1"), chromedp.Click(chromedp.CSS("#preview-button")),
			chromedp.WaitVisible(chromedp.CSS("#preview-rows")))
		rows := text("#preview-rows tbody")
		if !strings.Contains(rows, "Newsletter: granted") || !strings.Contains(rows, "Newsletter: withdrawn") || strings.Count(rows, "Customers") != 1 {
			t.Fatalf("the preview of the suggested form: %q", rows)
		}
	})
}
