package workflow_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/holds"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/workflow"
)

// offersRule is a rule that emails the contact an offer (marketing) and a
// partner a note about them (not marketing to the contact) whenever the
// contact is updated.
const offersRule = `{"name": "Offers", "trigger": "contact.updated", "actions": [
	{"type": "email_contact", "subject": "Our December offers", "text": "Hi {{first_name}}, 20% off everything!"},
	{"type": "email_address", "to": "crm@partner.example", "subject": "Updated", "fields": ["first_name"]}]}`

// offer sets the offers rule off for each of the contacts (by name), runs
// it, delivers the outbox over SMTP and checks, for each, that the offer
// was sent or suppressed with the reason want gives ("" for sent), that
// the partner's email went, and that the SMTP server received exactly the
// offers the outbox says were sent.
func (w *world) offer(round string, contacts map[string]string, want map[string]string) {
	w.t.Helper()
	for _, id := range contacts {
		w.emit(events.ContactUpdated, id, events.ContactUpdatedData{ContactID: id, Fields: []string{"stage"}})
	}
	if n := w.runDue(); n != len(contacts) {
		w.t.Fatalf("%s: logged %d runs, want %d", round, n, len(contacts))
	}
	srv, d := w.smtp()
	if _, err := d.RunDue(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	var sent []string
	for name, id := range contacts {
		run := w.runs(workflow.RunQuery{ContactID: id})[0]
		if run.Status != workflow.StatusDone || len(run.Done) != 2 {
			w.t.Fatalf("%s: %s: %+v", round, name, run)
		}
		status, reason := w.outbox(run.Done[0].EmailID)
		if reason != want[name] || (want[name] == "") != (status == mail.StatusSent) {
			w.t.Errorf("%s: the offer to %s: %s %q, want reason %q", round, name, status, reason, want[name])
		}
		if status == mail.StatusSent {
			sent = append(sent, name+"@example.com")
		}
		if status, reason := w.outbox(run.Done[1].EmailID); status != mail.StatusSent {
			w.t.Errorf("%s: the partner's email about %s: %s %q", round, name, status, reason)
		}
	}
	var got []string
	for _, m := range srv.Wait(w.t, len(contacts)+len(sent)) {
		if m.Subject == "Our December offers" {
			got = append(got, strings.Join(m.To, ","))
		}
	}
	slices.Sort(sent)
	slices.Sort(got)
	if !slices.Equal(got, sent) || srv.Received() != len(contacts)+len(sent) {
		w.t.Errorf("%s: the SMTP server received offers to %v (%d messages in all), want %v and a partner's email each", round, got, srv.Received(), sent)
	}
}

// Workflow email to the contact is marketing email: it needs what a
// campaign for E-marketing needs, under the same campaign opt-in policy
// (double_only by default). A contact created without an opt-in or an
// E-marketing consent gets none, nor does one whose opt-in status the
// policy does not accept, one who withdrew E-marketing or one under a
// legal hold; once the policy accepts single opt-ins, the single opt-in
// contact gets theirs. The partner's email about each contact is not
// marketing to them and goes.
func TestWorkflowEmailNeedsTheGroundOfACampaign(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		w.rule(offersRule)
		contacts := map[string]string{
			"yes":    w.reachable("yes@example.com", nil),
			"no":     w.reachable("no@example.com", nil),
			"new":    w.person("new@example.com", contactstate.OptInNone, nil), // as a contact created through the API
			"single": w.person("single@example.com", contactstate.SingleOptInUser, nil),
			"held":   w.reachable("held@example.com", nil),
		}
		w.record(contacts["no"], "E-marketing", consent.StateWithdrawn)
		w.record(contacts["single"], "E-marketing", consent.StateGranted)
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			_, err := holds.SetTx(tx, contacts["held"], holds.New{Reason: "A dispute", LegalBasis: holds.Bases[0]}, consent.Actor{Kind: consent.ActorSystem}, w.now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		w.runDue()
		w.offer("double_only", contacts, map[string]string{
			"no":     mail.ReasonNoConsent,
			"new":    mail.ReasonNoConsent,
			"single": mail.ReasonNotOptedIn,
			"held":   mail.ReasonHeld,
		})

		if _, err := settings.Update(context.Background(), db, settings.Patch{CampaignOptInPolicy: ptr(settings.PolicyDoubleAndUser)},
			audit.Actor{Kind: "user"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		w.offer("double_and_user", contacts, map[string]string{
			"no":   mail.ReasonNoConsent,
			"new":  mail.ReasonNoConsent,
			"held": mail.ReasonHeld,
		})
	})
}

// A contact who said no to marketing email gets no workflow email, whatever
// other ground they have: with a second purpose that governs marketing
// email, on the basis of legitimate interests (so every contact who did
// not object to it has a ground), a contact who withdrew E-marketing, and
// one who objected to the second purpose, are suppressed with
// marketing_email_withdrawn. A contact who said no to neither gets theirs,
// and so does one with no E-marketing consent at all, on the second
// purpose's ground.
func TestWorkflowEmailSkipsWithdrawnMarketing(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		if _, err := w.consent.CreatePurpose(context.Background(), audit.Actor{Kind: "user"}, consent.PurposeInput{Name: ptr("Member offers"),
			LegalBasis: ptr(consent.BasisLegitimateInterests), MarketingEmail: ptr(true),
			Text: ptr("As a member, you get our offers by email; say no at any time.")}); err != nil {
			t.Fatal(err)
		}
		w.rule(offersRule)
		contacts := map[string]string{
			"yes":      w.reachable("yes@example.com", nil),
			"withdrew": w.reachable("withdrew@example.com", nil),
			"objected": w.reachable("objected@example.com", nil),
			"member":   w.confirmed("member@example.com", nil), // no E-marketing consent: their ground is the second purpose
		}
		w.record(contacts["withdrew"], "E-marketing", consent.StateWithdrawn)
		w.record(contacts["objected"], "Member offers", consent.StateWithdrawn)
		w.runDue()
		w.offer("two marketing purposes", contacts, map[string]string{
			"withdrew": mail.ReasonMarketingWithdrawn,
			"objected": mail.ReasonMarketingWithdrawn,
		})
	})
}
