package erasure_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/erasure"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/events/eventstest"
	"github.com/consentry/consentry/internal/holds"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/requests"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/suppression"
	"github.com/consentry/consentry/internal/vault/vaulttest"
)

func ptr[T any](v T) *T { return &v }

var (
	user   = consent.Actor{Kind: consent.ActorUser, ID: "u1"}
	api    = consent.Actor{Kind: consent.ActorAPIToken, ID: "t1"}
	byUser = erasure.Why{Actor: user}
)

// world is a database with the services an erasure touches.
type world struct {
	t       testing.TB
	db      *store.DB
	consent *consent.Service
	people  *contact.Service
	erase   *erasure.Service
	now     time.Time
}

func newWorld(t testing.TB, db *store.DB) *world {
	w := &world{t: t, db: db, now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return w.now }
	w.consent = consent.NewService(db)
	w.consent.Now = clock
	w.people = contact.NewService(db, w.consent)
	w.people.Now = clock
	w.people.Vault = vaulttest.New(t)
	w.erase = erasure.New(db)
	w.erase.Now = clock
	ctx := context.Background()
	for _, in := range []contact.FieldInput{
		{Name: ptr("segment"), Type: ptr("text")},
		{Name: ptr("street"), Type: ptr("text"), Personal: ptr(true)},
		{Name: ptr("national_id"), Type: ptr("text"), Personal: ptr(true), Sensitive: ptr(true)},
	} {
		if _, err := w.people.CreateField(ctx, audit.Actor{Kind: "user"}, in); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

const address = "Anna.Erasable@example.com"

// person creates a contact with every kind of personal data: core fields,
// a personal and a sensitive custom field, consents and an opt-in with IP
// address and user agent, an email in the outbox and an erasure request.
func (w *world) person(email string) *contact.Contact {
	t, ctx := w.t, context.Background()
	c, err := w.people.Create(ctx, contact.NewContact{
		Input: contact.Input{Email: ptr(email), FirstName: ptr("Anna"), LastName: ptr("Erasmussen"), Phone: ptr("+46 70 123 45 67"),
			Country: ptr("SE"), Region: ptr("Skåne"), Language: ptr("sv"), Stage: ptr("customer"), Owner: ptr("sales-7"),
			Fields: map[string]any{"segment": "retail", "street": "Storgatan 12", "national_id": "19800101-1234"}},
		OptInStatus: contactstate.SingleOptInUser,
		Consents: []consent.RecordInput{{Purpose: "E-marketing", State: consent.StateGranted, Source: "api", TextLanguage: "sv",
			Actor: api, Evidence: consent.Evidence{Method: consent.MethodAPI, IP: "203.0.113.77", UserAgent: "AnnaBrowser/1.0"}}},
		Actor: api, Evidence: consent.Evidence{Method: consent.MethodAPI, IP: "203.0.113.77", UserAgent: "AnnaBrowser/1.0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = w.db.Write(ctx, func(tx *store.Tx) error {
		if _, err := mail.Enqueue(tx, mail.Message{ContactID: c.ID, Kind: mail.KindAdHoc, Language: "en",
			Subject: "Hello Anna Erasmussen", Text: "Dear Anna, your street is Storgatan 12."}, w.now); err != nil {
			return err
		}
		_, err := requests.CreateTx(tx, requests.New{Kind: requests.KindErasure, Channel: requests.ChannelAPI, ContactID: c.ID,
			Verified: true, Actor: api}, nil, w.now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (w *world) verify() {
	w.t.Helper()
	rep, err := w.consent.VerifyLedger(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	if !rep.OK {
		w.t.Fatalf("ledger does not verify: %+v", rep.Problem)
	}
}

func (w *world) ledgerProblem() *ledger.Problem {
	w.t.Helper()
	rep, err := w.consent.VerifyLedger(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return rep.Problem
}

func (w *world) exec(q string, args ...any) {
	w.t.Helper()
	if err := w.db.Write(context.Background(), func(tx *store.Tx) error { _, err := tx.Exec(q, args...); return err }); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) count(q string, args ...any) int {
	w.t.Helper()
	var n int
	if err := w.db.Read.QueryRow(q, args...).Scan(&n); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// TestEraseKeepsNonIdentifyingRemainder: everything personal goes, the
// remainder stays, the ledger verifies and records the erasure, the
// request is done, the address is suppressed, and erasing again changes
// nothing.
func TestEraseKeepsNonIdentifyingRemainder(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		if _, err := settings.Update(ctx, db, settings.Patch{KeptAfterErasure: &[]string{"country"}}, audit.Actor{Kind: "user"}, w.now); err != nil {
			t.Fatal(err)
		}
		c := w.person(address)
		other := w.person("someone.else@example.com")
		w.verify()

		out, err := w.erase.Erase(ctx, c.ID, byUser)
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != erasure.StatusErased {
			t.Fatalf("status %q", out.Status)
		}
		got, err := w.people.Get(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Email != "erased-"+c.ID || got.FirstName != "" || got.LastName != "" || got.Phone != "" || got.Region != "" ||
			got.Language != "" || got.Stage != "" || got.Owner != "" || got.ErasedAt == nil {
			t.Fatalf("core fields left: %+v", got)
		}
		if got.Country != "SE" || got.Kind != c.Kind {
			t.Fatalf("country (kept by setting) or kind lost: %+v", got)
		}
		if len(got.Fields) != 1 || got.Fields["segment"] != "retail" {
			t.Fatalf("custom fields after erasure: %v", got.Fields)
		}
		for table, n := range map[string]int{
			"sensitive_values": w.count(`SELECT count(*) FROM sensitive_values WHERE contact_id = $1`, c.ID),
			"contact_keys":     w.count(`SELECT count(*) FROM contact_keys WHERE contact_id = $1`, c.ID),
			"evidence":         w.count(`SELECT count(*) FROM consent_records WHERE contact_id = $1 AND (ip <> '' OR user_agent <> '')`, c.ID),
			"opt-in evidence":  w.count(`SELECT count(*) FROM opt_in_changes WHERE contact_id = $1 AND (ip <> '' OR user_agent <> '')`, c.ID),
			"outbox text":      w.count(`SELECT count(*) FROM outbox WHERE contact_id = $1 AND (subject <> '' OR text_body <> '')`, c.ID),
		} {
			if n != 0 {
				t.Errorf("%s: %d rows left", table, n)
			}
		}
		if n := w.count(`SELECT count(*) FROM consent_records WHERE contact_id = $1 AND state = 'granted' AND legal_basis = 'consent'
			AND text_language = 'sv' AND text_version = 1`, c.ID); n != 1 {
			t.Errorf("the consent record's remainder is gone: %d", n)
		}
		if n := w.count(`SELECT count(*) FROM sensitive_values WHERE contact_id = $1`, other.ID); n != 1 {
			t.Errorf("another contact's sensitive value went too")
		}
		if n := w.count(`SELECT count(*) FROM ledger_events WHERE kind = 'contact_erased' AND contact_ref = $1`, c.LedgerRef); n != 1 {
			t.Errorf("%d contact_erased events", n)
		}
		open, err := requests.List(ctx, db.Read, requests.Query{ContactID: c.ID, Kind: requests.KindErasure}, w.now)
		if err != nil || len(open) != 1 || open[0].Status != requests.StatusDone {
			t.Fatalf("request after erasure: %+v, %v", open, err)
		}
		log, err := suppression.Log(ctx, db.Read, c.ID)
		if err != nil || len(log) != 1 || log[0].Action != suppression.Erased || log[0].Actor != user {
			t.Fatalf("erasure log: %+v, %v", log, err)
		}
		if n := w.count(`SELECT count(*) FROM suppressions`); n != 1 {
			t.Fatalf("%d suppression entries", n)
		}
		w.verify()

		again, err := w.erase.Erase(ctx, c.ID, byUser)
		if err != nil || again.Status != erasure.StatusAlreadyErased {
			t.Fatalf("second erasure: %+v, %v", again, err)
		}
		if n := w.count(`SELECT count(*) FROM ledger_events WHERE kind = 'contact_erased'`); n != 1 {
			t.Errorf("erasing again appended another event: %d", n)
		}
		w.verify()

		if _, err := w.erase.Erase(ctx, "no-such-contact", byUser); !errs.Is(err, errs.KindNotFound) {
			t.Fatalf("unknown contact: %v", err)
		}
	})
}

// TestErasedRowsStayChecked: after erasure, what an erased history row
// keeps of its evidence is still covered by the ledger.
func TestErasedRowsStayChecked(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		c := w.person(address)
		if _, err := w.erase.Erase(ctx, c.ID, byUser); err != nil {
			t.Fatal(err)
		}
		w.verify()
		for _, tamper := range []struct{ name, do, undo string }{
			{"text language", `UPDATE consent_records SET text_language = 'nl' WHERE contact_id = $1`,
				`UPDATE consent_records SET text_language = 'sv' WHERE contact_id = $1`},
			{"token", `UPDATE consent_records SET token_id = 'forged' WHERE contact_id = $1`,
				`UPDATE consent_records SET token_id = '' WHERE contact_id = $1`},
			{"IP address put back", `UPDATE opt_in_changes SET ip = '198.51.100.1' WHERE contact_id = $1`,
				`UPDATE opt_in_changes SET ip = '' WHERE contact_id = $1`},
		} {
			w.exec(tamper.do, c.ID)
			if p := w.ledgerProblem(); p == nil || p.Code != ledger.ProblemEvidence {
				t.Errorf("%s changed after erasure: %+v", tamper.name, p)
			}
			w.exec(tamper.undo, c.ID)
			w.verify()
		}
	})
}

// TestSuppressedAddressNeedsNewConsent: an erased or deleted address comes
// back through the API only with a new explicit consent, and the new
// record says it was erased before.
func TestSuppressedAddressNeedsNewConsent(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		c := w.person(address)
		if _, err := w.erase.Erase(ctx, c.ID, byUser); err != nil {
			t.Fatal(err)
		}
		w.now = w.now.Add(48 * time.Hour)
		bare := contact.NewContact{Input: contact.Input{Email: ptr("  anna.erasable@EXAMPLE.com ")}, Actor: api,
			Evidence: consent.Evidence{Method: consent.MethodAPI}}
		_, err := w.people.Create(ctx, bare)
		e := errs.As(err)
		if e == nil || e.Kind != errs.KindRefused || e.Field != "email" || !strings.Contains(e.Message, "2026-11-30") {
			t.Fatalf("re-creating without consent: %v", err)
		}
		// A consent on another legal basis is not a new explicit consent.
		contract := bare
		contract.Consents = []consent.RecordInput{{Purpose: "Sales and service", State: consent.StateGranted, Source: "api", Actor: api,
			Evidence: consent.Evidence{Method: consent.MethodAPI}}}
		if _, err := w.people.Create(ctx, contract); !errs.Is(err, errs.KindRefused) {
			t.Fatalf("re-creating with a contract consent: %v", err)
		}
		explicit := bare
		explicit.Consents = []consent.RecordInput{{Purpose: "E-marketing", State: consent.StateGranted, Source: "api", Actor: api,
			Evidence: consent.Evidence{Method: consent.MethodAPI}}}
		back, err := w.people.Create(ctx, explicit)
		if err != nil {
			t.Fatal(err)
		}
		if back.PreviouslyErasedAt == nil || !back.PreviouslyErasedAt.Equal(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)) {
			t.Fatalf("previously erased at %v", back.PreviouslyErasedAt)
		}
		if got, _ := w.people.Get(ctx, back.ID); got.PreviouslyErasedAt == nil {
			t.Fatal("previously_erased_at not stored")
		}
		w.verify()

		// Deleting leaves the same suppression entry and a log line.
		if err := w.people.Delete(ctx, back.ID, user); err != nil {
			t.Fatal(err)
		}
		if _, err := w.people.Create(ctx, bare); !errs.Is(err, errs.KindRefused) {
			t.Fatalf("re-creating a deleted address: %v", err)
		}
		log, err := suppression.Log(ctx, db.Read, back.ID)
		if err != nil || len(log) != 1 || log[0].Action != suppression.Deleted {
			t.Fatalf("erasure log of the deletion: %+v, %v", log, err)
		}
		d := w.person("deleted.only@example.com")
		if err := w.people.Delete(ctx, d.ID, user); err != nil {
			t.Fatal(err)
		}
		if _, err := w.people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr("deleted.only@example.com")}, Actor: api,
			Evidence: consent.Evidence{Method: consent.MethodAPI}}); !errs.Is(err, errs.KindRefused) {
			t.Fatalf("re-creating a deleted address: %v", err)
		}
		if n := w.count(`SELECT count(*) FROM suppressions`); n != 2 {
			t.Fatalf("%d suppression entries", n)
		}
		w.verify()
	})
}

// TestHoldKeepsPartUntilItEnds: under a hold, erasure erases what the hold
// does not need, marketing stops and the request is partly done; delete is
// refused naming the hold; lifting the hold lets the erasure finish at
// once, and a hold that runs out lets it finish on the next run of the job.
// Each step writes its events: the hold set and lifted, the erasure held
// back (once per hold) and then done.
func TestHoldKeepsPartUntilItEnds(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		c := w.person(address)
		written := eventstest.From(t, db)
		expect := func(step string, want ...string) []events.Event {
			t.Helper()
			got := written.Next(t)
			if !slices.Equal(eventstest.Types(got), want) {
				t.Fatalf("%s wrote %v, want %v", step, eventstest.Types(got), want)
			}
			return got
		}
		if _, err := w.erase.SetHold(ctx, c.ID, holds.New{Reason: "invoice 2026-117 must be kept 7 years", LegalBasis: "tax"}, user); !errs.Is(err, errs.KindInvalid) {
			t.Fatalf("unknown legal basis: %v", err)
		}
		if _, err := w.erase.SetHold(ctx, c.ID, holds.New{LegalBasis: holds.BasisLegalObligation}, user); !errs.Is(err, errs.KindInvalid) {
			t.Fatalf("no reason: %v", err)
		}
		h, err := w.erase.SetHold(ctx, c.ID, holds.New{Reason: "invoice 2026-117 must be kept 7 years", LegalBasis: holds.BasisLegalObligation}, user)
		if err != nil {
			t.Fatal(err)
		}
		set := eventstest.Data[events.LegalHoldData](t, expect("set hold", events.LegalHoldSet)[0])
		if set != (events.LegalHoldData{ContactID: c.ID, HoldID: h.ID, LegalBasis: holds.BasisLegalObligation, ActorKind: consent.ActorUser}) {
			t.Fatalf("legal_hold.set %+v", set)
		}
		out, err := w.erase.Erase(ctx, c.ID, byUser)
		if err != nil {
			t.Fatal(err)
		}
		held := eventstest.Data[events.ErasureHeldData](t, expect("erasure under hold", events.ErasureHeld, events.RequestDone)[0])
		if held != (events.ErasureHeldData{ContactID: c.ID, HoldID: h.ID, LegalBasis: holds.BasisLegalObligation, ActorKind: consent.ActorUser}) {
			t.Fatalf("erasure.held %+v", held)
		}
		if _, err := w.erase.Erase(ctx, c.ID, byUser); err != nil {
			t.Fatal(err)
		}
		expect("erasure again under the same hold")
		if out.Status != erasure.StatusPartlyErased || out.Hold.ID != h.ID || !strings.Contains(out.Message, "invoice 2026-117") {
			t.Fatalf("erasure under hold: %+v", out)
		}
		got, _ := w.people.Get(ctx, c.ID)
		if got.Email != address || got.FirstName != "Anna" || got.ErasedAt != nil || got.ErasureRequestedAt == nil {
			t.Fatalf("the hold's fields went, or the erasure was not noted: %+v", got)
		}
		if n := w.count(`SELECT count(*) FROM sensitive_values WHERE contact_id = $1`, c.ID) +
			w.count(`SELECT count(*) FROM contact_keys WHERE contact_id = $1`, c.ID); n != 0 {
			t.Fatal("sensitive values survived a partial erasure")
		}
		reqs, _ := requests.List(ctx, db.Read, requests.Query{ContactID: c.ID}, w.now)
		if len(reqs) != 1 || reqs[0].Status != requests.StatusPartlyDone || !strings.Contains(reqs[0].Reason, "invoice 2026-117") {
			t.Fatalf("request under hold: %+v", reqs)
		}
		err = w.people.Delete(ctx, c.ID, user)
		if e := errs.As(err); e == nil || e.Kind != errs.KindRefused || !strings.Contains(e.Message, "invoice 2026-117") {
			t.Fatalf("delete under hold: %v", err)
		}
		var k contactstate.State
		if err := db.Write(ctx, func(tx *store.Tx) (err error) { k, err = contactstate.Load(tx, c.ID); return err }); err != nil {
			t.Fatal(err)
		}
		if r := mail.Gate(mail.KindCampaign, mail.Recipient{Exists: true, State: k}); r != mail.ReasonErasureRequested {
			t.Fatalf("campaign to a contact whose erasure waits: %q", r)
		}
		w.verify()

		if _, _, err := w.erase.LiftHold(ctx, c.ID, h.ID, "", user); !errs.Is(err, errs.KindInvalid) {
			t.Fatalf("lift without a reason: %v", err)
		}
		lifted, done, err := w.erase.LiftHold(ctx, c.ID, h.ID, "invoice archived elsewhere", user)
		if err != nil {
			t.Fatal(err)
		}
		if lifted.Active || done == nil || done.Status != erasure.StatusErased {
			t.Fatalf("lifting the hold: %+v, %+v", lifted, done)
		}
		expect("lift", events.LegalHoldLifted, events.ContactErased)
		if _, _, err := w.erase.LiftHold(ctx, c.ID, h.ID, "again", user); !errs.Is(err, errs.KindConflict) {
			t.Fatalf("lifting twice: %v", err)
		}
		if got, _ := w.people.Get(ctx, c.ID); got.ErasedAt == nil || got.FirstName != "" {
			t.Fatalf("not erased once the hold was lifted: %+v", got)
		}
		log, _ := suppression.Log(ctx, db.Read, c.ID)
		if len(log) != 2 || log[0].Action != suppression.PartlyErased || log[1].Action != suppression.Erased || log[1].Rule != erasure.RuleHoldEnded {
			t.Fatalf("erasure log: %+v", log)
		}
		w.verify()

		// A hold that runs out.
		d := w.person("bookkept@example.com")
		written.Next(t) // its creation
		until := w.now.Add(24 * time.Hour)
		if _, err := w.erase.SetHold(ctx, d.ID, holds.New{Reason: "dispute", LegalBasis: holds.BasisLegalClaims, Until: &until}, user); err != nil {
			t.Fatal(err)
		}
		if out, err := w.erase.Erase(ctx, d.ID, byUser); err != nil || out.Status != erasure.StatusPartlyErased {
			t.Fatalf("erasure under a hold with an end: %+v, %v", out, err)
		}
		if n, err := w.erase.ResumeReleased(ctx, 100); err != nil || n != 0 {
			t.Fatalf("resumed %d while the hold holds: %v", n, err)
		}
		w.now = until.Add(time.Second)
		expect("a second contact held and erased", events.LegalHoldSet, events.ErasureHeld, events.RequestDone)
		if n, err := w.erase.ResumeReleased(ctx, 100); err != nil || n != 1 {
			t.Fatalf("resumed %d after the hold ran out: %v", n, err)
		}
		// Resumed before the sweep recorded the hold's end, the erasure
		// records it first.
		expect("the hold ran out", events.LegalHoldLifted, events.ContactErased)
		if got, _ := w.people.Get(ctx, d.ID); got.ErasedAt == nil {
			t.Fatal("not erased after the hold ran out")
		}
		if n, err := w.erase.ResumeReleased(ctx, 100); err != nil || n != 0 {
			t.Fatalf("resumed %d twice: %v", n, err)
		}
		list, err := w.erase.Holds(ctx, d.ID)
		if err != nil || len(list) != 1 || list[0].Active {
			t.Fatalf("holds: %+v, %v", list, err)
		}
		if n := w.count(`SELECT count(*) FROM ledger_events WHERE kind = 'legal_hold'`); n != 4 {
			t.Fatalf("%d legal_hold events, want set, lifted, set, lifted (ran out)", n)
		}
		if _, err := w.erase.SetHold(ctx, d.ID, holds.New{Reason: "late", LegalBasis: holds.BasisContract}, user); !errs.Is(err, errs.KindConflict) {
			t.Fatalf("hold on an erased contact: %v", err)
		}
		w.verify()
	})
}

// TestEraseMany erases a batch in one transaction.
func TestEraseMany(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		var ids []string
		for _, e := range []string{"a@example.com", "b@example.com", "c@example.com"} {
			ids = append(ids, w.person(e).ID)
		}
		var outs []*erasure.Outcome
		err := db.Write(ctx, func(tx *store.Tx) (err error) {
			outs, err = erasure.EraseManyTx(tx, append(ids, "gone"), erasure.Why{Actor: consent.Actor{Kind: consent.ActorSystem}, Rule: "purpose:e-marketing"}, w.now)
			return err
		})
		if err != nil || len(outs) != 3 {
			t.Fatalf("%d outcomes: %v", len(outs), err)
		}
		if n := w.count(`SELECT count(*) FROM contacts WHERE erased_at IS NOT NULL`); n != 3 {
			t.Fatalf("%d erased", n)
		}
		if n := w.count(`SELECT count(*) FROM erasure_log WHERE rule = 'purpose:e-marketing'`); n != 3 {
			t.Fatalf("%d log lines", n)
		}
		w.verify()
	})
}

// TestForRetention: retention's two actions, and a hold that keeps part.
func TestForRetention(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		a, b, c := w.person("a@example.com"), w.person("b@example.com"), w.person("c@example.com")
		if _, err := w.erase.SetHold(ctx, c.ID, holds.New{Reason: "audit", LegalBasis: holds.BasisLegalObligation}, user); err != nil {
			t.Fatal(err)
		}
		err := db.Write(ctx, func(tx *store.Tx) error {
			for _, step := range []struct{ id, action string }{{a.ID, consent.RetentionErase}, {b.ID, consent.RetentionAnonymise},
				{c.ID, consent.RetentionErase}, {c.ID, consent.RetentionErase}} {
				if err := erasure.ForRetentionMany(tx, []string{step.id}, step.action, "retention", w.now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := w.people.Get(ctx, a.ID); got.ErasedAt == nil {
			t.Error("erase: not erased")
		}
		if _, err := w.people.Get(ctx, b.ID); !errs.Is(err, errs.KindNotFound) {
			t.Errorf("anonymise: %v", err)
		}
		if n := w.count(`SELECT count(*) FROM erasure_log WHERE contact_id = $1 AND action = 'partly_erased'`, c.ID); n != 1 {
			t.Errorf("held contact: %d partial erasures logged, want one however often retention tries", n)
		}
		if n := w.count(`SELECT count(*) FROM suppressions`); n != 2 {
			t.Errorf("%d suppression entries", n)
		}
		w.verify()
	})
}

// TestErasedContactTakesNoNewData: an erased record refuses field edits,
// consents and opt-in changes.
func TestErasedContactTakesNoNewData(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		c := w.person(address)
		if _, err := w.erase.Erase(ctx, c.ID, byUser); err != nil {
			t.Fatal(err)
		}
		_, err := w.people.Update(ctx, c.ID, contact.Input{FirstName: ptr("Anna")})
		if e := errs.As(err); e == nil || e.Kind != errs.KindLocked || e.Code != "contact_erased" {
			t.Errorf("edit: %v", err)
		}
		for _, state := range []string{consent.StateGranted, consent.StateWithdrawn} {
			_, err = w.consent.Record(ctx, c.ID, consent.RecordInput{Purpose: "E-marketing", State: state, Source: "api", Actor: api,
				Evidence: consent.Evidence{Method: consent.MethodAPI, IP: "203.0.113.9"}})
			if !errs.Is(err, errs.KindLocked) {
				t.Errorf("consent %s: %v", state, err)
			}
		}
		_, err = w.consent.SetOptIn(ctx, c.ID, consent.OptInInput{Status: contactstate.OptOutUser, Channel: consent.ChannelUser, Actor: user,
			Evidence: consent.Evidence{Method: consent.MethodEnteredByUser}})
		if !errs.Is(err, errs.KindLocked) {
			t.Errorf("opt-in: %v", err)
		}
		w.verify()
	})
}

// TestSuppressionAcrossInstances: an address erased through one instance
// is refused by another sharing the database.
func TestSuppressionAcrossInstances(t *testing.T) {
	first, second := storetest.OpenPostgresTwice(t)
	ctx := context.Background()
	w := newWorld(t, first)
	c := w.person(address)
	if _, err := w.erase.Erase(ctx, c.ID, byUser); err != nil {
		t.Fatal(err)
	}
	other := contact.NewService(second, consent.NewService(second))
	_, err := other.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr(address)}, Actor: api,
		Evidence: consent.Evidence{Method: consent.MethodAPI}})
	if !errs.Is(err, errs.KindRefused) {
		t.Fatalf("the other instance re-created an erased address: %v", err)
	}
}

// TestErasureForgetsTheAddressOnRequestsAboutNoContact: a request received
// from an address that was no contact's keeps the address in clear while
// it is open; erasing the contact who has that address (in any case)
// erases it from the request too, in the erasure's transaction, and the
// request goes on: the same id, kind, status and note, open, with the
// time its address was erased. A request from another address keeps its
// own, and a deletion of a contact does the same as an erasure.
func TestErasureForgetsTheAddressOnRequestsAboutNoContact(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		open := func(from, note string) *requests.Request {
			t.Helper()
			var r *requests.Request
			err := db.Write(ctx, func(tx *store.Tx) error {
				var err error
				r, err = requests.CreateTx(tx, requests.New{Kind: requests.KindAccess, Channel: requests.ChannelAPI, Address: from,
					Note: note, Verified: true, Actor: api}, nil, w.now)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		// Received before the contact existed, and in another case.
		before := open(" anna.erasable@EXAMPLE.com ", "asked by letter")
		c := w.person(address)
		after := open(address, "")
		stranger := open("someone.else@example.com", "")
		deleted := w.person("deleted@example.com")
		fromDeleted := open("Deleted@example.com", "")

		w.now = w.now.Add(time.Hour)
		if _, err := w.erase.Erase(ctx, c.ID, byUser); err != nil {
			t.Fatal(err)
		}
		for _, r := range []*requests.Request{before, after} {
			got, err := requests.Get(ctx, db.Read, r.ID, w.now)
			if err != nil {
				t.Fatal(err)
			}
			if got.Address != "" || got.AddressErasedAt == nil || !got.AddressErasedAt.Equal(w.now) {
				t.Errorf("request %s after the erasure: address %q, erased at %v", r.ID, got.Address, got.AddressErasedAt)
			}
			if got.Kind != r.Kind || got.Status != r.Status || got.Note != r.Note || got.ClosedAt != nil || got.ContactID != "" {
				t.Errorf("the request changed more than its address: %+v, was %+v", got, r)
			}
		}
		if n := w.count(`SELECT count(*) FROM subject_requests WHERE lower(address) LIKE '%erasable%' OR address_key LIKE '%erasable%'`); n != 0 {
			t.Errorf("%d requests still hold the erased address", n)
		}
		if got, err := requests.Get(ctx, db.Read, stranger.ID, w.now); err != nil || got.Address != "someone.else@example.com" ||
			got.AddressErasedAt != nil {
			t.Errorf("another address's request: %+v, %v", got, err)
		}
		// The request can still be answered and closed.
		if _, err := requests.Update(ctx, db, before.ID, requests.Change{Status: ptr(requests.StatusDone)}, user, w.now); err != nil {
			t.Fatalf("closing a request whose address was erased: %v", err)
		}
		w.verify()

		if err := w.people.Delete(ctx, deleted.ID, user); err != nil {
			t.Fatal(err)
		}
		if got, err := requests.Get(ctx, db.Read, fromDeleted.ID, w.now); err != nil || got.Address != "" || got.AddressErasedAt == nil {
			t.Errorf("the request from a deleted contact's address: %+v, %v", got, err)
		}
	})
}
