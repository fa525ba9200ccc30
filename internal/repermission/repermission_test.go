package repermission_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/repermission"
	"github.com/consentry/consentry/internal/retention"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// fixture wires the services as the app does, on one clock the test moves.
type fixture struct {
	db      *store.DB
	now     time.Time
	people  *contact.Service
	consent *consent.Service
	optin   *optin.Service
	imports *imports.Service
	svc     *repermission.Service
	jobs    *jobs.Runner
	outbox  *mail.Deliverer
	sent    *sentMail
}

func setUp(t testing.TB, db *store.DB) *fixture {
	f := &fixture{db: db, now: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return f.now }
	log := slog.New(slog.DiscardHandler)
	f.consent = consent.NewService(db).OnConfirm(repermission.ConfirmedTx)
	f.consent.Now = clock
	f.people = contact.NewService(db, f.consent)
	f.people.Now = clock
	tmpl, err := mail.NewTemplates()
	if err != nil {
		t.Fatal(err)
	}
	f.optin = &optin.Service{DB: db, Consent: f.consent, Log: log, Now: clock, BaseURL: "https://consent.example", Sender: "Acme", Mail: tmpl,
		AfterBatch: repermission.BatchTx}
	ls := &lists.Service{DB: db, Now: clock, Purpose: func(ctx context.Context, nameOrID string) (string, string, error) {
		p, err := f.consent.Purpose(ctx, nameOrID)
		if err != nil {
			return "", "", err
		}
		return p.ID, p.Name, nil
	}}
	f.imports = &imports.Service{DB: db, Contacts: f.people, Consent: f.consent, Lists: ls, Log: log, Now: clock}
	f.svc = &repermission.Service{DB: db, OptIn: f.optin, Imports: f.imports, Log: log, Now: clock,
		Condition: func(ctx context.Context, src string) (*filter.Condition, error) {
			return f.people.Condition(ctx, src, false)
		}}
	f.jobs = jobs.NewRunner(db, log)
	f.jobs.Now = clock
	f.jobs.Handle(optin.BulkJob, f.optin.RunBulk)
	f.jobs.Handle(imports.JobKind, f.imports.Handle)
	f.jobs.Handle(imports.DropJobKind, f.imports.HandleDrop)
	f.sent = &sentMail{}
	f.outbox = &mail.Deliverer{DB: db, Transport: f.sent, Log: log, From: "Acme <news@acme.example>", Domain: "acme.example", Now: clock,
		Batch: 50, Lease: time.Minute, MaxAttempts: 3, Poll: time.Second, BaseURL: "https://consent.example"}
	return f
}

// runJobs runs the jobs due until none is left.
func (f *fixture) runJobs(t testing.TB) {
	t.Helper()
	for range 20 {
		n, err := f.jobs.RunDue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("jobs keep coming")
}

func (f *fixture) contact(t testing.TB, email, optIn string) string {
	t.Helper()
	c, err := f.people.Create(context.Background(), contact.NewContact{Input: contact.Input{Email: &email}, OptInStatus: optIn,
		Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func (f *fixture) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	if err := f.db.Write(context.Background(), func(tx *store.Tx) error { _, err := tx.Exec(q, args...); return err }); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) count(t testing.TB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.db.Read.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) get(t testing.TB, id string) *repermission.Run {
	t.Helper()
	r, err := f.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// grant records a granted E-marketing consent for the contact through the
// API path, expiring at expires when not zero.
func (f *fixture) grant(t testing.TB, id string, expires time.Time) {
	t.Helper()
	in := consent.RecordInput{Purpose: optin.EMarketing, State: consent.StateGranted, Source: "API",
		Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}}
	if !expires.IsZero() {
		in.ExpiresAt = &expires
	}
	if _, err := f.consent.Record(context.Background(), id, in); err != nil {
		t.Fatal(err)
	}
}

var linkRE = regexp.MustCompile(`/confirm/([A-Za-z0-9_-]{43})`)

// link sends the email due and returns the last confirmation link's secret
// the address received.
func (f *fixture) link(t testing.TB, email string) string {
	t.Helper()
	if _, err := f.outbox.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	secret := ""
	for _, env := range f.sent.envs {
		if m := linkRE.FindStringSubmatch(env.Text); m != nil && env.To == email {
			secret = m[1]
		}
	}
	if secret == "" {
		t.Fatalf("no confirmation link reached %s", email)
	}
	return secret
}

type sentMail struct{ envs []*mail.Envelope }

func (s *sentMail) Name() string { return "test" }
func (s *sentMail) Send(_ context.Context, envs []*mail.Envelope) []error {
	s.envs = append(s.envs, envs...)
	return make([]error, len(envs))
}
func (s *sentMail) Close() error { return nil }

var user = consent.Actor{Kind: consent.ActorUser, ID: "u1"}

const importFile = "E-mail,Naam,Nieuwsbrief\nanna@example.com,Anna,ja\ncarl@example.com,Carl,nee\ndora@example.com,Dora,nee\neve@example.com,Eve,\nfred@example.com,Fred,\n"

// runImport imports importFile (a dry run when dry) and returns it.
func (f *fixture) runImport(t testing.TB, dry bool) *imports.Import {
	t.Helper()
	ctx := context.Background()
	imp, err := f.imports.Upload(ctx, "leads.csv", strings.NewReader(importFile), consent.Actor{Kind: consent.ActorSystem})
	if err != nil {
		t.Fatal(err)
	}
	def := imports.Definition{Source: "API", Columns: []imports.Column{{Column: "E-mail", Field: "email"}, {Column: "Naam", Field: "first_name"}},
		Consents: []imports.Consent{{Purpose: optin.EMarketing, Column: "Nieuwsbrief", LegalBasis: consent.BasisConsent, CollectedAt: "2026-01-05", TextVersion: 1}}}
	if _, err := f.imports.Start(ctx, imp.ID, def, dry); err != nil {
		t.Fatal(err)
	}
	f.runJobs(t)
	if imp, err = f.imports.Get(ctx, imp.ID); err != nil {
		t.Fatal(err)
	}
	if !dry && (imp.Status != imports.StatusDone || imp.Created != 5) {
		t.Fatalf("the import: %s, %d created", imp.Status, imp.Created)
	}
	return imp
}

func (f *fixture) idOf(t testing.TB, email string) string {
	t.Helper()
	var id string
	if err := f.db.Read.QueryRow(`SELECT id FROM contacts WHERE email = $1`, email).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// report reads the run's report as CSV rows by email.
func (f *fixture) report(t testing.TB, id string) map[string][]string {
	t.Helper()
	var b bytes.Buffer
	if err := f.svc.WriteReport(context.Background(), id, &b); err != nil {
		t.Fatal(err)
	}
	// A byte order mark first, so that a spreadsheet program reads the
	// file as UTF-8.
	if !bytes.HasPrefix(b.Bytes(), []byte("\ufeffcontact_id,")) {
		t.Fatalf("the report does not start with a byte order mark: %q", b.Bytes()[:min(b.Len(), 12)])
	}
	b.Next(len("\ufeff"))
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != strings.Join(repermission.ReportHeader, ",") {
		t.Fatalf("header: %v", recs[0])
	}
	out := map[string][]string{}
	for _, r := range recs[1:] {
		out[r[1]] = r
	}
	return out
}

// TestFromImport asks the contacts an import wrote: the one with a valid
// consent, the one whose row said no (a withdrawn consent), the opted-out
// one and the bounced one are skipped by reason, the other is invited by
// the double opt-in run in the re-permission's own words; confirming
// through the emailed link's secret counts them confirmed in the same
// transaction.
func TestFromImport(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		ctx := context.Background()
		imp := f.runImport(t, false)
		f.exec(t, `UPDATE contacts SET opt_in_status = $1 WHERE email = 'dora@example.com'`, contactstate.OptOutUser)
		f.exec(t, `UPDATE contacts SET deliverability = $1 WHERE email = 'fred@example.com'`, contactstate.DeliverabilityBounced)

		days := 14
		run, err := f.svc.Start(ctx, repermission.Input{ImportID: imp.ID, Days: &days}, user)
		if err != nil {
			t.Fatal(err)
		}
		if run.Status != repermission.StatusInviting || run.Total != 5 || run.Skipped[repermission.SkipValidConsent] != 1 ||
			run.Skipped[repermission.SkipWithdrew] != 1 || run.Skipped[optin.SkipOptedOut] != 1 || run.Skipped[optin.SkipBounced] != 1 {
			t.Fatalf("the run as started: %+v", run)
		}
		f.runJobs(t)
		got := f.get(t, run.ID)
		if got.Status != repermission.StatusWaiting || got.Invited != 1 || got.Waiting != 1 || got.Confirmed != 0 || got.Days != 14 ||
			got.CreatedBy != user || got.ImportID != imp.ID {
			t.Fatalf("the run after sending: %+v", got)
		}
		rep := f.report(t, run.ID)
		if rep["eve@example.com"][4] != repermission.OutcomeInvited || rep["anna@example.com"][5] != repermission.SkipValidConsent ||
			rep["carl@example.com"][5] != repermission.SkipWithdrew || rep["dora@example.com"][5] != optin.SkipOptedOut ||
			rep["fred@example.com"][5] != optin.SkipBounced || rep["eve@example.com"][6] == "" || len(rep) != 5 {
			t.Fatalf("the report: %v", rep)
		}

		// The email asks, in its own words, and quotes the consent text;
		// it does not say the contact asked. Its link confirms.
		secret := f.link(t, "eve@example.com")
		if len(f.sent.envs) != 1 {
			t.Fatalf("%d emails sent, want 1", len(f.sent.envs))
		}
		text, err := f.consent.TextIn(ctx, optin.EMarketing, 1, "en")
		if err != nil {
			t.Fatal(err)
		}
		for _, env := range f.sent.envs {
			if env.Subject != i18n.T("en", "email.repermission.subject") || !strings.Contains(env.Text, fmt.Sprintf(i18n.T("en", "email.repermission.intro"), "Acme")) ||
				!strings.Contains(env.Text, text.Text) || !strings.Contains(env.HTML, i18n.T("en", "email.repermission.button")) ||
				strings.Contains(env.Text, "asked to receive") || strings.Contains(env.Text, i18n.T("en", "email.doi.ignore")) {
				t.Fatalf("the re-permission email:\n%s\n%s", env.Subject, env.Text)
			}
		}
		if _, err := f.optin.Confirm(ctx, secret, optin.Evidence{IP: "192.0.2.1", UserAgent: "test"}); err != nil {
			t.Fatal(err)
		}
		got = f.get(t, run.ID)
		if got.Confirmed != 1 || got.Waiting != 0 || got.Status != repermission.StatusDone || got.FinishedAt == nil {
			t.Fatalf("the run after the confirmation: %+v", got)
		}
		if rep := f.report(t, run.ID); rep["eve@example.com"][4] != repermission.OutcomeConfirmed || rep["eve@example.com"][8] == "" {
			t.Fatalf("the report after the confirmation: %v", rep["eve@example.com"])
		}
		// Nobody lapses: the one invited confirmed.
		f.now = f.now.AddDate(0, 0, 20)
		if n, err := f.svc.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("sweep: %d, %v", n, err)
		}
		// A contact asked and waiting is not asked by a second run; one
		// who confirmed has a valid consent now.
		second, err := f.svc.Start(ctx, repermission.Input{ImportID: imp.ID}, user)
		if err != nil {
			t.Fatal(err)
		}
		if second.Skipped[repermission.SkipValidConsent] != 1 || second.Skipped[optin.SkipAlreadyConfirmed] != 1 || second.Skipped[repermission.SkipWithdrew] != 1 || second.Days != repermission.DefaultDays ||
			second.Status != repermission.StatusDone {
			t.Fatalf("the second run: %+v", second)
		}
	})
}

// TestFromConditionAndLapse asks the contacts a condition selects, then
// moves the clock past the run's days: those who did not confirm lapse,
// are flagged (the condition field repermission_lapsed finds them), and
// one who granted a marketing consent another way since counts as
// confirmed. An expired consent is no valid consent.
func TestFromConditionAndLapse(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		ctx := context.Background()
		quiet := f.contact(t, "quiet@example.com", "")
		phoned := f.contact(t, "phoned@example.com", "")
		expired := f.contact(t, "expired@example.com", "")
		f.grant(t, expired, f.now.Add(time.Hour))
		stopped := f.contact(t, "stopped@example.com", "")
		f.exec(t, `UPDATE contacts SET processing_stopped_at = $2 WHERE id = $1`, stopped, store.Micros(f.now))
		other := f.contact(t, "other@nowhere.example", "")
		f.now = f.now.Add(2 * time.Hour)

		days := 3
		run, err := f.svc.Start(ctx, repermission.Input{Condition: `email endsWith "@example.com"`, Days: &days}, user)
		if err != nil {
			t.Fatal(err)
		}
		if run.Total != 4 || run.Skipped[optin.SkipProcessingStopped] != 1 || run.Condition != `email endsWith "@example.com"` {
			t.Fatalf("the run: %+v", run)
		}
		f.runJobs(t)
		if got := f.get(t, run.ID); got.Invited != 3 || got.Status != repermission.StatusWaiting {
			t.Fatalf("after sending: %+v", got)
		}
		// Not yet.
		f.now = f.now.Add(72*time.Hour - time.Minute)
		if n, err := f.svc.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("sweep before the days ran out: %d, %v", n, err)
		}
		f.grant(t, phoned, time.Time{})
		f.now = f.now.Add(2 * time.Minute)
		if n, err := f.svc.Sweep(ctx); err != nil || n != 2 {
			t.Fatalf("sweep: %d, %v", n, err)
		}
		got := f.get(t, run.ID)
		if got.Lapsed != 2 || got.Confirmed != 1 || got.Waiting != 0 || got.Status != repermission.StatusDone {
			t.Fatalf("after the sweep: %+v", got)
		}
		lapsed, err := f.people.MatchingIDs(ctx, `repermission_lapsed == true`, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(lapsed) != 2 || !contains(lapsed, quiet) || !contains(lapsed, expired) {
			t.Fatalf("repermission_lapsed == true: %v (quiet %s, expired %s)", lapsed, quiet, expired)
		}
		notLapsed, err := f.people.MatchingIDs(ctx, `!repermission_lapsed`, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !contains(notLapsed, phoned) || !contains(notLapsed, other) || contains(notLapsed, quiet) {
			t.Fatalf("!repermission_lapsed: %v", notLapsed)
		}
		c, err := f.people.Get(ctx, quiet)
		if err != nil || c.RepermissionLapsedAt == nil || !c.RepermissionLapsedAt.Equal(f.now) {
			t.Fatalf("the contact's flag: %+v, %v", c, err)
		}
		// The sweep again changes nothing.
		if n, err := f.svc.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("second sweep: %d, %v", n, err)
		}

		// A late confirmation (the link still works) counts, and takes
		// the flag off.
		secret := f.link(t, "quiet@example.com")
		if _, err := f.optin.Confirm(ctx, secret, optin.Evidence{IP: "192.0.2.1", UserAgent: "test"}); err != nil {
			t.Fatal(err)
		}
		got = f.get(t, run.ID)
		if got.Lapsed != 1 || got.Confirmed != 2 {
			t.Fatalf("after a late confirmation: %+v", got)
		}
		if c, _ := f.people.Get(ctx, quiet); c.RepermissionLapsedAt != nil {
			t.Fatal("the late confirmation left the flag")
		}
		rep := f.report(t, run.ID)
		if rep["quiet@example.com"][4] != repermission.OutcomeConfirmed || rep["quiet@example.com"][9] == "" ||
			rep["expired@example.com"][4] != repermission.OutcomeLapsed || rep["phoned@example.com"][4] != repermission.OutcomeConfirmed {
			t.Fatalf("the report: %v", rep)
		}
	})
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// TestRetentionActsOnLapse: a contact whose E-marketing record would keep
// them (the purpose has no fixed period) becomes due for retention once
// their re-permission lapsed, and is erased after the grace period; one
// that another purpose keeps, or who consented after the lapse, is not.
func TestRetentionActsOnLapse(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		ctx := context.Background()
		var erased []string
		ret := &retention.Service{DB: db, Now: func() time.Time { return f.now },
			Erase: func(tx *store.Tx, ids []string, action, rule string, now time.Time) error {
				erased = append(erased, ids...)
				return nil
			}}
		grace := 0
		if _, err := settings.Update(ctx, db, settings.Patch{RetentionGraceDays: &grace}, audit.Actor{Kind: "user"}, f.now); err != nil {
			t.Fatal(err)
		}
		lone := f.contact(t, "lone@example.com", "")
		kept := f.contact(t, "kept@example.com", "")
		later := f.contact(t, "later@example.com", "")
		for _, id := range []string{lone, kept, later} {
			f.grant(t, id, f.now.Add(time.Minute)) // a consent that expires: no valid consent
		}
		if _, err := f.consent.Record(ctx, kept, consent.RecordInput{Purpose: "Sales and service", State: consent.StateGranted,
			Source: "API", Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}}); err != nil {
			t.Fatal(err)
		}
		f.now = f.now.Add(time.Hour)
		if flagged, _, err := ret.Flag(ctx); err != nil || flagged != 0 {
			t.Fatalf("before any lapse retention flagged %d (%v)", flagged, err)
		}
		days := 1
		run, err := f.svc.Start(ctx, repermission.Input{Condition: `email endsWith "@example.com"`, Days: &days}, user)
		if err != nil {
			t.Fatal(err)
		}
		f.runJobs(t)
		f.now = f.now.Add(25 * time.Hour)
		if n, err := f.svc.Sweep(ctx); err != nil || n != 3 {
			t.Fatalf("sweep: %d, %v", n, err)
		}
		f.now = f.now.Add(time.Hour)
		f.grant(t, later, time.Time{}) // a new consent after the lapse counts as usual
		if flagged, _, err := ret.Flag(ctx); err != nil || flagged != 1 {
			t.Fatalf("retention flagged %d (%v)", flagged, err)
		}
		c, err := f.people.Get(ctx, lone)
		if err != nil || c.RetentionDueAt == nil {
			t.Fatalf("the lapsed contact is not due: %+v %v", c, err)
		}
		if n, err := ret.Run(ctx); err != nil || n != 1 || len(erased) != 1 || erased[0] != lone {
			t.Fatalf("retention erased %d %v (%v)", n, erased, err)
		}
		if got := f.get(t, run.ID); got.Lapsed != 3 {
			t.Fatalf("the run: %+v", got)
		}
	})
}

// TestBadInputWritesNothing: each refusal names its field, and leaves no
// run, no double opt-in run and no job behind.
func TestBadInputWritesNothing(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		ctx := context.Background()
		dry := f.runImport(t, true)
		f.contact(t, "x@example.com", "")
		zero, big := 0, 366
		for _, c := range []struct {
			in    repermission.Input
			field string
			kind  errs.Kind
		}{
			{repermission.Input{}, "condition", errs.KindInvalid},
			{repermission.Input{ImportID: dry.ID, Condition: "true"}, "condition", errs.KindInvalid},
			{repermission.Input{Condition: `nosuchfield == 1`}, "condition", errs.KindInvalid},
			{repermission.Input{Condition: `email ==`}, "condition", errs.KindInvalid},
			{repermission.Input{Condition: "true", Days: &zero}, "days", errs.KindInvalid},
			{repermission.Input{Condition: "true", Days: &big}, "days", errs.KindInvalid},
			{repermission.Input{ImportID: "no-such-import"}, "import_id", errs.KindInvalid},
			{repermission.Input{ImportID: dry.ID}, "import_id", errs.KindRefused},
		} {
			_, err := f.svc.Start(ctx, c.in, user)
			e := errs.As(err)
			if e == nil || e.Field != c.field || e.Kind != c.kind || e.Message == "" {
				t.Errorf("%+v: %v", c.in, err)
			}
		}
		if n := f.count(t, `SELECT count(*) FROM repermission_runs`) + f.count(t, `SELECT count(*) FROM repermission_contacts`) +
			f.count(t, `SELECT count(*) FROM optin_bulk`) + f.count(t, `SELECT count(*) FROM jobs WHERE kind = $1`, optin.BulkJob); n != 0 {
			t.Fatalf("refusals wrote %d rows", n)
		}
		if _, err := f.svc.Get(ctx, "no-such-run"); !errs.Is(err, errs.KindNotFound) {
			t.Fatalf("an unknown run: %v", err)
		}
		if err := f.svc.WriteReport(ctx, "no-such-run", &bytes.Buffer{}); !errs.Is(err, errs.KindNotFound) {
			t.Fatalf("an unknown run's report: %v", err)
		}
	})
}

// TestConfirmedByAWebform: a webform's confirmation link confirms the
// address through the same rule as an invitation's (consent.ApplyOptIn on
// the confirmation channel, which the webform's confirmation calls), and
// answers the run that asked the contact, in its transaction.
func TestConfirmedByAWebform(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		ctx := context.Background()
		id := f.contact(t, "wendy@example.com", "")
		run, err := f.svc.Start(ctx, repermission.Input{Condition: `email == "wendy@example.com"`}, user)
		if err != nil {
			t.Fatal(err)
		}
		f.runJobs(t)
		f.now = f.now.Add(time.Hour)
		actor := consent.Actor{Kind: consent.ActorContact, ID: id}
		ev := consent.Evidence{Method: consent.MethodWebformConfirmed, IP: "192.0.2.7", UserAgent: "test"}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			k, err := contactstate.Load(tx, id)
			if err != nil {
				return err
			}
			_, err = f.consent.ApplyOptIn(tx, k, consent.OptInInput{Status: contactstate.DoubleOptIn, Channel: consent.ChannelConfirmation,
				Actor: actor, Evidence: ev}, f.now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		got := f.get(t, run.ID)
		if got.Confirmed != 1 || got.Status != repermission.StatusDone {
			t.Fatalf("the run: %+v", got)
		}
		if rep := f.report(t, run.ID); rep["wendy@example.com"][8] != f.now.Format(time.RFC3339) {
			t.Fatalf("confirmed at %q, want %s", rep["wendy@example.com"][8], f.now.Format(time.RFC3339))
		}
	})
}

// TestRunsStartedTogetherAskOnce starts several runs for the same contacts
// at once: each contact is asked by one run only, and the others count it
// as already asked, however their reads of the audience and their writes
// interleave.
func TestRunsStartedTogetherAskOnce(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		f.svc.StartChunk = 7 // several transactions a run, which interleave
		ctx := context.Background()
		const people, runs = 40, 6
		for i := range people {
			f.contact(t, "p"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+string(rune('a'+i/26))+"@example.com", "")
		}
		type result struct {
			run *repermission.Run
			err error
		}
		start := make(chan struct{})
		out := make(chan result, runs)
		for range runs {
			go func() {
				<-start
				r, err := f.svc.Start(ctx, repermission.Input{Condition: `email endsWith "@example.com"`}, user)
				out <- result{r, err}
			}()
		}
		close(start)
		var asked, already int64
		for range runs {
			r := <-out
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.run.Total != people {
				t.Fatalf("a run's audience: %+v", r.run)
			}
			asked += r.run.Total - r.run.SkippedCount()
			already += r.run.Skipped[repermission.SkipAlreadyAsked]
		}
		if asked != people || already != people*(runs-1) {
			t.Fatalf("%d contacts asked and %d counted as already asked; want %d and %d", asked, already, people, people*(runs-1))
		}
		f.runJobs(t)
		if n := f.count(t, `SELECT COUNT(*) FROM repermission_contacts WHERE invited_at IS NOT NULL`); n != people {
			t.Fatalf("%d invitations recorded, want %d", n, people)
		}
		if n := f.count(t, `SELECT COUNT(DISTINCT contact_id) FROM repermission_contacts WHERE skip_reason = ''`); n != people {
			t.Fatalf("%d contacts awaited, want %d", n, people)
		}
		for {
			n, err := f.outbox.RunDue(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		if n := len(f.sent.envs); n != people {
			t.Fatalf("%d emails sent, want %d", n, people)
		}
	})
}

// TestFailedRunReleasesContacts fails a run's double opt-in run before it
// reaches anyone: the run shows failed, its contacts count as not asked
// because of it, and a later run asks them.
func TestFailedRunReleasesContacts(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		f.optin.AfterFailed = repermission.FailedTx
		ctx := context.Background()
		for _, e := range []string{"a@example.com", "b@example.com", "c@example.com"} {
			f.contact(t, e, "")
		}
		in := repermission.Input{Condition: `email endsWith "@example.com"`}
		run, err := f.svc.Start(ctx, in, user)
		if err != nil {
			t.Fatal(err)
		}
		var bulk string
		if err := db.Read.QueryRow(`SELECT bulk_id FROM repermission_runs WHERE id = $1`, run.ID).Scan(&bulk); err != nil {
			t.Fatal(err)
		}
		broken := errors.New("the batch broke")
		f.optin.AfterBatch = func(*store.Tx, string, map[string]string, bool, time.Time) error { return broken }
		payload, _ := json.Marshal(map[string]string{"id": bulk})
		if err := f.optin.RunBulk(ctx, &jobs.Job{Kind: optin.BulkJob, Payload: payload, Attempt: 5, MaxAttempts: 5}); !errors.Is(err, broken) {
			t.Fatalf("the last attempt: %v", err)
		}
		got := f.get(t, run.ID)
		if got.Status != repermission.StatusFailed || got.Invited != 0 || got.Skipped[repermission.SkipRunFailed] != 3 {
			t.Fatalf("the failed run: %+v", got)
		}
		f.optin.AfterBatch = repermission.BatchTx
		again, err := f.svc.Start(ctx, in, user)
		if err != nil {
			t.Fatal(err)
		}
		if again.Skipped[repermission.SkipAlreadyAsked] != 0 || again.SkippedCount() != 0 {
			t.Fatalf("the second run: %+v", again)
		}
		f.runJobs(t)
		if got := f.get(t, again.ID); got.Invited != 3 || got.Status != repermission.StatusWaiting {
			t.Fatalf("the second run after sending: %+v", got)
		}
	})
}

// A large audience is recorded in several transactions under a run that
// shows nowhere until it starts; a start cut off midway is removed by the
// sweep, and its contacts may be asked again.
func TestLargeStartInChunks(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		f.svc.StartChunk = 3
		ctx := context.Background()
		for i := range 10 {
			f.contact(t, "c"+string(rune('a'+i))+"@example.com", "")
		}
		stopped := f.contact(t, "stopped@example.com", "")
		f.exec(t, `UPDATE contacts SET processing_stopped_at = $2 WHERE id = $1`, stopped, store.Micros(f.now))
		in := repermission.Input{Condition: `email endsWith "@example.com"`}
		run, err := f.svc.Start(ctx, in, user)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.get(t, run.ID); got.Total != 11 || got.SkippedCount() != 1 || got.Status != repermission.StatusInviting {
			t.Fatalf("the run: %+v", got)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM repermission_contacts WHERE run_id = $1`, run.ID); n != 11 {
			t.Fatalf("%d contacts recorded", n)
		}
		f.runJobs(t)
		if got := f.get(t, run.ID); got.Invited != 10 {
			t.Fatalf("after sending: %+v", got)
		}

		// A start cut off after recording some contacts: hidden, it holds
		// them until the sweep removes it.
		cut := "01900000-0000-7000-8000-000000000001"
		f.exec(t, `INSERT INTO repermission_runs (id, days, bulk_id, status, total, skipped, created_by, created_at)
			VALUES ($1, 30, '', 'preparing', 1, '{}', '{}', $2)`, cut, store.Micros(f.now))
		late := f.contact(t, "late@example.com", "")
		f.exec(t, `INSERT INTO repermission_contacts (run_id, contact_id, skip_reason) VALUES ($1, $2, '')`, cut, late)
		if runs, err := f.svc.List(ctx, 50); err != nil || len(runs) != 1 {
			t.Fatalf("runs listed: %d %v", len(runs), err)
		}
		if _, err := f.svc.Get(ctx, cut); !errs.Is(err, errs.KindNotFound) {
			t.Fatalf("a preparing run: %v", err)
		}
		f.now = f.now.Add(2 * time.Hour)
		if _, err := f.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM repermission_contacts WHERE run_id = $1`, cut); n != 0 {
			t.Fatalf("the cut-off run kept %d contacts", n)
		}
		again, err := f.svc.Start(ctx, repermission.Input{Condition: `email == "late@example.com"`}, user)
		if err != nil || again.SkippedCount() != 0 {
			t.Fatalf("asking the cut-off run's contact again: %+v %v", again, err)
		}
	})
}
