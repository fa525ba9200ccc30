package workflow_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/workflow"
)

// The docs' example rule ("Share with Partner AB") with a delay: the
// condition reads the event's facts, which stay those of the grant, so
// when the delay ends the run checks the consent itself. The contact who
// withdrew meanwhile is skipped with the reason and the partner is sent
// nothing; the one who stayed is shared. A rule on withdrawals skips the
// contact who consented again before it acted.
func TestDelayedRunSkipsAWithdrawnConsent(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		share := w.rule(`{"name": "Share with Partner AB", "trigger": "consent.granted", "delay_minutes": 1,
			"condition": "event.purpose == \"Share with partners\" && event.state == \"granted\"",
			"actions": [{"type": "email_address", "to": "leads@partner.example", "subject": "A new lead", "fields": ["first_name", "email"]}]}`)
		sorry := w.rule(`{"name": "Sorry to see you go", "trigger": "consent.withdrawn", "delay_minutes": 60,
			"condition": "event.purpose == \"Share with partners\"",
			"actions": [{"type": "notify_users", "subject": "A partner consent was withdrawn"}]}`)
		leaves := w.person("leaves@example.com", contactstate.SingleOptInUser, nil)
		stays := w.person("stays@example.com", contactstate.SingleOptInUser, nil)
		back := w.person("back@example.com", contactstate.SingleOptInUser, nil)
		start := w.now
		w.record(leaves, "Share with partners", consent.StateGranted)
		w.record(stays, "Share with partners", consent.StateGranted)
		w.record(back, "Share with partners", consent.StateWithdrawn)
		w.runDue()
		w.now = start.Add(2 * time.Second)
		w.record(leaves, "Share with partners", consent.StateWithdrawn) // sets "Sorry" off for leaves too
		w.record(back, "Share with partners", consent.StateGranted)     // sets "Share" off for back too
		w.runDue()
		w.now = start.Add(time.Minute)
		w.runDue()
		if run := w.runs(workflow.RunQuery{RuleID: share.ID, ContactID: leaves})[0]; run.Status != workflow.StatusSkipped ||
			run.Outcome != `the contact withdrew their consent to "Share with partners" after the event: nothing was done` || len(run.Done) != 0 {
			t.Errorf("the contact who withdrew: %+v", run)
		}
		if run := w.runs(workflow.RunQuery{RuleID: share.ID, ContactID: stays})[0]; run.Status != workflow.StatusDone || len(run.Done) != 1 {
			t.Errorf("the contact who stayed: %+v", run)
		}
		var partner int
		if err := db.Read.QueryRow(`SELECT COUNT(*) FROM outbox WHERE kind = $1`, mail.KindPartner).Scan(&partner); err != nil || partner != 1 {
			t.Fatalf("%d partner emails queued, %v; want 1 (the contact who stayed)", partner, err)
		}

		w.now = start.Add(time.Hour + 2*time.Second) // the withdrawals' runs are due
		w.runDue()
		runs := w.runs(workflow.RunQuery{RuleID: sorry.ID, ContactID: back})
		if len(runs) != 1 || runs[0].Status != workflow.StatusSkipped ||
			runs[0].Outcome != `the contact consented to "Share with partners" again after the withdrawal: nothing was done` {
			t.Errorf("the contact who came back: %+v", runs)
		}
		if run := w.runs(workflow.RunQuery{RuleID: sorry.ID, ContactID: leaves})[0]; run.Status != workflow.StatusDone {
			t.Errorf("the withdrawal that stands: %+v", run)
		}
	})
}

// A run without a delay acts on the consent as it is when it acts: a grant
// withdrawn before the runner reads the event sets nothing off. The emails
// a consent event's run queued rest on the consent: withdrawn before they
// go, neither the partner's email nor the contact's is sent, with the
// reason in the outbox; another contact's go.
func TestQueuedEmailStopsAtWithdrawal(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		w.rule(`{"name": "Share with Partner AB", "trigger": "consent.granted",
			"condition": "event.purpose == \"Share with partners\" && event.state == \"granted\"",
			"actions": [{"type": "email_address", "to": "leads@partner.example", "subject": "A new lead", "fields": ["first_name", "email"]},
				{"type": "email_contact", "subject": "Thank you", "text": "We passed your details to Partner AB."}]}`)
		quick := w.person("quick@example.com", contactstate.SingleOptInUser, nil)
		w.record(quick, "Share with partners", consent.StateGranted)
		w.record(quick, "Share with partners", consent.StateWithdrawn)
		w.runDue()
		if run := w.runs(workflow.RunQuery{ContactID: quick})[0]; run.Status != workflow.StatusSkipped || len(run.Done) != 0 ||
			!strings.Contains(run.Outcome, "withdrew their consent") {
			t.Errorf("a grant withdrawn before the run: %+v", run)
		}

		leaves := w.reachable("leaves@example.com", nil)
		stays := w.reachable("stays@example.com", nil)
		w.record(leaves, "Share with partners", consent.StateGranted)
		w.record(stays, "Share with partners", consent.StateGranted)
		w.runDue()
		w.record(leaves, "Share with partners", consent.StateWithdrawn)
		srv, d := w.smtp()
		if _, err := d.RunDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := srv.Wait(t, 2)
		for _, m := range got {
			if strings.Contains(m.Text, "leaves@example.com") || strings.Join(m.To, ",") == "leaves@example.com" {
				t.Errorf("sent about the contact who withdrew: %+v", m)
			}
		}
		for id, want := range map[string]string{leaves: mail.ReasonConsentWithdrawn, stays: ""} {
			run := w.runs(workflow.RunQuery{ContactID: id})[0]
			if run.Status != workflow.StatusDone || len(run.Done) != 2 {
				t.Fatalf("%s: %+v", id, run)
			}
			for _, done := range run.Done {
				status, reason := w.outbox(done.EmailID)
				if reason != want || (want == "") != (status == mail.StatusSent) {
					t.Errorf("%s: the %s email is %s %q, want reason %q", id, done.Type, status, reason, want)
				}
			}
		}
		if srv.Received() != 2 {
			t.Fatalf("the SMTP server received %d messages, want 2", srv.Received())
		}
	})
}
