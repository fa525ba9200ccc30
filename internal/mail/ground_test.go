package mail_test

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
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestMarketingGround delivers a workflow rule's email (marketing) to
// contacts in every state of the ground, over SMTP, and checks who got it
// and why the others did not: it needs what a campaign for E-marketing
// needs under the default policy (double_only). A second purpose that
// governs marketing email, on the basis of legitimate interests, then
// gives a ground to those who did not object to it, and an objection to
// it, or a withdrawal of E-marketing, stops marketing email however
// strong the other ground.
func TestMarketingGround(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		cs := consent.NewService(db)
		people := contact.NewService(db, cs)
		record := func(id, purpose, state string, expires *time.Time) {
			t.Helper()
			if _, err := cs.Record(ctx, id, consent.RecordInput{Purpose: purpose, State: state, Source: "API", ExpiresAt: expires,
				Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}}); err != nil {
				t.Fatal(err)
			}
		}
		// person makes a contact with an opt-in status and an E-marketing
		// consent ("" for none).
		person := func(email, status, marketing string) string {
			t.Helper()
			id := addContact(t, people, email, "")
			// Set-up only: double_opt_in is reached through its own flow.
			write(t, db, func(tx *store.Tx) error { return contactstate.SetOptInTx(tx, id, status, time.Now()) })
			if marketing != "" {
				record(id, "E-marketing", marketing, nil)
			}
			return id
		}
		soon := time.Now().Add(time.Minute)
		ids := map[string]string{
			"confirmed":          person("confirmed@example.com", contactstate.DoubleOptIn, consent.StateGranted),
			"never consented":    person("never@example.com", contactstate.DoubleOptIn, ""),
			"withdrew":           person("withdrew@example.com", contactstate.DoubleOptIn, consent.StateWithdrawn),
			"single opt-in":      person("single@example.com", contactstate.SingleOptInUser, consent.StateGranted),
			"no opt-in":          person("none@example.com", contactstate.OptInNone, consent.StateGranted),
			"consent expired":    person("expired@example.com", contactstate.DoubleOptIn, ""),
			"erased before":      person("erased@example.com", contactstate.DoubleOptIn, consent.StateGranted),
			"objected to offers": person("objected@example.com", contactstate.DoubleOptIn, consent.StateGranted),
		}
		record(ids["consent expired"], "E-marketing", consent.StateGranted, &soon)
		// The address was erased after this consent was given, and came
		// back: the consent from before does not count.
		exec(t, db, `UPDATE contacts SET previously_erased_at = $2 WHERE id = $1`, ids["erased before"], store.Micros(time.Now().Add(time.Second)))

		srv := mailtest.Start(t)
		tr, err := mail.NewSMTP(srv.URL(), 2)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		later := func() time.Time { return time.Now().Add(time.Hour) } // the expiring consent has expired
		d := newDeliverer(db, tr, later)
		deliver := func(round string, want map[string]string) {
			t.Helper()
			out := map[string]string{}
			for name, id := range ids {
				out[name] = enqueue(t, db, mail.Message{ContactID: id, Kind: mail.KindWorkflow, Subject: round, Text: "Our offers"})
			}
			if n, err := d.RunDue(ctx); err != nil || n != len(ids) {
				t.Fatalf("%s: RunDue %d, %v", round, n, err)
			}
			var sent []string
			for name, id := range out {
				status, reason, to := outboxRow(t, db, id)
				if reason != want[name] || (want[name] == "") != (status == mail.StatusSent) {
					t.Errorf("%s: %s: %s %q, want reason %q", round, name, status, reason, want[name])
				}
				if status == mail.StatusSent {
					sent = append(sent, to)
				}
			}
			var got []string
			for _, m := range srv.Wait(t, srv.Received()) {
				if m.Header.Get("Subject") == round {
					got = append(got, strings.Join(m.To, ","))
				}
			}
			slices.Sort(sent)
			slices.Sort(got)
			if !slices.Equal(got, sent) {
				t.Errorf("%s: the SMTP server received %v, the outbox says sent to %v", round, got, sent)
			}
		}
		deliver("E-marketing alone", map[string]string{
			"confirmed":          "",
			"never consented":    mail.ReasonNoConsent,
			"withdrew":           mail.ReasonNoConsent,
			"single opt-in":      mail.ReasonNotOptedIn,
			"no opt-in":          mail.ReasonNotOptedIn,
			"consent expired":    mail.ReasonNoConsent,
			"erased before":      mail.ReasonSuppressedAddress,
			"objected to offers": "",
		})

		if _, err := cs.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: ptr("Member offers"), LegalBasis: ptr(consent.BasisLegitimateInterests),
			MarketingEmail: ptr(true), Text: ptr("As a member, you get our offers; say no at any time.")}); err != nil {
			t.Fatal(err)
		}
		record(ids["objected to offers"], "Member offers", consent.StateWithdrawn, nil)
		deliver("Two marketing purposes", map[string]string{
			"confirmed":          "",
			"never consented":    "", // no objection to Member offers: a ground
			"withdrew":           mail.ReasonMarketingWithdrawn,
			"single opt-in":      mail.ReasonNotOptedIn,
			"no opt-in":          mail.ReasonNotOptedIn,
			"consent expired":    "",
			"erased before":      mail.ReasonSuppressedAddress,
			"objected to offers": mail.ReasonMarketingWithdrawn,
		})
	})
}
