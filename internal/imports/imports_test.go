package imports_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/charmap"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/tabular/tabulartest"
	"github.com/consentry/consentry/internal/vault/vaulttest"
)

var user = consent.Actor{Kind: consent.ActorUser, ID: "u1"}

type world struct {
	t       testing.TB
	db      *store.DB
	now     time.Time
	consent *consent.Service
	people  *contact.Service
	lists   *lists.Service
	imports *imports.Service
	jobs    *jobs.Runner
	news    *lists.List
}

func newWorld(t testing.TB, db *store.DB) *world {
	w := &world{t: t, db: db, now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return w.now }
	ctx := context.Background()
	w.consent = consent.NewService(db, contact.EraseWithdrawnStorage) // as the app wires it
	w.consent.Now = clock
	w.people = contact.NewService(db, w.consent)
	w.people.Now = clock
	w.people.Vault = vaulttest.New(t)
	w.lists = &lists.Service{DB: db, Now: clock}
	w.imports = &imports.Service{DB: db, Contacts: w.people, Consent: w.consent, Lists: w.lists, Log: slog.New(slog.DiscardHandler), Now: clock}
	w.jobs = jobs.NewRunner(db, slog.New(slog.DiscardHandler))
	w.jobs.Now = clock
	w.jobs.Handle(imports.JobKind, w.imports.Handle)
	w.jobs.Handle(imports.UndoJobKind, w.imports.HandleUndo)
	w.jobs.Handle(imports.DropJobKind, w.imports.HandleDrop)
	for _, p := range []struct{ name, basis string }{{"Share with partners", consent.BasisConsent}} {
		if _, err := w.consent.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: ptr(p.name), LegalBasis: ptr(p.basis),
			Text: ptr("May we email you about " + p.name + "?")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.consent.CreateSource(ctx, audit.Actor{Kind: "user"}, consent.SourceInput{Name: ptr("Trade fair 2026")}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []contact.FieldInput{
		{Name: ptr("company"), Label: ptr("Company"), Type: ptr("text")},
		{Name: ptr("national_id"), Label: ptr("National id"), Type: ptr("text"), Sensitive: ptr(true), Mask: ptr("last:4")},
	} {
		if _, err := w.people.CreateField(ctx, audit.Actor{Kind: "user"}, f); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if w.news, err = w.lists.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("Newsletter")}); err != nil {
		t.Fatal(err)
	}
	return w
}

func ptr[T any](v T) *T { return &v }

// csvFile writes records as CSV with delimiter d.
func csvFile(d rune, records ...[]string) []byte {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	cw.Comma = d
	cw.WriteAll(records)
	return b.Bytes()
}

func (w *world) upload(name string, data []byte) *imports.Import {
	w.t.Helper()
	imp, err := w.imports.Upload(context.Background(), name, bytes.NewReader(data), user)
	if err != nil {
		w.t.Fatal(err)
	}
	return imp
}

// run starts the import with d and runs its jobs until none is due.
func (w *world) run(id string, d imports.Definition, dryRun bool) *imports.Import {
	w.t.Helper()
	ctx := context.Background()
	if _, err := w.imports.Start(ctx, id, d, dryRun); err != nil {
		w.t.Fatal(err)
	}
	w.drain()
	imp, err := w.imports.Get(ctx, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return imp
}

func (w *world) drain() {
	w.t.Helper()
	for range 1000 {
		n, err := w.jobs.RunDue(context.Background())
		if err != nil {
			w.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	w.t.Fatal("jobs never ran out")
}

func (w *world) contact(email string) *contact.Contact {
	w.t.Helper()
	cs, _, err := w.people.List(context.Background(), contact.ListQuery{Email: email})
	if err != nil {
		w.t.Fatal(err)
	}
	if len(cs) != 1 {
		return nil
	}
	return cs[0]
}

// deleted makes a contact of each address and deletes it, at w.now: each
// address gets its suppression entry, as an erased one does.
func (w *world) deleted(emails ...string) {
	w.t.Helper()
	ctx := context.Background()
	for _, email := range emails {
		c, err := w.people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr(email)}, Actor: user,
			Evidence: consent.Evidence{Method: consent.MethodEnteredByUser}})
		if err != nil {
			w.t.Fatal(err)
		}
		if err := w.people.Delete(ctx, c.ID, user); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *world) history(id string) []consent.Record {
	w.t.Helper()
	h, err := w.consent.History(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return h
}

func (w *world) verify() {
	w.t.Helper()
	rep, err := w.consent.VerifyLedger(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	if !rep.OK {
		w.t.Fatalf("the ledger does not verify: %+v", rep.Problem)
	}
}

// fairDefinition maps the Swedish columns of fairFile.
func fairDefinition() imports.Definition {
	return imports.Definition{Source: "Trade fair 2026", Duplicates: contact.DuplicateFill,
		Columns: []imports.Column{{Column: "E-post", Field: "email"}, {Column: "Förnamn", Field: "first_name"},
			{Column: "Företag", Field: "company"}, {Column: "Personnummer", Field: "national_id"}},
		OptIn: &imports.OptIn{Value: contactstate.SingleOptInUser},
		Consents: []imports.Consent{
			{Purpose: "E-marketing", Column: "Nyhetsbrev", LegalBasis: consent.BasisConsent, CollectedAtColumn: "Datum", TextVersion: 1},
			{Purpose: "Share with partners", State: consent.StateGranted, LegalBasis: consent.BasisConsent, CollectedAt: "2026-10-15",
				Notice: "Paper form at the fair: 'Partner AB may contact me'"},
		},
		Lists: []imports.List{{List: "Newsletter", Column: "Nyhetsbrev"}}}
}

var fairFile = [][]string{
	{"E-post", "Förnamn", "Företag", "Personnummer", "Nyhetsbrev", "Datum"},
	{"anna@example.com", "Anna", "=HYPERLINK(\"x\")", "19800101-1234", "ja", "2026-10-14"},
	{"bo@example.com", "Bo", "Bo AB", "", "nej", "14-10-2026"},
	{"not an address", "Cecilia", "", "", "ja", "2026-10-14"},
	{"dan@example.com", "Dan", "", "", "kanske", "2026-10-14"},
	{"ANNA@example.com", "", "Anna AB", "", "", "2026-10-14"},
	{"BO@example.com", "", "Bo Ltd", "19900101-9999", "", "2026-10-14"},
}

// An import writes each row's contact, consents with their provenance,
// opt-in status and lists; rows it cannot write are reported with their
// number and reason, and the ledger verifies, evidence and all.
func TestImportWritesProvenance(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		imp := w.upload("fair.csv", csvFile(';', fairFile...))
		if imp.Format != "csv" || imp.Delimiter != ";" || imp.TotalRows != 6 || len(imp.Header) != 6 {
			t.Fatalf("upload: %+v", imp)
		}
		if got := fieldsOf(imports.Suggest(imp.Header, imports.Known{Custom: map[string]string{"company": "Företag"}})); got != "email,first_name,company,,," {
			t.Fatalf("suggested %q", got)
		}
		imp = w.run(imp.ID, fairDefinition(), false)
		if imp.Status != imports.StatusDone || imp.Created != 2 || imp.Updated != 1 || imp.Unchanged != 1 || imp.Failed != 2 || imp.Position != 6 {
			rows, _ := w.imports.ReportRows(context.Background(), imp.ID, 0, 10)
			t.Fatalf("import: %+v; report %+v", imp, rows)
		}
		anna := w.contact("anna@example.com")
		if anna == nil || anna.FirstName != "Anna" || anna.Fields["company"] != "=HYPERLINK(\"x\")" || anna.OptInStatus != contactstate.SingleOptInUser {
			t.Fatalf("anna: %+v", anna)
		}
		h := w.history(anna.ID)
		if len(h) != 2 {
			t.Fatalf("anna has %d consent records, want 2", len(h))
		}
		for _, r := range h {
			ev := r.Evidence
			if ev.Method != consent.MethodImport || ev.ImportID != imp.ID || ev.CollectedAt == nil || r.Source != "Trade fair 2026" {
				t.Errorf("record %+v", r)
			}
			switch r.PurposeName {
			case "E-marketing":
				if r.TextVersion != 1 || !ev.CollectedAt.Equal(time.Date(2026, 10, 14, 0, 0, 0, 0, time.UTC)) || ev.Notice != "" {
					t.Errorf("e-marketing: %+v %+v", r, ev)
				}
			case "Share with partners":
				if r.TextVersion != 0 || !strings.Contains(ev.Notice, "Paper form") || !ev.CollectedAt.Equal(time.Date(2026, 10, 15, 0, 0, 0, 0, time.UTC)) {
					t.Errorf("partners: %+v %+v", r, ev)
				}
			}
		}
		bo := w.contact("bo@example.com")
		if bo == nil || bo.Fields["company"] != "Bo AB" || bo.Fields["national_id"] != "•••••••••9999" {
			t.Fatalf("bo, filled in by row 7: %+v", bo)
		}
		if states := stateOf(w.history(bo.ID)); states["E-marketing"] != consent.StateWithdrawn || states["Share with partners"] != consent.StateGranted {
			t.Errorf("bo's consents: %v", states)
		}
		subs, err := lists.Subscriptions(context.Background(), db.Read, anna.ID)
		if err != nil || len(subs) != 1 || subs[0].ListID != w.news.ID {
			t.Errorf("anna's lists: %+v %v", subs, err)
		}
		if subs, _ := lists.Subscriptions(context.Background(), db.Read, bo.ID); len(subs) != 0 {
			t.Errorf("bo said no to the newsletter, and is on %+v", subs)
		}
		var report bytes.Buffer
		if err := w.imports.WriteReport(context.Background(), imp.ID, &report); err != nil {
			t.Fatal(err)
		}
		report.Next(len("\ufeff"))
		recs, err := csv.NewReader(&report).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 3 || recs[1][0] != "4" || recs[1][3] != "email" || recs[2][0] != "5" || recs[2][3] != "consents[0]" ||
			!strings.Contains(recs[2][4], "kanske") || recs[1][5] != "not an address" {
			t.Fatalf("report: %q", recs)
		}
		w.verify()
	})
}

func stateOf(h []consent.Record) map[string]string {
	out := map[string]string{}
	for _, r := range h {
		out[r.PurposeName] = r.State
	}
	return out
}

// An import never lifts an opt-out, never sets single_opt_in_user on a
// known contact, never overwrites a consent given after the file's date,
// leaves a locked record alone, and skips an erased address unless the row
// carries a new explicit consent.
func TestImportRules(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		mk := func(email, optIn string) string {
			c, err := w.people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr(email)}, OptInStatus: optIn, Actor: user,
				Evidence: consent.Evidence{Method: consent.MethodEnteredByUser}})
			if err != nil {
				t.Fatal(err)
			}
			return c.ID
		}
		mk("out@example.com", contactstate.OptOutUser)
		newer := mk("newer@example.com", "")
		if _, err := w.consent.Record(ctx, newer, consent.RecordInput{Purpose: "E-marketing", State: consent.StateWithdrawn, Source: "Trade fair 2026",
			Actor: user, Evidence: consent.Evidence{Method: consent.MethodEnteredByUser}}); err != nil {
			t.Fatal(err)
		}
		stopped := mk("stopped@example.com", "")
		if err := db.Write(ctx, func(tx *store.Tx) error { return contactstate.StopProcessingTx(tx, stopped, w.now) }); err != nil {
			t.Fatal(err)
		}
		gone := mk("gone@example.com", "")
		back := mk("back@example.com", "")
		for _, id := range []string{gone, back} {
			if err := w.people.Delete(ctx, id, user); err != nil {
				t.Fatal(err)
			}
		}
		imp := w.upload("list.csv", csvFile(',',
			[]string{"email", "marketing", "date"},
			[]string{"out@example.com", "yes", "2026-11-01"},
			[]string{"newer@example.com", "yes", "2026-11-01"},
			[]string{"stopped@example.com", "yes", "2026-11-01"},
			[]string{"gone@example.com", "", "2026-11-01"},
			[]string{"back@example.com", "yes", "2026-12-02"},
		))
		w.now = w.now.Add(48 * time.Hour) // back's consent was collected after the erasure
		d := imports.Definition{Source: "Trade fair 2026", Duplicates: contact.DuplicateOverwrite,
			Columns: []imports.Column{{Column: "email", Field: "email"}},
			OptIn:   &imports.OptIn{Value: contactstate.SingleOptInUser},
			Consents: []imports.Consent{{Purpose: "E-marketing", Column: "marketing", LegalBasis: consent.BasisConsent,
				CollectedAtColumn: "date", TextVersion: 1}}}
		// The preview says what the import will do with each row, as the
		// dry run counts it.
		preview, err := w.imports.Preview(ctx, imp.ID, d, 10)
		if err != nil {
			t.Fatal(err)
		}
		outcomes := map[string]int64{}
		for _, r := range preview {
			outcomes[r.Outcome]++
		}
		if len(preview) != 5 || preview[1].KeptConsents != 1 || preview[2].Outcome != imports.OutcomeSkipped || preview[2].Skip.Code != contact.SkipLocked ||
			preview[3].Outcome != imports.OutcomeSkipped || preview[3].Skip.Code != contact.SkipErasedAddress || preview[4].Outcome != "created" {
			t.Fatalf("preview: %+v", preview)
		}
		// The dry run counts every row as the import then does, and
		// reports the same rows.
		dry := w.run(imp.ID, d, true)
		dryReport, err := w.imports.ReportRows(ctx, imp.ID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		imp = w.run(imp.ID, d, false)
		if imp.Status != imports.StatusDone || imp.Created != 1 || imp.Skipped != 2 || imp.SkippedBy[contact.SkipErasedAddress] != 1 ||
			imp.SkippedBy[contact.SkipLocked] != 1 || imp.KeptConsents != 1 {
			t.Fatalf("import: %+v", imp)
		}
		// The counts add up to the rows, and the reasons to the skips: a
		// consent kept is no row skipped.
		var by int64
		for _, n := range imp.SkippedBy {
			by += n
		}
		if imp.Created+imp.Updated+imp.Unchanged+imp.Skipped+imp.Failed != imp.TotalRows || by != imp.Skipped {
			t.Fatalf("the counts do not add up: %+v", imp)
		}
		if dry.Created != imp.Created || dry.Updated != imp.Updated || dry.Unchanged != imp.Unchanged || dry.Skipped != imp.Skipped ||
			dry.Failed != imp.Failed || fmt.Sprint(dry.SkippedBy) != fmt.Sprint(imp.SkippedBy) || dry.KeptConsents != imp.KeptConsents {
			t.Fatalf("the dry run counted %+v, the import %+v", dry, imp)
		}
		report, err := w.imports.ReportRows(ctx, imp.ID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if outcomes["created"] != imp.Created || outcomes["updated"] != imp.Updated || outcomes["unchanged"] != imp.Unchanged ||
			outcomes[imports.OutcomeSkipped] != imp.Skipped {
			t.Fatalf("the preview's outcomes %v, the import's counts %+v", outcomes, imp)
		}
		if fmt.Sprint(report) != fmt.Sprint(dryReport) || len(report) != 2 {
			t.Fatalf("the dry run reported %+v, the import %+v", dryReport, report)
		}
		// The report keeps nothing of an erased address's row, nor of a
		// locked contact's.
		for _, r := range report {
			if len(r.Cells) != 0 {
				t.Errorf("row %d (%s) kept its cells: %q", r.Row, r.Code, r.Cells)
			}
		}
		if c := w.contact("out@example.com"); c.OptInStatus != contactstate.OptOutUser {
			t.Errorf("the opt-out was lifted: %s", c.OptInStatus)
		}
		if states := stateOf(w.history(newer)); states["E-marketing"] != consent.StateWithdrawn {
			t.Errorf("the later withdrawal was overwritten: %v", states)
		}
		if len(w.history(stopped)) != 0 {
			t.Error("a locked record took a consent")
		}
		if w.contact("gone@example.com") != nil {
			t.Error("an erased address came back without a new consent")
		}
		if c := w.contact("back@example.com"); c == nil || c.PreviouslyErasedAt == nil {
			t.Errorf("an erased address with a new explicit consent: %+v", c)
		}
		w.verify()
	})
}

// An erased address comes back through an import only with an explicit
// consent collected after the erasure: a consent collected before it, by
// the row's date or the definition's fixed date, is no new consent, and
// the row is skipped as the erased address it is, by the preview, the dry
// run and the import alike.
func TestErasedAddressComesBackOnlyWithALaterConsent(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		w.deleted("old@example.com", "sameday@example.com", "fixed@example.com", "new@example.com") // at 2026-12-01 09:00
		w.now = time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
		imp := w.upload("old-crm.csv", csvFile(',',
			[]string{"email", "marketing", "date"},
			[]string{"old@example.com", "yes", "2019-05-01"},
			[]string{"sameday@example.com", "yes", "2026-12-01"},
			[]string{"fixed@example.com", "", ""},
			[]string{"new@example.com", "yes", "2026-12-02"},
		))
		d := imports.Definition{Source: "Trade fair 2026", Columns: []imports.Column{{Column: "email", Field: "email"}},
			OptIn: &imports.OptIn{Value: contactstate.SingleOptInUser},
			Consents: []imports.Consent{
				{Purpose: "E-marketing", Column: "marketing", LegalBasis: consent.BasisConsent, CollectedAtColumn: "date", TextVersion: 1},
				{Purpose: "Share with partners", State: consent.StateGranted, LegalBasis: consent.BasisConsent, CollectedAt: "2026-11-30",
					Notice: "Paper form"},
			}}
		preview, err := w.imports.Preview(ctx, imp.ID, d, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range preview {
			code := ""
			if r.Skip != nil {
				code = r.Skip.Code
			}
			got = append(got, r.Outcome+":"+code)
		}
		want := "[skipped:erased_address skipped:erased_address skipped:erased_address created:]"
		if fmt.Sprint(got) != want {
			t.Fatalf("preview %v, want %s", got, want)
		}
		dry := w.run(imp.ID, d, true)
		imp = w.run(imp.ID, d, false)
		for _, c := range []*imports.Import{dry, imp} {
			if c.Created != 1 || c.Skipped != 3 || c.SkippedBy[contact.SkipErasedAddress] != 3 {
				t.Fatalf("counts (dry run %v): %+v", c.DryRun, c)
			}
		}
		for _, email := range []string{"old@example.com", "sameday@example.com", "fixed@example.com"} {
			if c := w.contact(email); c != nil {
				t.Errorf("%s came back with a consent collected before its erasure: %+v", email, c)
			}
		}
		if c := w.contact("new@example.com"); c == nil || c.PreviouslyErasedAt == nil {
			t.Errorf("an erased address with a consent collected since: %+v", c)
		}
	})
}

// An erased address that comes back through an import, with an explicit
// consent collected after the erasure, comes back with the consents of
// the row collected after it only: one collected on the day of the
// erasure or before is left out and counted, by the preview, the dry run
// and the import alike. A later import about the contact that came back
// leaves its consents from before the erasure out too.
func TestErasedAddressComesBackWithNewConsentsOnly(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		w.deleted("back@example.com", "control@example.com") // at 2026-12-01 09:00
		w.now = time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
		d := imports.Definition{Source: "Trade fair 2026", Columns: []imports.Column{{Column: "email", Field: "email"}},
			OptIn: &imports.OptIn{Value: contactstate.SingleOptInUser},
			Consents: []imports.Consent{
				{Purpose: "E-marketing", Column: "marketing", LegalBasis: consent.BasisConsent, CollectedAtColumn: "marketing_date", TextVersion: 1},
				{Purpose: "Share with partners", Column: "partners", LegalBasis: consent.BasisConsent, CollectedAtColumn: "partners_date",
					Notice: "Paper form"},
				{Purpose: "Sales and service", Column: "service", LegalBasis: consent.BasisContract, CollectedAtColumn: "service_date",
					Notice: "Paper form"},
			}}
		imp := w.upload("fair.csv", csvFile(',',
			[]string{"email", "marketing", "marketing_date", "partners", "partners_date", "service", "service_date"},
			// The new consent, one from the day of the erasure, one from years before.
			[]string{"back@example.com", "yes", "2026-12-02", "yes", "2026-12-01", "no", "2019-05-01"},
			// Every consent collected since: all come back.
			[]string{"control@example.com", "yes", "2026-12-02", "yes", "2026-12-03", "no", "2026-12-04"},
		))
		preview, err := w.imports.Preview(ctx, imp.ID, d, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(preview) != 2 || preview[0].Outcome != "created" || preview[0].ConsentsBeforeErasure != 2 ||
			preview[1].Outcome != "created" || preview[1].ConsentsBeforeErasure != 0 {
			t.Fatalf("preview: %+v", preview)
		}
		dry := w.run(imp.ID, d, true)
		imp = w.run(imp.ID, d, false)
		for _, c := range []*imports.Import{dry, imp} {
			if c.Created != 2 || c.ConsentsBeforeErasure != 2 || c.KeptConsents != 0 || c.Skipped != 0 || len(c.SkippedBy) != 0 {
				t.Fatalf("counts (dry run %v): %+v", c.DryRun, c)
			}
		}
		back := w.contact("back@example.com")
		if back == nil || back.PreviouslyErasedAt == nil {
			t.Fatalf("the address did not come back: %+v", back)
		}
		if states := stateOf(w.history(back.ID)); len(states) != 1 || states["E-marketing"] != consent.StateGranted {
			t.Errorf("it came back with %v, want its new consent only", states)
		}
		if states := stateOf(w.history(w.contact("control@example.com").ID)); len(states) != 3 {
			t.Errorf("the consents collected since: %v", states)
		}

		// A later file about the contact that came back: its consent
		// from before the erasure stays out, the one since goes in.
		w.now = w.now.Add(time.Hour)
		again := w.upload("old-crm.csv", csvFile(',',
			[]string{"email", "marketing", "marketing_date", "partners", "partners_date", "service", "service_date"},
			[]string{"back@example.com", "", "", "yes", "2020-01-01", "yes", "2026-12-04"},
		))
		d.Duplicates = contact.DuplicateFill
		preview, err = w.imports.Preview(ctx, again.ID, d, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(preview) != 1 || preview[0].Outcome != "updated" || preview[0].ConsentsBeforeErasure != 1 {
			t.Fatalf("preview of the later file: %+v", preview)
		}
		dry = w.run(again.ID, d, true)
		again = w.run(again.ID, d, false)
		for _, c := range []*imports.Import{dry, again} {
			if c.Updated != 1 || c.ConsentsBeforeErasure != 1 {
				t.Fatalf("counts of the later file (dry run %v): %+v", c.DryRun, c)
			}
		}
		if states := stateOf(w.history(back.ID)); len(states) != 2 || states["Sales and service"] != consent.StateGranted || states["Share with partners"] != "" {
			t.Errorf("after the later file: %v", states)
		}
		w.verify()
	})
}

// With the default policy (skip), a known contact's fields are left, but an
// opt-out or a withdrawn consent in the file is still applied and counted
// as updated: the policy is about fields, not the person's choice to stop.
// The preview and the dry run say so too.
func TestSkipPolicyStillAppliesOptOuts(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		ids := map[string]string{}
		for _, email := range []string{"stop@example.com", "withdraw@example.com", "keep@example.com"} {
			c, err := w.people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr(email), FirstName: ptr("Kept")}, Actor: user,
				Evidence: consent.Evidence{Method: consent.MethodEnteredByUser}})
			if err != nil {
				t.Fatal(err)
			}
			ids[email] = c.ID
			if _, err := w.consent.Record(ctx, c.ID, consent.RecordInput{Purpose: "E-marketing", State: consent.StateGranted,
				Source: "Trade fair 2026", TextVersion: 1, Actor: user, Evidence: consent.Evidence{Method: consent.MethodEnteredByUser}}); err != nil {
				t.Fatal(err)
			}
		}
		w.now = w.now.Add(48 * time.Hour)
		imp := w.upload("stops.csv", csvFile(',',
			[]string{"email", "first", "status", "marketing", "date"},
			[]string{"stop@example.com", "Changed", "opt-out", "", "2026-12-02"},
			[]string{"withdraw@example.com", "Changed", "", "no", "2026-12-02"},
			[]string{"keep@example.com", "Changed", "", "yes", "2026-12-02"},
		))
		d := imports.Definition{Source: "Trade fair 2026",
			Columns: []imports.Column{{Column: "email", Field: "email"}, {Column: "first", Field: "first_name"}},
			OptIn:   &imports.OptIn{Column: "status"},
			Consents: []imports.Consent{{Purpose: "E-marketing", Column: "marketing", LegalBasis: consent.BasisConsent,
				CollectedAtColumn: "date", TextVersion: 1}}}
		preview, err := w.imports.Preview(ctx, imp.ID, d, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range preview {
			got = append(got, r.Outcome)
		}
		if fmt.Sprint(got) != "[updated updated skipped]" {
			t.Fatalf("preview %v", got)
		}
		dry := w.run(imp.ID, d, true)
		imp = w.run(imp.ID, d, false)
		for _, c := range []*imports.Import{dry, imp} {
			if c.Updated != 2 || c.Skipped != 1 || c.SkippedBy[contact.SkipDuplicate] != 1 {
				t.Fatalf("counts (dry run %v): %+v", c.DryRun, c)
			}
		}
		if c := w.contact("stop@example.com"); c.OptInStatus != contactstate.OptOutUser || c.FirstName != "Kept" {
			t.Errorf("the opt-out: %s %q", c.OptInStatus, c.FirstName)
		}
		if states := stateOf(w.history(ids["withdraw@example.com"])); states["E-marketing"] != consent.StateWithdrawn {
			t.Errorf("the withdrawal was dropped: %v", states)
		}
		if c := w.contact("withdraw@example.com"); c.FirstName != "Kept" {
			t.Errorf("the skip policy changed a field: %q", c.FirstName)
		}
		w.verify()
	})
}

// The dry run counts a file that repeats addresses as the import then
// does: a known address twice is a duplicate both times (the first row
// did not change it), a new one twice is a duplicate in the file, and an
// erased address twice is skipped as erased both times, under skip and
// fill alike.
func TestDryRunCountsRepeatedAddressesAsTheImport(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		for _, email := range []string{"known@example.com", "gone@example.com"} {
			c, err := w.people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr(email)}, Actor: user,
				Evidence: consent.Evidence{Method: consent.MethodEnteredByUser}})
			if err != nil {
				t.Fatal(err)
			}
			if email == "gone@example.com" {
				if err := w.people.Delete(ctx, c.ID, user); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, policy := range []string{contact.DuplicateSkip, contact.DuplicateFill} {
			// Under fill, a dry run cannot tell whether a row would change
			// the contact an earlier row created (docs/imports.md): the
			// file repeats a new address under skip only.
			repeat, created := policy+"-New@example.com", int64(1)
			if policy != contact.DuplicateSkip {
				repeat, created = policy+"-other@example.com", 2
			}
			file := csvFile(',',
				[]string{"email"},
				[]string{"known@example.com"},
				[]string{policy + "-new@example.com"},
				[]string{"gone@example.com"},
				[]string{"KNOWN@example.com"},
				[]string{repeat},
				[]string{"Gone@example.com"},
			)
			d := imports.Definition{Source: "Trade fair 2026", Duplicates: policy, Columns: []imports.Column{{Column: "email", Field: "email"}}}
			imp := w.upload(policy+".csv", file)
			dry := w.run(imp.ID, d, true)
			dryReport, err := w.imports.ReportRows(ctx, imp.ID, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			imp = w.run(imp.ID, d, false)
			report, err := w.imports.ReportRows(ctx, imp.ID, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if dry.Created != imp.Created || dry.Updated != imp.Updated || dry.Unchanged != imp.Unchanged || dry.Skipped != imp.Skipped ||
				dry.Failed != imp.Failed || fmt.Sprint(dry.SkippedBy) != fmt.Sprint(imp.SkippedBy) {
				t.Fatalf("%s: the dry run counted %+v, the import %+v", policy, dry, imp)
			}
			if fmt.Sprint(report) != fmt.Sprint(dryReport) {
				t.Fatalf("%s: the dry run reported %+v, the import %+v", policy, dryReport, report)
			}
			if imp.SkippedBy[contact.SkipErasedAddress] != 2 {
				t.Fatalf("%s: the erased address's rows: %+v", policy, imp)
			}
			if imp.Created != created {
				t.Fatalf("%s: the new addresses: %+v", policy, imp)
			}
		}
	})
}

// A definition without its provenance, or that does not fit the file, is
// refused with the field and why, and the import stays as uploaded.
func TestDefinitionNeedsProvenance(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		imp := w.upload("fair.csv", csvFile(';', fairFile...))
		for _, tc := range []struct {
			field  string
			change func(d *imports.Definition)
		}{
			{"source", func(d *imports.Definition) { d.Source = "" }},
			{"consents[0].legal_basis", func(d *imports.Definition) { d.Consents[0].LegalBasis = "" }},
			{"consents[0].legal_basis", func(d *imports.Definition) { d.Consents[0].LegalBasis = consent.BasisLegitimateInterests }},
			{"consents[1].collected_at", func(d *imports.Definition) { d.Consents[1].CollectedAt = "" }},
			{"consents[1].collected_at", func(d *imports.Definition) { d.Consents[1].CollectedAt = "2026-12-02" }},
			{"consents[1].collected_at", func(d *imports.Definition) { d.Consents[1].CollectedAt = "1970-01-01" }},
			{"consents[1].notice", func(d *imports.Definition) { d.Consents[1].Notice = "" }},
			{"consents[0].text_version", func(d *imports.Definition) { d.Consents[0].TextVersion = 7 }},
			{"consents[0].collected_at_column", func(d *imports.Definition) { d.Consents[0].CollectedAtColumn = "When" }},
			{"columns", func(d *imports.Definition) { d.Columns = d.Columns[1:] }},
			{"columns[1].field", func(d *imports.Definition) { d.Columns[1].Field = "shoe_size" }},
			{"duplicates", func(d *imports.Definition) { d.Duplicates = "merge" }},
			{"opt_in_status.value", func(d *imports.Definition) { d.OptIn.Value = contactstate.DoubleOptIn }},
			{"lists[0].list", func(d *imports.Definition) { d.Lists[0].List = "Nope" }},
		} {
			field, change := tc.field, tc.change
			d := fairDefinition()
			change(&d)
			_, err := w.imports.Start(context.Background(), imp.ID, d, false)
			if e := errs.As(err); e == nil || e.Field != field {
				t.Errorf("%s: got %v", field, err)
			}
		}
		got, err := w.imports.Get(context.Background(), imp.ID)
		if err != nil || got.Status != imports.StatusUploaded || got.Definition != nil {
			t.Fatalf("after refusals: %+v %v", got, err)
		}
		if n, _ := w.jobs.RunDue(context.Background()); n != 0 {
			t.Fatalf("%d jobs ran after refusals", n)
		}
	})
}

// A file that cannot be read is refused at upload with the reason, and
// nothing of it is kept.
func TestUnreadableFilesAreRefused(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		oneLine := io.MultiReader(strings.NewReader("email;name\n"), io.LimitReader(repeat('a'), 50<<20))
		// Six megabytes of good rows, then a NUL byte: refused once the
		// file is kept whole, which then goes in pieces.
		var late bytes.Buffer
		late.WriteString("email;name\n")
		for i := 0; late.Len() < 6<<20; i++ {
			fmt.Fprintf(&late, "late%d@example.com;%s\n", i, strings.Repeat("n", 80))
		}
		late.WriteString("\x00;x\n")
		header := tabulartest.Row(1, tabulartest.Inline("A1", "email"), tabulartest.Inline("B1", "name"))
		amplified := header
		for r := 2; r <= 31; r++ {
			amplified += tabulartest.Row(r, tabulartest.Inline(fmt.Sprintf("A%d", r), fmt.Sprintf("amp%d@example.com", r)), tabulartest.Shared(fmt.Sprintf("B%d", r), 0))
		}
		for name, tc := range map[string]struct {
			r    io.Reader
			want string // in the message
		}{
			"empty":                 {strings.NewReader(""), ""},
			"header only":           {strings.NewReader("email;name\n"), ""},
			"binary":                {bytes.NewReader([]byte{0, 1, 2, 0xff, 0xfe, 0, 0, 0x81, 0x8d}), ""},
			"one 50 MB line":        {oneLine, ""},
			"a NUL byte after 6 MB": {&late, "NUL"},
			// A workbook of 64 KB holding 64 MiB of spaces.
			"whitespace bomb": {bytes.NewReader(tabulartest.Book{Sheet: header, Spaces: 64}.Bytes(t)), "longer than 8 MiB"},
			// Rows each holding a shared string of 2 MiB; and one holding
			// one of 600 KiB twice.
			"shared strings": {bytes.NewReader(tabulartest.Book{Sheet: amplified, Shared: []string{strings.Repeat("B", 2<<20)}}.Bytes(t)), "longer than 1 MiB"},
			"a long row": {bytes.NewReader(tabulartest.Book{Sheet: header + tabulartest.Row(2, tabulartest.Shared("A2", 0), tabulartest.Shared("B2", 0)),
				Shared: []string{strings.Repeat("B", 600<<10)}}.Bytes(t)), "row 2: it is longer than 1 MiB"},
		} {
			_, err := w.imports.Upload(context.Background(), name, tc.r, user)
			if e := errs.As(err); e == nil || e.Field != "file" || !strings.Contains(e.Message, tc.want) {
				t.Errorf("%s: got %v", name, err)
			}
		}
		// Out of sight and unreadable at once; gone once the large file's
		// pieces are deleted.
		var n int
		if all, err := w.imports.List(context.Background(), 10); err != nil || len(all) != 0 {
			t.Fatalf("refused uploads are listed: %v %v", all, err)
		}
		if err := db.Read.QueryRow(`SELECT count(*) FROM imports WHERE file_key <> ''`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d keys kept of refused uploads (%v)", n, err)
		}
		// The large file's chunks wait for their job, which deletes them
		// a few at a time instead of in the refusing request's
		// transaction; the small files' went with it.
		if err := db.Read.QueryRow(`SELECT count(DISTINCT import_id) FROM import_file_chunks`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("the chunks of %d refused uploads wait for their job (%v)", n, err)
		}
		w.drain()
		if _, err := w.imports.Prune(context.Background(), imports.KeepFor); err != nil {
			t.Fatal(err)
		}
		if err := db.Read.QueryRow(`SELECT (SELECT count(*) FROM imports) + (SELECT count(*) FROM import_file_chunks) +
			(SELECT count(*) FROM import_file_addresses)`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d rows kept of refused uploads (%v)", n, err)
		}
	})
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func repeat(b byte) io.Reader { return repeatReader(b) }

// A dry run reports what the import would do, and the rows that would
// fail, writing no contact; the import can run after it.
func TestDryRunWritesNothing(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		imp := w.upload("fair.csv", csvFile(';', fairFile...))
		dry := w.run(imp.ID, fairDefinition(), true)
		if !dry.DryRun || dry.Status != imports.StatusUploaded || dry.Created != 2 || dry.Updated != 2 || dry.Failed != 2 {
			t.Fatalf("dry run: %+v", dry)
		}
		var contacts int
		if err := db.Read.QueryRow(`SELECT count(*) FROM contacts`).Scan(&contacts); err != nil || contacts != 0 {
			t.Fatalf("a dry run wrote %d contacts (%v)", contacts, err)
		}
		rows, err := w.imports.ReportRows(context.Background(), imp.ID, 0, 10)
		if err != nil || len(rows) != 2 || rows[0].Row != 4 || rows[1].Row != 5 {
			t.Fatalf("dry run report: %+v %v", rows, err)
		}
		done := w.run(imp.ID, fairDefinition(), false)
		if done.DryRun || done.Status != imports.StatusDone || done.Created != 2 {
			t.Fatalf("the import after the dry run: %+v", done)
		}
	})
}

// An import taken up again by a new job (a restart, or the next slice)
// resumes at the first row not written: each row is written once.
func TestImportResumes(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		w.imports.Chunk, w.imports.Slice = 3, time.Nanosecond // a chunk per job
		records := [][]string{{"email", "company"}}
		for i := range 20 {
			records = append(records, []string{fmt.Sprintf("p%02d@example.com", i), fmt.Sprintf("Co %d", i)})
		}
		imp := w.upload("people.csv", csvFile(',', records...))
		d := imports.Definition{Source: "Trade fair 2026", Columns: []imports.Column{{Column: "email", Field: "email"}, {Column: "company", Field: "company"}}}
		if _, err := w.imports.Start(context.Background(), imp.ID, d, false); err != nil {
			t.Fatal(err)
		}
		w.drain()
		var runs int
		if err := db.Read.QueryRow(`SELECT count(*) FROM jobs WHERE kind = $1`, imports.JobKind).Scan(&runs); err != nil {
			t.Fatal(err)
		}
		got, _ := w.imports.Get(context.Background(), imp.ID)
		if runs < 7 || got.Status != imports.StatusDone || got.Created != 20 || got.Position != 20 {
			t.Fatalf("after %d runs: %+v", runs, got)
		}
		var contacts int
		if err := db.Read.QueryRow(`SELECT count(*) FROM contacts`).Scan(&contacts); err != nil || contacts != 20 {
			t.Fatalf("%d contacts (%v), want 20", contacts, err)
		}
	})
}

// peopleFile is a file of n addresses, and the definition that imports it.
func peopleFile(n int) ([][]string, imports.Definition) {
	records := [][]string{{"email"}}
	for i := range n {
		records = append(records, []string{fmt.Sprintf("p%02d@example.com", i)})
	}
	return records, imports.Definition{Source: "Trade fair 2026", Columns: []imports.Column{{Column: "email", Field: "email"}}}
}

// A cancelled import stops between chunks and keeps what it wrote; undo
// then removes the contacts it created that nobody changed since, and
// leaves the one someone did.
func TestCancelAndUndo(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		w.imports.Chunk, w.imports.Slice = 2, time.Nanosecond
		records, d := peopleFile(10)
		imp := w.upload("people.csv", csvFile(',', records...))
		runs := 0
		w.jobs.Handle(imports.JobKind, func(ctx context.Context, j *jobs.Job) error {
			err := w.imports.Handle(ctx, j)
			if runs++; runs == 2 { // a user cancels while the import runs
				if got, err := w.imports.Cancel(ctx, imp.ID); err != nil || got.Status != imports.StatusRunning || !got.CancelRequested {
					t.Errorf("cancelling: %+v %v", got, err)
				}
			}
			return err
		})
		if _, err := w.imports.Start(ctx, imp.ID, d, false); err != nil {
			t.Fatal(err)
		}
		w.drain()
		got, _ := w.imports.Get(ctx, imp.ID)
		if got.Status != imports.StatusCancelled || got.Created != 4 {
			t.Fatalf("cancelled: %+v", got)
		}
		if _, err := w.imports.Cancel(ctx, imp.ID); errs.As(err) == nil {
			t.Fatalf("cancelling an ended import: %v", err)
		}
		w.now = w.now.Add(time.Hour)
		kept := w.contact("p01@example.com")
		if _, err := w.people.Update(ctx, kept.ID, contact.Input{FirstName: ptr("Kept")}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.imports.Undo(ctx, imp.ID, user); err != nil {
			t.Fatal(err)
		}
		w.drain()
		got, _ = w.imports.Get(ctx, imp.ID)
		if got.Status != imports.StatusUndone || got.Removed != 3 || got.UndoneAt == nil {
			t.Fatalf("undone: %+v", got)
		}
		var contacts int
		if err := db.Read.QueryRow(`SELECT count(*) FROM contacts`).Scan(&contacts); err != nil || contacts != 1 || w.contact("p01@example.com") == nil {
			t.Fatalf("%d contacts left (%v), want the one changed since", contacts, err)
		}
		if _, err := w.imports.Undo(ctx, imp.ID, user); errs.As(err) == nil {
			t.Fatalf("undoing twice: %v", err)
		}
		// Undo leaves no suppression entry: the corrected file brings them in.
		again := w.upload("people.csv", csvFile(',', records...))
		if got := w.run(again.ID, d, false); got.Created != 9 || got.Skipped != 1 {
			t.Fatalf("the file again: %+v", got)
		}
		w.verify()
	})
}

// An Excel workbook and a Windows-1252 CSV import as a UTF-8 CSV does:
// the same contacts, letters and all.
func TestExcelAndWindows1252(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		f := excelize.NewFile()
		for i, row := range [][]any{{"E-mail", "Voornaam"}, {"joost@example.com", "Joëlle"}, {"saga@example.com", "Åsa"}} {
			if err := f.SetSheetRow("Sheet1", fmt.Sprintf("A%d", i+1), &row); err != nil {
				t.Fatal(err)
			}
		}
		var xlsx bytes.Buffer
		if err := f.Write(&xlsx); err != nil {
			t.Fatal(err)
		}
		cp1252, err := charmap.Windows1252.NewEncoder().String("E-mail;Voornaam\r\nzoe@example.com;Zoë\r\n")
		if err != nil {
			t.Fatal(err)
		}
		d := imports.Definition{Source: "Trade fair 2026", Columns: []imports.Column{{Column: "E-mail", Field: "email"}, {Column: "Voornaam", Field: "first_name"}}}
		for name, data := range map[string][]byte{"leads.xlsx": xlsx.Bytes(), "leads.csv": []byte(cp1252)} {
			imp := w.upload(name, data)
			if got := w.run(imp.ID, d, false); got.Status != imports.StatusDone || got.Failed != 0 {
				t.Fatalf("%s: %+v", name, got)
			}
		}
		for email, name := range map[string]string{"joost@example.com": "Joëlle", "saga@example.com": "Åsa", "zoe@example.com": "Zoë"} {
			if c := w.contact(email); c == nil || c.FirstName != name {
				t.Errorf("%s: %+v", email, c)
			}
		}
	})
}

// A dry run cancelled halfway goes back to uploaded with its file, says
// it was cancelled, and the import can run after it.
func TestCancelledDryRunKeepsTheFile(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		w.imports.Chunk, w.imports.Slice = 2, time.Nanosecond
		records, d := peopleFile(10)
		imp := w.upload("people.csv", csvFile(',', records...))
		w.jobs.Handle(imports.JobKind, func(ctx context.Context, j *jobs.Job) error {
			if _, err := w.imports.Cancel(ctx, imp.ID); err != nil { // before the first chunk commits
				t.Error(err)
			}
			return w.imports.Handle(ctx, j)
		})
		if _, err := w.imports.Start(ctx, imp.ID, d, true); err != nil {
			t.Fatal(err)
		}
		w.drain()
		got, _ := w.imports.Get(ctx, imp.ID)
		if got.Status != imports.StatusUploaded || got.Error != "the dry run was cancelled" || !got.DryRun {
			t.Fatalf("cancelled dry run: %+v", got)
		}
		w.jobs.Handle(imports.JobKind, w.imports.Handle)
		if done := w.run(imp.ID, d, false); done.Status != imports.StatusDone || done.Created != 10 || done.Error != "" {
			t.Fatalf("the import after it: %+v", done)
		}
	})
}

// An import that withdraws the consent a field's values are kept on erases
// those values, for every row of a chunk: the fields tied to the purpose
// are read once for the chunk, not missed after the first row.
func TestImportWithdrawingStorageConsentErasesTiedValues(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		if _, err := w.consent.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: ptr("Card on file"), LegalBasis: ptr(consent.BasisConsent),
			Text: ptr("Keep my card number")}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.people.CreateField(ctx, audit.Actor{Kind: "user"}, contact.FieldInput{Name: ptr("card"), Type: ptr("text"), Sensitive: ptr(true),
			StoragePurpose: ptr("Card on file")}); err != nil {
			t.Fatal(err)
		}
		records := [][]string{{"email", "card consent"}}
		var ids []string
		now := w.now
		w.now = now.AddDate(0, -2, 0) // given before the file's consents were collected
		for i := range 5 {
			email := fmt.Sprintf("card%d@example.com", i)
			c, err := w.people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr(email), Fields: map[string]any{"card": "4111111111111111"}},
				Consents: []consent.RecordInput{{Purpose: "Card on file", State: consent.StateGranted, Source: "Trade fair 2026", Actor: user,
					Evidence: consent.Evidence{Method: consent.MethodEnteredByUser}}},
				Actor: user, Evidence: consent.Evidence{Method: consent.MethodEnteredByUser}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, c.ID)
			state := "no"
			if i == 4 {
				state = "yes" // kept: the consent stands
			}
			records = append(records, []string{email, state})
		}
		w.now = now
		imp := w.upload("cards.csv", csvFile(',', records...))
		imp = w.run(imp.ID, imports.Definition{Source: "Trade fair 2026", Duplicates: contact.DuplicateFill,
			Columns: []imports.Column{{Column: "email", Field: "email"}},
			Consents: []imports.Consent{{Purpose: "Card on file", Column: "card consent", LegalBasis: consent.BasisConsent,
				CollectedAt: "2026-11-01", Notice: "Asked at the counter"}}}, false)
		if imp.Status != imports.StatusDone || imp.Updated != 4 || imp.Unchanged != 1 {
			t.Fatalf("import: %+v", imp)
		}
		for i, id := range ids {
			c, err := w.people.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			_, has := c.Fields["card"]
			if want := i == 4; has != want {
				t.Errorf("contact %d: card kept %v, want %v (%v)", i, has, want, c.Fields)
			}
		}
		w.verify()
	})
}

// The report keeps no more of a row than it must: a sensitive value is
// masked, a huge cell is cut, and the file's header is defused in the
// CSV as the cells are.
func TestReportKeepsLittle(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		huge := strings.Repeat("å", 10000) // 20,000 bytes
		imp := w.upload("ids.csv", csvFile(',',
			[]string{"email", "Personnummer", "=HYPERLINK(\"x\")"},
			[]string{"not an address", "19900101-8888", huge},
		))
		d := imports.Definition{Source: "Trade fair 2026", Columns: []imports.Column{{Column: "email", Field: "email"},
			{Column: "Personnummer", Field: "national_id"}, {Column: `=HYPERLINK("x")`, Field: "company"}}}
		imp = w.run(imp.ID, d, false)
		if imp.Failed != 1 {
			t.Fatalf("import: %+v", imp)
		}
		rows, err := w.imports.ReportRows(ctx, imp.ID, 0, 10)
		if err != nil || len(rows) != 1 {
			t.Fatalf("report: %+v %v", rows, err)
		}
		cells := rows[0].Cells
		if len(cells) != 3 || cells[0] != "not an address" || cells[1] != "•••••••••8888" || len(cells[2]) > 4096 ||
			!strings.HasSuffix(cells[2], "…") || !strings.HasPrefix(huge, strings.TrimSuffix(cells[2], "…")) {
			t.Fatalf("the report's cells: %q %q, %d bytes", cells[0], cells[1], len(cells[2]))
		}
		var b bytes.Buffer
		if err := w.imports.WriteReport(ctx, imp.ID, &b); err != nil {
			t.Fatal(err)
		}
		// A byte order mark first, so that a spreadsheet program reads the
		// file as UTF-8.
		if !bytes.HasPrefix(b.Bytes(), []byte("\ufeffrow,")) {
			t.Fatalf("the CSV report does not start with a byte order mark: %q", b.Bytes()[:min(b.Len(), 8)])
		}
		b.Next(len("\ufeff"))
		recs, err := csv.NewReader(&b).ReadAll()
		if err != nil || len(recs) != 2 || recs[0][7] != `'=HYPERLINK("x")` || strings.Contains(b.String(), "19900101") {
			t.Fatalf("the CSV report: %q %v", recs[0], err)
		}
	})
}

// An error about a column the file does not have names the file's
// columns, the first fifty of a wide file and how many more.
func TestMissingColumnOfAWideFile(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		header := []string{"email"}
		for i := range 999 {
			header = append(header, fmt.Sprintf("c%d", i))
		}
		row := make([]string, len(header))
		row[0] = "a@example.com"
		imp := w.upload("wide.csv", csvFile(',', header, row))
		_, err := w.imports.Preview(context.Background(), imp.ID, imports.Definition{Source: "Trade fair 2026",
			Columns: []imports.Column{{Column: "E-mail", Field: "email"}}}, 1)
		e := errs.As(err)
		if e == nil || e.Field != "columns[0].column" || !strings.HasSuffix(e.Message, `"c48", and 950 more`) || len(e.Message) > 1000 {
			t.Fatalf("%v", err)
		}
	})
}

// A row with more or fewer cells than the header fails, and the report
// keeps its cells for the operator to correct it; but not when a column
// is of a sensitive field, whose value a missing cell would move to the
// column before, where it would be shown unmasked.
func TestReportKeepsTheCellsOfARaggedRow(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		file := []byte("email,first_name,Personnummer\n" +
			"ok@example.com,Ok,\n" +
			"short@example.com,19900101-8888\n" +
			"long@example.com,Long,,extra\n")
		plain := imports.Definition{Source: "Trade fair 2026", Columns: []imports.Column{{Column: "email", Field: "email"},
			{Column: "first_name", Field: "first_name"}}}
		withSensitive := plain
		withSensitive.Columns = append(slices.Clone(plain.Columns), imports.Column{Column: "Personnummer", Field: "national_id"})
		for _, tc := range []struct {
			d                 imports.Definition
			shortRow, longRow []string
		}{
			{plain, []string{"short@example.com", "19900101-8888"}, []string{"long@example.com", "Long", "", "extra"}},
			{withSensitive, nil, nil},
		} {
			imp := w.run(w.upload("ragged.csv", file).ID, tc.d, false)
			if imp.Failed != 2 || imp.Created+imp.Skipped != 1 { // the second time, ok@ is a duplicate
				t.Fatalf("import: %+v", imp)
			}
			rows, err := w.imports.ReportRows(ctx, imp.ID, 0, 10)
			rows = slices.DeleteFunc(rows, func(r imports.ReportRow) bool { return r.Outcome != imports.OutcomeFailed })
			if err != nil || len(rows) != 2 {
				t.Fatalf("report: %+v %v", rows, err)
			}
			if !slices.Equal(rows[0].Cells, tc.shortRow) || !slices.Equal(rows[1].Cells, tc.longRow) ||
				!strings.Contains(rows[0].Reason, "it has 2 cells but the header names 3 columns") {
				t.Errorf("with %d columns mapped, the report of the ragged rows: %+v", len(tc.d.Columns), rows)
			}
		}
	})
}
