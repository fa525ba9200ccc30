package workflow_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/vault/vaulttest"
	"github.com/consentry/consentry/internal/workflow"
)

func ptr[T any](v T) *T { return &v }

var api = consent.Actor{Kind: consent.ActorAPIToken}

// world is a database with the services rules use, a clock the test moves
// and the runner, started (its consumer placed) before anything happens.
type world struct {
	t       testing.TB
	db      *store.DB
	now     time.Time
	consent *consent.Service
	people  *contact.Service
	lists   *lists.Service
	rules   *workflow.Service
	runner  *workflow.Runner
	partner *consent.Purpose
	calls   []string // webhook calls: endpoint id and event seq
}

func newWorld(t testing.TB, db *store.DB) *world {
	w := &world{t: t, db: db, now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return w.now }
	ctx := context.Background()
	w.consent = consent.NewService(db)
	w.consent.Now = clock
	w.people = contact.NewService(db, w.consent)
	w.people.Now = clock
	w.people.Vault = vaulttest.New(t)
	w.lists = &lists.Service{DB: db, Now: clock}
	w.people.Lists = func(ctx context.Context) (filter.Lists, error) { return w.lists.Names(ctx) }
	tmpl, err := mail.NewTemplates()
	if err != nil {
		t.Fatal(err)
	}
	in := &optin.Service{DB: db, Consent: w.consent, Log: slog.New(slog.DiscardHandler), Now: clock, BaseURL: "https://consent.example",
		Sender: "Acme", Mail: tmpl}
	w.rules = &workflow.Service{DB: db, Contacts: w.people, Lists: w.lists, Now: clock}
	w.runner = &workflow.Runner{DB: db, Rules: w.rules, OptIn: in, BaseURL: "https://consent.example", Log: slog.New(slog.DiscardHandler),
		Now: clock, Withdraw: w.consent.PurposeWithdrawal(consent.Actor{Kind: consent.ActorSystem}, consent.Evidence{Method: consent.MethodSystem}),
		Webhook: func(tx *store.Tx, endpointID string, e events.Event) (string, error) {
			w.calls = append(w.calls, endpointID)
			return "", nil
		}}
	for _, f := range []contact.FieldInput{
		{Name: ptr("company"), Label: ptr("Company"), Type: ptr("text")},
		{Name: ptr("card_number"), Label: ptr("Card number"), Type: ptr("text"), Sensitive: ptr(true), Mask: ptr("last:4")},
	} {
		if _, err := w.people.CreateField(ctx, audit.Actor{Kind: "user"}, f); err != nil {
			t.Fatal(err)
		}
	}
	if w.partner, err = w.consent.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: ptr("Share with partners"), LegalBasis: ptr("consent"),
		Text: ptr("We may share your details with our partner, Partner AB.")}); err != nil {
		t.Fatal(err)
	}
	w.runDue() // the consumer starts after what happened so far
	return w
}

func (w *world) runDue() int {
	w.t.Helper()
	n, err := w.runner.RunDue(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *world) person(email, optIn string, fields map[string]any) string {
	w.t.Helper()
	c, err := w.people.Create(context.Background(), contact.NewContact{Input: contact.Input{Email: ptr(email), FirstName: ptr("Anna"),
		LastName: ptr("Lind"), Fields: fields}, OptInStatus: optIn, Actor: api, Evidence: consent.Evidence{Method: consent.MethodAPI}})
	if err != nil {
		w.t.Fatal(err)
	}
	return c.ID
}

// reachable makes a contact whom marketing email may reach, as a
// campaign for E-marketing under the default policy needs: confirmed by
// double opt-in, with a granted E-marketing consent.
func (w *world) reachable(email string, fields map[string]any) string {
	w.t.Helper()
	id := w.confirmed(email, fields)
	w.record(id, "E-marketing", consent.StateGranted)
	return id
}

// confirmed makes a contact confirmed by double opt-in, with no consent.
func (w *world) confirmed(email string, fields map[string]any) string {
	w.t.Helper()
	id := w.person(email, contactstate.OptInNone, fields)
	// Set-up only: double_opt_in is reached through its own flow, which
	// package optin tests.
	if err := w.db.Write(context.Background(), func(tx *store.Tx) error {
		return contactstate.SetOptInTx(tx, id, contactstate.DoubleOptIn, w.now)
	}); err != nil {
		w.t.Fatal(err)
	}
	return id
}

// record writes a consent record, which writes its consent event.
func (w *world) record(contactID, purpose, state string) {
	w.t.Helper()
	ctx := context.Background()
	_, err := w.consent.Record(ctx, contactID, consent.RecordInput{Purpose: purpose, State: state, Source: "api", Actor: api,
		Evidence: consent.Evidence{Method: consent.MethodAPI}})
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) emit(typ, contactID string, data any) {
	w.t.Helper()
	if err := w.db.Write(context.Background(), func(tx *store.Tx) error { return events.Emit(tx, typ, contactID, data, w.now) }); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) rule(js string) *workflow.Rule {
	w.t.Helper()
	d, err := workflow.ParseDefinition([]byte(js))
	if err != nil {
		w.t.Fatal(err)
	}
	r, err := w.rules.Create(context.Background(), audit.Actor{Kind: "user"}, d)
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

func (w *world) runs(q workflow.RunQuery) []*workflow.Run {
	w.t.Helper()
	out, _, err := w.rules.Runs(context.Background(), q)
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

func (w *world) deliverer(tr mail.Transport) *mail.Deliverer {
	return &mail.Deliverer{DB: w.db, Transport: tr, Log: slog.New(slog.DiscardHandler), From: "Acme <news@acme.example>",
		Domain: "acme.example", Now: func() time.Time { return w.now }, Batch: 50, Lease: time.Minute, MaxAttempts: 3, Poll: time.Second,
		BaseURL: "https://consent.example"}
}

func (w *world) smtp() (*mailtest.Server, *mail.Deliverer) {
	srv := mailtest.Start(w.t)
	tr, err := mail.NewSMTP(srv.URL(), 2)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { tr.Close() })
	return srv, w.deliverer(tr)
}

func (w *world) outbox(id string) (status, reason string) {
	w.t.Helper()
	if err := w.db.Read.QueryRow(`SELECT status, reason FROM outbox WHERE id = $1`, id).Scan(&status, &reason); err != nil {
		w.t.Fatal(err)
	}
	return status, reason
}

// The example of R21 end to end: the moment a contact grants "Share with
// partners", the partner receives, over SMTP, an email with the fields the
// operator picked, the sensitive one masked; the contact gets a thank-you
// with an unsubscribe link. A grant of another purpose sets nothing off.
func TestPartnerReceivesPickedFields(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		rule := w.rule(`{"name": "Share with Partner AB", "trigger": "consent.granted",
			"condition": "event.purpose == \"Share with partners\" && event.state == \"granted\"",
			"actions": [
				{"type": "email_address", "to": "leads@partner.example", "subject": "A new lead", "text": "A contact agreed to share their details with you.",
				 "fields": ["first_name", "last_name", "email", "company", "card_number"]},
				{"type": "email_contact", "subject": "Thank you, {{first_name}}", "text": "Hello {{ first_name }},\n\nWe passed your details to Partner AB.\nChange your mind: {{preferences_url}}"}
			]}`)
		anna := w.reachable("anna@example.com", map[string]any{"company": "Lind & Co", "card_number": "4111111111111111"})
		w.record(anna, "Share with partners", consent.StateGranted)
		if n := w.runDue(); n != 1 {
			t.Fatalf("logged %d runs, want 1 (the E-marketing grant sets nothing off)", n)
		}
		runs := w.runs(workflow.RunQuery{RuleID: rule.ID})
		if len(runs) != 1 || runs[0].Status != workflow.StatusDone || runs[0].ContactID != anna || runs[0].EventType != events.ConsentGranted ||
			len(runs[0].Done) != 2 || runs[0].Done[0].EmailID == "" || runs[0].Done[1].EmailID == "" {
			t.Fatalf("runs: %+v", runs)
		}
		if byContact := w.runs(workflow.RunQuery{ContactID: anna}); len(byContact) != 1 || byContact[0].ID != runs[0].ID {
			t.Fatalf("runs of the contact: %+v", byContact)
		}

		srv, d := w.smtp()
		if n, err := d.RunDue(context.Background()); err != nil || n != 2 {
			t.Fatalf("delivered %d, %v", n, err)
		}
		got := srv.Wait(t, 2)
		var partner, thanks mailtest.Message
		for _, m := range got {
			m.Text = strings.ReplaceAll(m.Text, "\r\n", "\n")
			switch strings.Join(m.To, ",") {
			case "leads@partner.example":
				partner = m
			case "anna@example.com":
				thanks = m
			}
		}
		for _, want := range []string{"A contact agreed", "First name: Anna\n", "Last name: Lind\n", "Email address: anna@example.com\n",
			"Company: Lind & Co\n", "Card number: ••••••••••••1111\n"} {
			if !strings.Contains(partner.Text, want) {
				t.Errorf("the partner's email lacks %q:\n%s", want, partner.Text)
			}
		}
		if strings.Contains(string(partner.Raw), "4111111111111111") || partner.Header.Get("List-Unsubscribe") != "" {
			t.Errorf("the partner's email holds the card number or the contact's unsubscribe link:\n%s", partner.Raw)
		}
		if thanks.Subject != "Thank you, Anna" || !strings.Contains(thanks.Text, "Hello Anna,") ||
			!strings.Contains(thanks.Text, "https://consent.example/p/") || !strings.Contains(thanks.Text, "Unsubscribe: https://consent.example/u/") ||
			!strings.HasPrefix(thanks.Header.Get("List-Unsubscribe"), "<https://consent.example/u/") {
			t.Errorf("the contact's email: %s\n%s", thanks.Subject, thanks.Raw)
		}
	})
}

// Workflow email goes through the send gate: an opted-out contact gets
// nothing (R2), and a partner gets nothing about a contact who stopped
// processing after the email was queued.
func TestSendGateStopsWorkflowEmail(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		w.rule(`{"name": "Welcome", "trigger": "consent.granted", "actions": [
			{"type": "email_contact", "subject": "Welcome", "text": "Hello {{first_name}}"},
			{"type": "email_address", "to": "leads@partner.example", "subject": "Lead", "fields": ["first_name"]}]}`)
		out := w.person("out@example.com", contactstate.OptOutUser, nil)
		stopping := w.person("stopping@example.com", contactstate.SingleOptInUser, nil)
		w.record(out, "Share with partners", consent.StateGranted)
		w.record(stopping, "Share with partners", consent.StateGranted)
		if n := w.runDue(); n != 2 {
			t.Fatalf("logged %d runs, want 2", n)
		}
		if err := db.Write(context.Background(), func(tx *store.Tx) error { return contactstate.StopProcessingTx(tx, stopping, w.now) }); err != nil {
			t.Fatal(err)
		}
		srv, d := w.smtp()
		if _, err := d.RunDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := srv.Wait(t, 1)
		if len(got) != 1 || strings.Join(got[0].To, ",") != "leads@partner.example" {
			t.Fatalf("sent: %+v", got)
		}
		for _, c := range []struct{ id, email, partner string }{
			{out, mail.ReasonOptedOut, ""},
			{stopping, mail.ReasonProcessingStopped, mail.ReasonProcessingStopped},
		} {
			run := w.runs(workflow.RunQuery{ContactID: c.id})[0]
			if status, reason := w.outbox(run.Done[0].EmailID); status != mail.StatusSuppressed || reason != c.email {
				t.Errorf("the email to %s: %s %s", c.id, status, reason)
			}
			if status, reason := w.outbox(run.Done[1].EmailID); (c.partner == "") != (status == mail.StatusSent) || reason != c.partner {
				t.Errorf("the partner's email about %s: %s %s", c.id, status, reason)
			}
		}
		if srv.Received() != 1 {
			t.Fatalf("the SMTP server received %d messages, want 1", srv.Received())
		}
	})
}

// A condition on a sensitive field reads its masked value, as a search
// does; a rule that reads none still holds for contacts that have one.
func TestConditionOnASensitiveField(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		w.rule(`{"name": "Card 4242", "trigger": "consent.granted", "condition": "card_number endsWith \"4242\"",
			"actions": [{"type": "set_field", "field": "company", "value": "card"}]}`)
		w.rule(`{"name": "Any", "trigger": "consent.granted", "condition": "email contains \"@\"",
			"actions": [{"type": "set_field", "field": "company", "value": "any"}]}`)
		card := w.person("card@example.com", contactstate.SingleOptInUser, map[string]any{"card_number": "4000 0000 0000 4242"})
		other := w.person("other@example.com", contactstate.SingleOptInUser, map[string]any{"card_number": "4000 0000 0000 1111"})
		w.record(card, "Share with partners", consent.StateGranted)
		w.record(other, "Share with partners", consent.StateGranted)
		if n := w.runDue(); n != 3 {
			t.Fatalf("logged %d runs, want 3 (both rules for the card ending 4242, one for the other)", n)
		}
		for id, want := range map[string]int{card: 2, other: 1} {
			if got := len(w.runs(workflow.RunQuery{ContactID: id})); got != want {
				t.Errorf("%s: %d runs, want %d", id, got, want)
			}
		}
	})
}

// A rule with a delay waits, then checks its condition again: the contact
// who withdrew meanwhile is skipped, the other gets the email, and nothing
// acts before it is due.
func TestDelayChecksTheConditionAgain(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		w.rule(`{"name": "Two days after", "trigger": "consent.granted", "delay_minutes": 2880,
			"condition": "consent(\"Share with partners\") == \"granted\"",
			"actions": [{"type": "email_contact", "subject": "Still with us?", "text": "Hello"}]}`)
		stays := w.person("stays@example.com", contactstate.SingleOptInUser, nil)
		leaves := w.person("leaves@example.com", contactstate.SingleOptInUser, nil)
		w.record(stays, "Share with partners", consent.StateGranted)
		w.record(leaves, "Share with partners", consent.StateGranted)
		start := w.now
		w.runDue()
		for _, run := range w.runs(workflow.RunQuery{}) {
			if run.Status != workflow.StatusWaiting || run.DueAt == nil || !run.DueAt.Equal(start.Add(48*time.Hour)) || len(run.Done) != 0 {
				t.Fatalf("a run before its time: %+v", run)
			}
		}
		w.now = start.Add(24 * time.Hour)
		w.record(leaves, "Share with partners", consent.StateWithdrawn)
		w.runDue()
		if waiting := w.runs(workflow.RunQuery{Status: workflow.StatusWaiting}); len(waiting) != 2 {
			t.Fatalf("%d runs wait after one day, want 2", len(waiting))
		}
		w.now = start.Add(48 * time.Hour)
		if n := w.runDue(); n != 2 {
			t.Fatalf("finished %d runs when due, want 2", n)
		}
		if run := w.runs(workflow.RunQuery{ContactID: stays})[0]; run.Status != workflow.StatusDone || len(run.Done) != 1 || run.FinishedAt == nil {
			t.Errorf("the contact who stayed: %+v", run)
		}
		if run := w.runs(workflow.RunQuery{ContactID: leaves})[0]; run.Status != workflow.StatusSkipped ||
			run.Outcome != "the condition no longer holds" || len(run.Done) != 0 {
			t.Errorf("the contact who withdrew: %+v", run)
		}
		var queued int
		if err := db.Read.QueryRow(`SELECT COUNT(*) FROM outbox WHERE kind = $1`, mail.KindWorkflow).Scan(&queued); err != nil || queued != 1 {
			t.Fatalf("%d workflow emails queued, %v; want 1", queued, err)
		}
	})
}

// A rule whose action writes the event it is triggered by stops at the
// depth limit and logs it. Here the action is a webhook call that writes
// a list.subscribed event, as a list_add does once list changes write
// their events.
func TestDepthLimit(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		l, err := w.lists.Create(context.Background(), audit.Actor{Kind: "user"}, lists.Input{Name: ptr("Loop")})
		if err != nil {
			t.Fatal(err)
		}
		rule := w.rule(`{"name": "Again", "trigger": "list.subscribed", "condition": "event.list == \"Loop\"",
			"actions": [{"type": "list_remove", "list": "Loop"}, {"type": "list_add", "list": "loop"}]}`)
		if rule.Actions[1].List != l.ID {
			t.Fatalf("the list was saved as %q, want its id", rule.Actions[1].List)
		}
		anna := w.person("anna@example.com", contactstate.SingleOptInUser, nil)
		if _, err := w.lists.Set(context.Background(), anna, l.ID, lists.Subscribed, lists.SourceAPI, nil); err != nil {
			t.Fatal(err)
		}
		w.runDue()
		runs := w.runs(workflow.RunQuery{RuleID: rule.ID})
		var statuses []string
		for i := len(runs) - 1; i >= 0; i-- {
			statuses = append(statuses, runs[i].Status)
		}
		want := []string{workflow.StatusDone, workflow.StatusDone, workflow.StatusDone, workflow.StatusDepthLimit}
		if strings.Join(statuses, " ") != strings.Join(want, " ") {
			t.Fatalf("runs %v; want %v", statuses, want)
		}
		if !strings.Contains(runs[0].Outcome, "depth limit reached") {
			t.Errorf("outcome: %q", runs[0].Outcome)
		}
		var depth int
		if err := db.Read.QueryRow(`SELECT MAX(depth) FROM events`).Scan(&depth); err != nil || depth != 3 {
			t.Fatalf("deepest event %d, %v; want 3", depth, err)
		}
		var in int
		if err := db.Read.QueryRow(`SELECT COUNT(*) FROM list_subscriptions WHERE contact_id = $1 AND status = 'subscribed'`, anna).Scan(&in); err != nil || in != 1 {
			t.Fatalf("subscribed to %d lists, %v", in, err)
		}
	})
}

// set_field changes the field, and a locked record fails the run with the
// reason, the actions before it kept.
func TestSetFieldRespectsTheLock(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		w.rule(`{"name": "Stage", "trigger": "consent.granted", "actions": [
			{"type": "double_opt_in"}, {"type": "set_field", "field": "stage", "value": "shared"}, {"type": "set_field", "field": "company", "value": "X"}]}`)
		open := w.person("open@example.com", contactstate.SingleOptInUser, nil)
		locked := w.person("locked@example.com", contactstate.SingleOptInUser, nil)
		if err := db.Write(context.Background(), func(tx *store.Tx) error { return contactstate.StopProcessingTx(tx, locked, w.now) }); err != nil {
			t.Fatal(err)
		}
		w.record(open, "Share with partners", consent.StateGranted)
		w.emit(events.ConsentGranted, locked, events.ConsentData{ContactID: locked, Purpose: "Share with partners", State: "granted"})
		w.runDue()
		c, err := w.people.Get(context.Background(), open)
		if err != nil || c.Stage != "shared" || c.Fields["company"] != "X" {
			t.Fatalf("contact %+v, %v", c, err)
		}
		if run := w.runs(workflow.RunQuery{ContactID: open})[0]; run.Status != workflow.StatusDone || len(run.Done) != 3 || run.Done[0].EmailID != "" && run.Done[0].Note != "" {
			t.Errorf("run: %+v", run)
		}
		run := w.runs(workflow.RunQuery{ContactID: locked})[0]
		if run.Status != workflow.StatusFailed || !strings.HasPrefix(run.Outcome, "actions[1] (set_field):") || len(run.Done) != 1 ||
			run.Done[0].Note != "not invited: "+optin.SkipProcessingStopped {
			t.Errorf("run on a locked record: %+v", run)
		}
	})
}

// list_add subscribes the contact, and a record that is locked or erased
// fails the run with the reason and no subscription written; list_remove
// still unsubscribes a locked record.
func TestListAddRespectsTheLock(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		l, err := w.lists.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("Partners")})
		if err != nil {
			t.Fatal(err)
		}
		gone, err := w.lists.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("Former")})
		if err != nil {
			t.Fatal(err)
		}
		w.rule(`{"name": "Join", "trigger": "consent.granted", "actions": [
			{"type": "list_remove", "list": "Former"}, {"type": "list_add", "list": "Partners"}]}`)
		open := w.person("open@example.com", contactstate.SingleOptInUser, nil)
		stopped := w.person("stopped@example.com", contactstate.SingleOptInUser, nil)
		erased := w.person("erased@example.com", contactstate.SingleOptInUser, nil)
		if _, err := w.lists.Set(ctx, stopped, gone.ID, lists.Subscribed, lists.SourceAPI, nil); err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			if err := contactstate.StopProcessingTx(tx, stopped, w.now); err != nil {
				return err
			}
			return contactstate.MarkErasedTx(tx, erased, w.now)
		}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{open, stopped, erased} {
			w.emit(events.ConsentGranted, id, events.ConsentData{ContactID: id, Purpose: "Share with partners", State: "granted"})
		}
		w.runDue()
		if run := w.runs(workflow.RunQuery{ContactID: open})[0]; run.Status != workflow.StatusDone {
			t.Fatalf("run on an open record: %+v", run)
		}
		for id, code := range map[string]string{stopped: "asked to stop processing", erased: "was erased"} {
			run := w.runs(workflow.RunQuery{ContactID: id})[0]
			if run.Status != workflow.StatusFailed || !strings.HasPrefix(run.Outcome, "actions[1] (list_add):") ||
				!strings.Contains(run.Outcome, code) || len(run.Done) != 1 {
				t.Errorf("run on a locked record (%s): %+v", code, run)
			}
		}
		subscribed := func(id, list string) string {
			t.Helper()
			var st string
			err := db.Read.QueryRow(`SELECT status FROM list_subscriptions WHERE contact_id = $1 AND list_id = $2`, id, list).Scan(&st)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				t.Fatal(err)
			}
			return st
		}
		if got := []string{subscribed(open, l.ID), subscribed(stopped, l.ID), subscribed(erased, l.ID), subscribed(stopped, gone.ID)}; strings.Join(got, " ") != "subscribed   unsubscribed" {
			t.Fatalf("subscriptions (open, stopped, erased to Partners; stopped to Former): %q", got)
		}
	})
}

// Invalid definitions are refused with an error naming the field, and
// nothing is saved.
func TestInvalidDefinitionsNameTheField(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		ok := `"name": "R", "trigger": "consent.granted"`
		for js, field := range map[string]string{
			`[1]`:                         "definition",
			`{"name": "R"} {}`:            "definition",
			`{"name": ""}`:                "name",
			`{"name": "R", "foo": 1}`:     "foo",
			`{"name": "R", "trigger": 5}`: "trigger",
			`{"name": "R", "trigger": "consent.maybe", "actions": [{"type": "double_opt_in"}]}`: "trigger",
			`{"name": "R", "trigger": "campaign.sent", "actions": [{"type": "double_opt_in"}]}`: "trigger",
			`{` + ok + `, "actions": []}`:                                                            "actions",
			`{` + ok + `, "actions": [{"type": "fax"}]}`:                                             "actions[0].type",
			`{` + ok + `, "actions": [{}]}`:                                                          "actions[0].type",
			`{` + ok + `, "actions": [{"type": "double_opt_in"}], "delay_minutes": -1}`:              "delay_minutes",
			`{` + ok + `, "actions": [{"type": "double_opt_in"}], "delay_minutes": 525601}`:          "delay_minutes",
			`{` + ok + `, "actions": [{"type": "double_opt_in"}], "condition": "event.purpos == 1"}`: "condition",
			`{` + ok + `, "actions": [{"type": "double_opt_in"}, {"type": "email_address", "to": "not an address", "subject": "s", "fields": ["email"]}]}`: "actions[1].to",
			`{` + ok + `, "actions": [{"type": "email_contact", "subject": "s"}]}`:                                                                         "actions[0].text",
			`{` + ok + `, "actions": [{"type": "email_contact", "subject": "s", "text": "t", "to": "a@b.example"}]}`:                                       "actions[0].to",
			`{` + ok + `, "actions": [{"type": "email_contact", "subject": "s", "text": "{{ card_number }}"}]}`:                                            "actions[0].text",
			`{` + ok + `, "actions": [{"type": "email_contact", "subject": "{{unsubscribe_url}}", "text": "t"}]}`:                                          "actions[0].subject",
			`{` + ok + `, "actions": [{"type": "email_address", "to": "a@b.example", "subject": "s", "fields": ["x"]}]}`:                                   "actions[0].fields",
			`{` + ok + `, "actions": [{"type": "email_address", "to": "a@b.example", "subject": "s", "fields": "email"}]}`:                                 "actions[0].fields",
			`{` + ok + `, "actions": [{"type": "list_add", "list": "No such list"}]}`:                                                                      "actions[0].list",
			`{` + ok + `, "actions": [{"type": "set_field", "field": "card_number", "value": "1234"}]}`:                                                    "actions[0].field",
			`{` + ok + `, "actions": [{"type": "set_field", "field": "email", "value": "a@b.example"}]}`:                                                   "actions[0].field",
			`{` + ok + `, "actions": [{"type": "set_field", "field": "company", "value": 5}]}`:                                                             "actions[0].value",
			`{` + ok + `, "actions": [{"type": "set_field", "field": "country", "value": "Sweden"}]}`:                                                      "actions[0].value",
			`{` + ok + `, "actions": [{"type": "set_field", "field": "company"}]}`:                                                                         "actions[0].value",
			`{` + ok + `, "actions": [{"type": "webhook"}]}`:                                                                                               "actions[0].endpoint_id",
		} {
			_, err := createJSON(w, js)
			e := errs.As(err)
			if e == nil || e.Kind != errs.KindInvalid || e.Field != field {
				t.Errorf("%s: got %v, want an invalid-input error on %s", js, err, field)
			}
			if field == "condition" && e != nil && e.Position == 0 {
				t.Errorf("%s: no position", js)
			}
		}
		many := strings.Repeat(`{"type": "double_opt_in"}, `, 10) + `{"type": "double_opt_in"}`
		if _, err := createJSON(w, `{`+ok+`, "actions": [`+many+`]}`); errs.As(err) == nil || errs.As(err).Field != "actions" {
			t.Errorf("11 actions: %v", err)
		}
		if all, err := w.rules.List(context.Background()); err != nil || len(all) != 0 {
			t.Fatalf("saved %d rules, %v", len(all), err)
		}
	})
}

func createJSON(w *world, js string) (*workflow.Rule, error) {
	d, err := workflow.ParseDefinition([]byte(js))
	if err != nil {
		return nil, err
	}
	return w.rules.Create(context.Background(), audit.Actor{Kind: "user"}, d)
}

// A saved rule's definition round-trips through JSON: what the API returns
// can be sent back as it is.
func TestDefinitionRoundTrips(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		if _, err := w.lists.Create(context.Background(), audit.Actor{Kind: "user"}, lists.Input{Name: ptr("Partners")}); err != nil {
			t.Fatal(err)
		}
		r := w.rule(`{"name": "  All of it ", "trigger": "consent.granted", "condition": " event.text_version >= 1 ", "delay_minutes": 60,
			"enabled": false, "actions": [
			{"type": "email_contact", "subject": "Hi {{first_name}}", "text": "Hello", "html": "<p>Hello</p>"},
			{"type": "email_address", "to": "a@partner.example", "subject": "Lead", "fields": ["email", "company"]},
			{"type": "webhook", "endpoint_id": "ep_1"}, {"type": "list_add", "list": "Partners"}, {"type": "list_remove", "list": "partners"},
			{"type": "set_field", "field": "company", "value": "Acme"}, {"type": "set_field", "field": "stage", "value": "lead"},
			{"type": "double_opt_in"}, {"type": "notify_users", "subject": "New partner lead", "text": "Look"}]}`)
		got, err := w.rules.Get(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		first, _ := json.Marshal(got.Definition)
		d, err := workflow.ParseDefinition(first)
		if err != nil {
			t.Fatal(err)
		}
		updated, err := w.rules.Update(context.Background(), audit.Actor{Kind: "user"}, r.ID, d)
		if err != nil {
			t.Fatal(err)
		}
		second, _ := json.Marshal(updated.Definition)
		if string(first) != string(second) || got.Name != "All of it" || *got.Enabled || got.Condition != "event.text_version >= 1" {
			t.Fatalf("\n%s\n%s", first, second)
		}
	})
}

// The run log is pruned after 90 days; waiting runs stay.
func TestPrune(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		w.rule(`{"name": "R", "trigger": "consent.granted", "actions": [{"type": "double_opt_in"}]}`)
		w.rule(`{"name": "Later", "trigger": "consent.granted", "delay_minutes": 525600, "actions": [{"type": "double_opt_in"}]}`)
		anna := w.person("anna@example.com", contactstate.SingleOptInUser, nil)
		w.record(anna, "Share with partners", consent.StateGranted)
		w.runDue()
		if err := w.rules.Prune(context.Background(), w.now.Add(workflow.Keep-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n := len(w.runs(workflow.RunQuery{})); n != 2 {
			t.Fatalf("%d runs before 90 days, want 2", n)
		}
		if err := w.rules.Prune(context.Background(), w.now.Add(workflow.Keep+time.Hour)); err != nil {
			t.Fatal(err)
		}
		if runs := w.runs(workflow.RunQuery{}); len(runs) != 1 || runs[0].Status != workflow.StatusWaiting {
			t.Fatalf("after 90 days: %+v", runs)
		}
	})
}

// An action that fails for a reason of the domain (webhooks not set up)
// fails its run with the reason; one that fails the transaction (an error
// from the database, say) fails its own event's runs only: the events are
// taken again one at a time and the others act.
func TestFailuresStayWithTheirRun(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		rule := w.rule(`{"name": "Call", "trigger": "consent.granted", "actions": [{"type": "set_field", "field": "stage", "value": "called"},
			{"type": "webhook", "endpoint_id": "ep_1"}]}`)
		ids := []string{w.person("a@example.com", contactstate.SingleOptInUser, nil), w.person("b@example.com", contactstate.SingleOptInUser, nil),
			w.person("c@example.com", contactstate.SingleOptInUser, nil)}
		bad := ids[1]
		w.runner.Webhook = func(tx *store.Tx, endpointID string, e events.Event) (string, error) {
			if e.ContactID == bad {
				_, err := tx.Exec(`INSERT INTO no_such_table VALUES (1)`)
				return "", err
			}
			return "", nil
		}
		for _, id := range ids {
			w.record(id, "Share with partners", consent.StateGranted)
		}
		w.runDue()
		for _, id := range ids {
			run := w.runs(workflow.RunQuery{ContactID: id})
			c, err := w.people.Get(context.Background(), id)
			if err != nil || len(run) != 1 {
				t.Fatalf("%s: %d runs, %v", id, len(run), err)
			}
			if id == bad {
				if run[0].Status != workflow.StatusFailed || !strings.HasPrefix(run[0].Outcome, "could not be carried out: ") || c.Stage != "" {
					t.Errorf("the failing event: %+v, stage %q", run[0], c.Stage)
				}
				continue
			}
			if run[0].Status != workflow.StatusDone || c.Stage != "called" {
				t.Errorf("%s: %+v, stage %q", id, run[0], c.Stage)
			}
		}

		w.runner.Webhook = nil
		w.record(ids[0], "E-marketing", consent.StateGranted)
		w.runDue()
		run := w.runs(workflow.RunQuery{RuleID: rule.ID, ContactID: ids[0]})[0]
		if run.Status != workflow.StatusFailed || run.Outcome != "actions[1] (webhook): endpoint_id: webhook endpoints cannot be called here" ||
			len(run.Done) != 1 || run.Done[0].Field != "stage" {
			t.Errorf("without webhooks: %+v", run)
		}
	})
}

// notify_users emails the operator's privacy address a link to the
// contact and no personal data; with no privacy address, the run notes
// that no one was told. With roles, it emails the users of those roles
// instead.
func TestNotifyUsers(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		w.rule(`{"name": "Tell", "trigger": "consent.withdrawn", "actions": [{"type": "notify_users", "subject": "A partner consent was withdrawn", "text": "Tell Partner AB."}]}`)
		anna := w.person("anna@example.com", contactstate.SingleOptInUser, nil)
		w.record(anna, "Share with partners", consent.StateWithdrawn)
		w.runDue()
		if run := w.runs(workflow.RunQuery{ContactID: anna})[0]; run.Status != workflow.StatusDone || run.Done[0].Note != "no privacy address is set" {
			t.Fatalf("without a privacy address: %+v", run)
		}
		if _, err := settings.Update(context.Background(), db, settings.Patch{PrivacyAddress: ptr("privacy@acme.example")}, audit.Actor{Kind: "user"}, w.now); err != nil {
			t.Fatal(err)
		}
		w.record(anna, "Share with partners", consent.StateWithdrawn)
		w.runDue()
		run := w.runs(workflow.RunQuery{ContactID: anna})[0]
		var to, kind, text string
		if err := db.Read.QueryRow(`SELECT to_address, kind, text_body FROM outbox WHERE id = $1`, run.Done[0].EmailID).Scan(&to, &kind, &text); err != nil {
			t.Fatal(err)
		}
		if to != "privacy@acme.example" || kind != mail.KindOperator || !strings.Contains(text, "Tell Partner AB.") ||
			!strings.Contains(text, "https://consent.example/admin/contacts/"+anna) || strings.Contains(text, "anna@") {
			t.Fatalf("%s %s:\n%s", to, kind, text)
		}

		// With roles, the users of those roles who are not disabled are
		// told, each by an email of their own, and the privacy address
		// is not.
		users := &auth.Users{DB: db, Now: time.Now}
		ids := map[string]string{}
		for _, u := range []struct{ email, role string }{{"ada@acme.example", auth.RoleAdmin}, {"pia@acme.example", auth.RolePrivacyOfficer},
			{"gone@acme.example", auth.RolePrivacyOfficer}, {"agent@acme.example", auth.RoleAgent}} {
			made, err := users.Create(context.Background(), audit.Actor{Kind: "user"}, auth.NewUser{Email: u.email, Role: u.role, Password: "a long enough password"})
			if err != nil {
				t.Fatal(err)
			}
			ids[u.email] = made.ID
		}
		if err := users.Disable(context.Background(), audit.Actor{Kind: "user"}, ids["gone@acme.example"]); err != nil {
			t.Fatal(err)
		}
		w.rule(`{"name": "Tell the officers", "trigger": "consent.granted", "actions": [{"type": "notify_users", "subject": "New consent", "roles": ["privacy_officer", "admin"]}]}`)
		billing := w.rule(`{"name": "Tell billing", "trigger": "consent.granted", "actions": [{"type": "notify_users", "subject": "New consent", "roles": ["billing"]}]}`)
		w.record(anna, "Share with partners", consent.StateGranted)
		w.runDue()
		var told []string
		for _, run := range w.runs(workflow.RunQuery{ContactID: anna}) {
			if run.Status != workflow.StatusDone {
				t.Fatalf("a run: %+v", run)
			}
			for _, id := range run.Done[0].EmailIDs {
				if err := db.Read.QueryRow(`SELECT to_address FROM outbox WHERE id = $1`, id).Scan(&to); err != nil {
					t.Fatal(err)
				}
				told = append(told, to)
			}
			if run.RuleID == billing.ID && run.Done[0].Note != "no user has the roles billing" {
				t.Fatalf("with no user of the role: %+v", run.Done[0])
			}
		}
		if strings.Join(told, " ") != "ada@acme.example pia@acme.example" {
			t.Fatalf("told %v", told)
		}
		for _, bad := range []string{`["owner"]`, `["admin", "admin"]`} {
			_, err := workflow.ParseDefinition([]byte(`{"name": "R", "trigger": "consent.granted", "actions": [{"type": "notify_users", "subject": "s", "roles": ` + bad + `}]}`))
			if e := errs.As(err); e == nil || e.Field != "actions[0].roles" {
				t.Errorf("roles %s: %v", bad, err)
			}
		}
	})
}

// An action with every field filled in, trimmed, has the fields of its
// type and no other, so an editor that shows every field makes a valid
// action; an unknown type keeps none, and is refused by its type.
func TestTrimKeepsWhatTheTypeTakes(t *testing.T) {
	for _, typ := range append([]string{"fax"}, workflow.ActionTypes...) {
		a := workflow.Action{Type: typ, Subject: "s", Text: "t", HTML: "<p>h</p>", To: "partner@example.com", Fields: []string{"email"},
			EndpointID: "e1", List: "Newsletter", Field: "company", Value: "Acme", Roles: []string{"admin"}}
		a.Trim()
		js, err := json.Marshal(workflow.Definition{Name: "R", Trigger: "consent.granted", Actions: []workflow.Action{a}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = workflow.ParseDefinition(js)
		if e := errs.As(err); typ == "fax" && (e == nil || e.Field != "actions[0].type") || typ != "fax" && err != nil {
			t.Errorf("%s trimmed to %+v: %v", typ, a, err)
		}
	}
}
