package export_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/export"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/vault/vaulttest"
)

func ptr[T any](v T) *T { return &v }

var (
	api      = consent.Actor{Kind: consent.ActorAPIToken, ID: "tok-1"}
	agent    = consent.Actor{Kind: consent.ActorUser, ID: "agent-1"}
	billing  = consent.Actor{Kind: consent.ActorUser, ID: "billing-1"}
	evidence = consent.Evidence{Method: consent.MethodAPI}
)

// revealReason is why the fixture's value was revealed, as a user typed it.
const revealReason = "Checking the invoice address, ticket 4711"

// fixture is a contact with something in every section.
type fixture struct {
	svc       *export.Service
	contactID string
	purposeID string
}

func setUp(t testing.TB, db *store.DB) fixture {
	t.Helper()
	ctx := context.Background()
	cs := consent.NewService(db)
	people := contact.NewService(db, cs)
	people.Vault = vaulttest.New(t)
	for _, in := range []contact.FieldInput{
		{Name: ptr("national_id"), Label: ptr("National id"), Type: ptr("text"), Sensitive: ptr(true), Personal: ptr(true)},
		{Name: ptr("segment"), Label: ptr("Segment"), Type: ptr("text")},
		{Name: ptr("score"), Label: ptr("Score"), Type: ptr("number")},
	} {
		if _, err := people.CreateField(ctx, audit.Actor{Kind: "user"}, in); err != nil {
			t.Fatal(err)
		}
	}
	c, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("asa@example.se"), FirstName: ptr("Åsa"),
		LastName: ptr("=HYPERLINK(\"x\")"), Phone: ptr("+46 70 123 45 67"), Country: ptr("SE"), Language: ptr("sv"),
		Fields: map[string]any{"national_id": "198501011234", "segment": "b2b", "score": 1500000.0}},
		Actor: api, Evidence: evidence})
	if err != nil {
		t.Fatal(err)
	}
	p, err := cs.Purpose(ctx, "E-marketing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.SetTranslation(ctx, audit.Actor{Kind: "user"}, p.ID, p.TextVersion, "sv", "Ja, skicka mig nyheter."); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Record(ctx, c.ID, consent.RecordInput{Purpose: p.ID, State: consent.StateGranted, Source: "Web form",
		TextLanguage: "sv", Actor: api, Evidence: consent.Evidence{Method: consent.MethodAPI, IP: "192.0.2.7", UserAgent: "Firefox"}}); err != nil {
		t.Fatal(err)
	}
	collected := time.Date(2026, 2, 11, 0, 0, 0, 0, time.UTC)
	if _, err := cs.Record(ctx, c.ID, consent.RecordInput{Purpose: "Sales and service", State: consent.StateGranted, Source: "import",
		Actor: api, Evidence: consent.Evidence{Method: consent.MethodImport, ImportID: "imp-1", CollectedAt: &collected,
			Notice: "paper form at the fair"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Record(ctx, c.ID, consent.RecordInput{Purpose: p.ID, State: consent.StateWithdrawn, Source: "email",
		Actor: api, Evidence: evidence}); err != nil {
		t.Fatal(err)
	}
	// The opt-out came with an import's row: its history entry names the import.
	if _, err := cs.SetOptIn(ctx, c.ID, consent.OptInInput{Status: "opt_out_user", Channel: consent.ChannelUser, Actor: agent,
		Evidence: consent.Evidence{Method: consent.MethodImport, ImportID: "imp-2"}}); err != nil {
		t.Fatal(err)
	}
	ls := &lists.Service{DB: db, Now: time.Now}
	if _, err := ls.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("Newsletter")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.Set(ctx, c.ID, "Newsletter", lists.Subscribed, lists.SourceWebform, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := people.RevealFor(ctx, contact.RevealRequest{ContactID: c.ID, Field: "national_id", Actor: billing, IP: "198.51.100.9",
		Reason: revealReason}); err != nil {
		t.Fatal(err)
	}
	err = db.Write(ctx, func(tx *store.Tx) error {
		now := store.Now(time.Now)
		if _, err := mail.Enqueue(tx, mail.Message{ContactID: c.ID, Kind: mail.KindNotification, Subject: "Hej Åsa", Text: "x"}, now); err != nil {
			return err
		}
		if _, err := requests.CreateTx(tx, requests.New{Kind: requests.KindAccess, Channel: requests.ChannelAPI, ContactID: c.ID,
			Note: "wants a copy", Verified: true, Actor: api}, nil, now); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO legal_holds (id, contact_id, reason, legal_basis, set_by_kind, set_by_id, set_at)
			VALUES ('hold-1', $1, 'unpaid invoice', 'legal_obligation', 'user', 'agent-1', $2)`, c.ID, store.Micros(now))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{svc: &export.Service{DB: db, Contacts: people, Now: time.Now}, contactID: c.ID, purposeID: p.ID}
}

func fieldValue(e *export.Export, name string) export.Field {
	for _, f := range e.Fields {
		if f.Name == name {
			return f
		}
	}
	return export.Field{}
}

func accessFields(e *export.Export, actorID string) []string {
	var out []string
	for _, a := range e.AccessLog {
		if a.ActorID == actorID {
			out = append(out, a.Field)
		}
	}
	return out
}

// TestContents: every section holds what the contact's data says, read
// in one snapshot, in JSON.
func TestContents(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		fx := setUp(t, db)
		e, err := fx.svc.Build(ctx, fx.contactID, export.Viewer{Actor: agent, IP: "203.0.113.1"})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := e.Write(&buf, export.JSON); err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got["schema"] != export.SchemaVersion || got["masked"] != true {
			t.Fatalf("schema, masked: %v %v", got["schema"], got["masked"])
		}
		c := got["contact"].(map[string]any)
		if c["email"] != "asa@example.se" || c["first_name"] != "Åsa" || c["opt_in_status"] != "opt_out_user" || c["country"] != "SE" {
			t.Fatalf("contact: %v", c)
		}
		if f := fieldValue(e, "score"); f.Value != "1500000" || f.Masked {
			t.Fatalf("score: %+v", f)
		}
		if len(e.ConsentHistory) != 3 || e.ConsentHistory[0].IP != "192.0.2.7" || e.ConsentHistory[0].UserAgent != "Firefox" ||
			e.ConsentHistory[0].TextLanguage != "sv" || e.ConsentHistory[2].State != consent.StateWithdrawn {
			t.Fatalf("history: %+v", e.ConsentHistory)
		}
		// An imported record says when the consent was collected, the
		// notice shown and the import it came with.
		if imp := e.ConsentHistory[1]; imp.Method != consent.MethodImport || imp.ImportID != "imp-1" || imp.Notice != "paper form at the fair" ||
			imp.CollectedAt == nil || !imp.CollectedAt.Equal(time.Date(2026, 2, 11, 0, 0, 0, 0, time.UTC)) || imp.TextVersion != 0 {
			t.Fatalf("the imported record: %+v", imp)
		}
		if j := got["consent_history"].([]any)[1].(map[string]any); j["collected_at"] != "2026-02-11T00:00:00Z" ||
			j["notice"] != "paper form at the fair" || j["evidence_import_id"] != "imp-1" {
			t.Fatalf("the imported record in JSON: %v", j)
		}
		states := map[string]string{}
		for _, c := range e.Consents {
			states[c.Purpose] = c.State
		}
		if states["E-marketing"] != "withdrawn" || states["Sales and service"] != "granted" || len(states) != 2 {
			t.Fatalf("current consents: %v", states)
		}
		var sv, en bool
		for _, tx := range e.ConsentTexts {
			if tx.PurposeID == fx.purposeID && tx.ShownIn == "sv" {
				sv = tx.Text == "Ja, skicka mig nyheter." && tx.TextLanguage == "sv" && tx.Version == e.ConsentHistory[0].TextVersion
			}
			if tx.PurposeID == fx.purposeID && tx.ShownIn == "" {
				en = tx.Text != "" && tx.TextLanguage == "en"
			}
		}
		if !sv || !en {
			t.Fatalf("consent texts (sv %v, own language %v): %+v", sv, en, e.ConsentTexts)
		}
		srcs := map[string]int{}
		for _, s := range e.Sources {
			srcs[s.Source+"/"+s.UsedFor] = s.Count
		}
		if srcs["Web form/consent_records"] != 1 || srcs["Import/consent_records"] != 1 || srcs["webform/list_subscriptions"] != 1 {
			t.Fatalf("sources: %v", srcs)
		}
		if len(e.OptInHistory) != 1 || e.OptInHistory[0].To != "opt_out_user" || e.OptInHistory[0].ActorID != agent.ID ||
			e.OptInHistory[0].Method != consent.MethodImport || e.OptInHistory[0].ImportID != "imp-2" {
			t.Fatalf("opt-in history: %+v", e.OptInHistory)
		}
		if j := got["opt_in_history"].([]any)[0].(map[string]any); j["evidence_import_id"] != "imp-2" {
			t.Fatalf("the opt-in change in JSON: %v", j)
		}
		if len(e.Lists) != 1 || e.Lists[0].List != "Newsletter" || e.Lists[0].Status != lists.Subscribed {
			t.Fatalf("lists: %+v", e.Lists)
		}
		if len(e.Emails) != 1 || e.Emails[0].Subject != "Hej Åsa" || e.Emails[0].Kind != mail.KindNotification {
			t.Fatalf("emails: %+v", e.Emails)
		}
		if len(e.Requests) != 1 || e.Requests[0].Kind != requests.KindAccess || e.Requests[0].Status != requests.StatusVerified ||
			e.Requests[0].Note != "wants a copy" {
			t.Fatalf("requests: %+v", e.Requests)
		}
		if len(e.Holds) != 1 || e.Holds[0].Reason != "unpaid invoice" || e.Holds[0].LegalBasis != "legal_obligation" {
			t.Fatalf("holds: %+v", e.Holds)
		}
		if strings.Contains(buf.String(), "198.51.100.9") || strings.Contains(buf.String(), "203.0.113.1") {
			t.Fatal("a viewer's network address is in the export")
		}
		if _, err := fx.svc.Build(ctx, "no-such-contact", export.Viewer{Actor: agent}); !errs.Is(err, errs.KindNotFound) {
			t.Fatalf("unknown contact: %v", err)
		}
	})
}

// TestMaskingAndReveal: an export for someone who may not reveal holds
// masked values and logs only the export; a clear one holds the values
// and logs each, in the access log it shows itself.
func TestMaskingAndReveal(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		fx := setUp(t, db)
		masked, err := fx.svc.Build(ctx, fx.contactID, export.Viewer{Actor: agent, IP: "203.0.113.1"})
		if err != nil {
			t.Fatal(err)
		}
		if f := fieldValue(masked, "national_id"); !f.Masked || f.Value != "••••••••1234" {
			t.Fatalf("masked field: %+v", f)
		}
		if got := accessFields(masked, agent.ID); len(got) != 1 || got[0] != export.AccessField {
			t.Fatalf("masked export logged %v", got)
		}
		if got := accessFields(masked, billing.ID); len(got) != 1 || got[0] != "national_id" {
			t.Fatalf("the earlier reveal is not in the export's access log: %v", got)
		}
		// Each entry says in words what happened, and why.
		for _, a := range masked.AccessLog {
			want := export.Access{At: a.At, ActorKind: a.ActorKind, ActorID: a.ActorID, Field: a.Field,
				What: "Revealed National id", Reason: revealReason}
			if a.Field == export.AccessField {
				want.What, want.Reason = "Downloaded the contact's data (access export)", ""
			}
			if a != want {
				t.Errorf("access log entry %+v, want %+v", a, want)
			}
		}
		var buf bytes.Buffer
		masked.Write(&buf, export.JSON)
		if strings.Contains(buf.String(), "198501011234") {
			t.Fatal("a masked export holds the clear value")
		}

		self := consent.Actor{Kind: consent.ActorContact, ID: fx.contactID}
		clear, err := fx.svc.Build(ctx, fx.contactID, export.Viewer{Actor: self, Clear: true, IP: "192.0.2.50"})
		if err != nil {
			t.Fatal(err)
		}
		if f := fieldValue(clear, "national_id"); f.Masked || f.Value != "198501011234" || clear.Masked {
			t.Fatalf("clear field: %+v", f)
		}
		if got := accessFields(clear, fx.contactID); len(got) != 2 || got[0] != export.AccessField || got[1] != "national_id" {
			t.Fatalf("clear export logged %v", got)
		}
		log, _, err := fx.svc.Contacts.AccessLog(ctx, contact.AccessQuery{Contact: fx.contactID})
		if err != nil {
			t.Fatal(err)
		}
		byActor := map[string][]string{}
		for _, a := range log {
			byActor[a.Actor.Kind+":"+a.Actor.ID] = append(byActor[a.Actor.Kind+":"+a.Actor.ID], a.Field+"@"+a.IP)
		}
		if got := strings.Join(byActor["contact:"+fx.contactID], ","); !strings.Contains(got, "national_id@192.0.2.50") ||
			!strings.Contains(got, export.AccessField+"@192.0.2.50") {
			t.Fatalf("access log of the contact's own export: %v", byActor)
		}
		if got := byActor["user:"+agent.ID]; len(got) != 1 || got[0] != export.AccessField+"@203.0.113.1" {
			t.Fatalf("access log of the masked export: %v", byActor)
		}
	})
}

// TestDoneRunsWithTheLog: what the export fulfils is written with its
// access-log entries, and a failure there shows nothing and logs nothing.
func TestDoneRunsWithTheLog(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		fx := setUp(t, db)
		self := consent.Actor{Kind: consent.ActorContact, ID: fx.contactID}
		count := func() int {
			var n int
			db.Read.QueryRowContext(ctx, `SELECT count(*) FROM access_log WHERE contact_id = $1`, fx.contactID).Scan(&n)
			return n
		}
		before := count()
		_, err := fx.svc.Build(ctx, fx.contactID, export.Viewer{Actor: self, Clear: true, Done: func(tx *store.Tx, now time.Time) error {
			return errs.Conflict("test", "", "refused")
		}})
		if err == nil || count() != before {
			t.Fatalf("a failed Done: %v, %d entries (was %d)", err, count(), before)
		}
		_, err = fx.svc.Build(ctx, fx.contactID, export.Viewer{Actor: self, Clear: true, Done: func(tx *store.Tx, now time.Time) error {
			_, err := requests.SetStatusTx(tx, fx.contactID, requests.KindAccess, requests.StatusDone, "", self, now)
			return err
		}})
		if err != nil {
			t.Fatal(err)
		}
		open, err := requests.List(ctx, db.Read, requests.Query{ContactID: fx.contactID, Open: true}, time.Now())
		if err != nil || len(open) != 0 || count() != before+2 {
			t.Fatalf("after the export: %v, open %+v, %d entries", err, open, count())
		}
	})
}

// TestCSV: a zip of one CSV file per section, the columns the JSON names,
// formulas defused.
func TestCSV(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		fx := setUp(t, db)
		e, err := fx.svc.Build(ctx, fx.contactID, export.Viewer{Actor: agent})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := e.Write(&buf, export.CSV); err != nil {
			t.Fatal(err)
		}
		zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		files := map[string][][]string{}
		var names []string
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			text, ok := strings.CutPrefix(string(b), "\ufeff")
			if !ok {
				t.Fatalf("%s has no UTF-8 byte order mark", f.Name)
			}
			rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
			if err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
			files[f.Name] = rows
			names = append(names, f.Name)
		}
		want := "about.csv contact.csv fields.csv consents.csv consent_history.csv consent_texts.csv sources.csv opt_in_history.csv " +
			"list_subscriptions.csv emails.csv access_log.csv requests.csv holds.csv"
		if strings.Join(names, " ") != want {
			t.Fatalf("files: %v", names)
		}
		pairs := map[string]string{}
		for _, r := range files["contact.csv"][1:] {
			pairs[r[0]] = r[1]
		}
		if pairs["first_name"] != "Åsa" || pairs["last_name"] != `'=HYPERLINK("x")` || pairs["phone"] != "'+46 70 123 45 67" {
			t.Fatalf("contact.csv: %v", pairs)
		}
		h := files["consent_history.csv"]
		if len(h) != 4 || strings.Join(h[0][:5], ",") != "id,recorded_at,purpose_id,purpose,state" || h[1][4] != "granted" {
			t.Fatalf("consent_history.csv: %v", h)
		}
		if at, err := time.Parse(time.RFC3339Nano, h[1][1]); err != nil || !at.Equal(e.ConsentHistory[0].RecordedAt) {
			t.Fatalf("recorded_at %q: %v", h[1][1], err)
		}
		if f := files["access_log.csv"]; len(f) != 3 || strings.Join(f[0], ",") != "at,actor_kind,actor_id,field,what,reason" ||
			f[1][4] != "Revealed National id" || f[1][5] != revealReason || f[2][5] != "" {
			t.Fatalf("access_log.csv: %v", f)
		}
		if f := files["holds.csv"]; len(f) != 2 || f[1][1] != "unpaid invoice" {
			t.Fatalf("holds.csv: %v", f)
		}
		if f := files["about.csv"]; f[1][1] != export.SchemaVersion {
			t.Fatalf("about.csv: %v", f)
		}
	})
}

// TestExcel: a workbook with one sheet per section, opened with excelize.
func TestExcel(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		fx := setUp(t, db)
		self := consent.Actor{Kind: consent.ActorContact, ID: fx.contactID}
		e, err := fx.svc.Build(ctx, fx.contactID, export.Viewer{Actor: self, Clear: true})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := e.Write(&buf, export.XLSX); err != nil {
			t.Fatal(err)
		}
		f, err := excelize.OpenReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		want := "about contact fields consents consent_history consent_texts sources opt_in_history list_subscriptions emails access_log requests holds"
		if got := strings.Join(f.GetSheetList(), " "); got != want {
			t.Fatalf("sheets: %s", got)
		}
		cell := func(sheet, ref string) string {
			v, err := f.GetCellValue(sheet, ref)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		if cell("about", "A2") != "schema" || cell("about", "B2") != export.SchemaVersion || cell("about", "B4") != "false" {
			t.Fatalf("about: %s %s %s", cell("about", "A2"), cell("about", "B2"), cell("about", "B4"))
		}
		rows, err := f.GetRows("fields")
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string][]string{}
		for _, r := range rows[1:] {
			byName[r[0]] = r
		}
		if r := byName["national_id"]; r == nil || r[5] != "198501011234" || r[6] != "false" {
			t.Fatalf("national_id row: %v (header %v)", r, rows[0])
		}
		if cell("contact", "A6") != "last_name" || cell("contact", "B6") != `=HYPERLINK("x")` {
			t.Fatalf("a name is text in Excel, unchanged: %q", cell("contact", "B6"))
		}
		if formula, _ := f.GetCellFormula("contact", "B6"); formula != "" {
			t.Fatalf("a cell became a formula: %q", formula)
		}
		hist, _ := f.GetRows("consent_history")
		if len(hist) != 4 || hist[0][0] != "id" || hist[1][16] != "192.0.2.7" {
			t.Fatalf("consent_history: %v", hist)
		}
		texts, _ := f.GetRows("consent_texts")
		if !strings.Contains(strings.Join(texts[1], "|")+strings.Join(texts[len(texts)-1], "|"), "Ja, skicka mig nyheter.") {
			t.Fatalf("consent_texts: %v", texts)
		}
	})
}

func TestFormatAndFileName(t *testing.T) {
	for in, want := range map[string]export.Format{"": export.JSON, "json": export.JSON, "csv": export.CSV, "xlsx": export.XLSX} {
		if got, err := export.ParseFormat(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"xls", "JSON", "pdf", "csv\n"} {
		if _, err := export.ParseFormat(bad); errs.As(err) == nil || errs.As(err).Field != "format" {
			t.Errorf("%q: %v", bad, err)
		}
	}
	e := &export.Export{Contact: export.Contact{ID: `01ab"; x=../..\` + "\r\n"}, GeneratedAt: time.Date(2026, 11, 30, 17, 5, 0, 0, time.UTC)}
	if got := e.FileName(export.CSV); got != "consentry-export-01abx-20261130-170500.csv.zip" {
		t.Errorf("file name: %q", got)
	}
	if export.XLSX.ContentType() != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" || export.CSV.ContentType() != "application/zip" {
		t.Error("content types")
	}
}

// TestAccessInWords: each kind of access-log entry is said in words, with
// the field's label, or its name when the field has no label any more.
func TestAccessInWords(t *testing.T) {
	labels := map[string]string{"national_id": "National ID"}
	for want, e := range map[string]contact.AccessEntry{
		"Revealed National ID":                          {ContactID: "c1", Field: "national_id"},
		"Revealed shoe_size":                            {ContactID: "c1", Field: "shoe_size"},
		"Downloaded the contact's data (access export)": {ContactID: "c1", Field: export.AccessField},
		"Looked up contacts by National ID: a search or filter compared a value with it; no value was shown": {Field: "national_id"},
	} {
		if got := export.AccessWhat(e, labels); got != want {
			t.Errorf("AccessWhat(%+v) = %q, want %q", e, got, want)
		}
	}
}
