package optin_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/holds"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// hold sets a legal hold on the contact id.
func (f *fixture) hold(t testing.TB, id string) {
	t.Helper()
	f.write(t, func(tx *store.Tx) error {
		_, err := holds.SetTx(tx, id, holds.New{Reason: "A dispute", LegalBasis: holds.BasisLegalClaims},
			consent.Actor{Kind: consent.ActorSystem}, f.now)
		return err
	})
}

// runBulk invites the contacts ids by trigger in a bulk run, carried out
// at once as its job would, and returns the run as it ends.
func (f *fixture) runBulk(t testing.TB, ids []string, trigger string) (*optin.Bulk, error) {
	t.Helper()
	ctx := context.Background()
	b, err := f.svc.StartBulk(ctx, ids, trigger, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]string{"id": b.ID})
	if err := f.svc.RunBulk(ctx, &jobs.Job{Kind: optin.BulkJob, Payload: payload, Attempt: 1, MaxAttempts: 5}); err != nil {
		t.Fatal(err)
	}
	return f.svc.GetBulk(ctx, b.ID)
}

// TestHeldContactGetsNoInvitation: a contact under a legal hold is
// skipped with the reason held, whatever asks (one by one, in bulk); an
// invitation queued before the hold was set is suppressed at send time
// with that reason. Through a real SMTP server, only the contact without
// a hold gets an invitation.
func TestHeldContactGetsNoInvitation(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := setUp(t, db)
		srv := mailtest.Start(t)
		tr, err := mail.NewSMTP(srv.URL(), 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		f.outbox.Transport = tr
		free := f.contact(t, "free@example.com", "")
		held := f.contact(t, "held@example.com", "")
		later := f.contact(t, "later@example.com", "") // held once invited
		hold := func(id string) { t.Helper(); f.hold(t, id) }
		hold(held)
		res, err := f.svc.Invite(ctx, []string{free, held, later}, optin.TriggerAPI)
		if err != nil {
			t.Fatal(err)
		}
		if res.Invited != 2 || res.Skipped[optin.SkipHeld] != 1 || len(res.Skipped) != 1 {
			t.Fatalf("invite: %+v", res)
		}
		var reason string
		f.write(t, func(tx *store.Tx) (err error) {
			reason, err = f.svc.InviteTx(tx, held, optin.TriggerWorkflow, f.now)
			return err
		})
		if reason != optin.SkipHeld {
			t.Fatalf("a workflow rule's invitation of the held contact is skipped for %q", reason)
		}
		var invitations int
		if err := db.Read.QueryRow(`SELECT count(*) FROM optin_invitations WHERE contact_id = $1`, held).Scan(&invitations); err != nil || invitations != 0 {
			t.Fatalf("%d invitations for the held contact (%v)", invitations, err)
		}

		hold(later) // after the invitation was queued
		if _, err := f.outbox.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		msgs := srv.Wait(t, 1)
		if len(msgs) != 1 || msgs[0].To[0] != "free@example.com" {
			t.Fatalf("invitations went to %v", msgs)
		}
		var status string
		if err := db.Read.QueryRow(`SELECT status, reason FROM outbox WHERE contact_id = $1`, later).Scan(&status, &reason); err != nil ||
			status != mail.StatusSuppressed || reason != mail.ReasonHeld {
			t.Fatalf("the invitation queued before the hold: %s %q (%v)", status, reason, err)
		}

		// In bulk, as a re-permission run or a large request invites.
		f.now = f.now.Add(48 * time.Hour)
		got, err := f.runBulk(t, []string{held, later}, optin.TriggerRepermission)
		if err != nil || got.Status != optin.BulkDone || got.Invited != 0 || got.Skipped[optin.SkipHeld] != 2 {
			t.Fatalf("bulk run: %+v %v", got, err)
		}
		if _, err := f.outbox.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		if n := srv.Received(); n != 1 {
			t.Fatalf("%d invitations reached the server, want only the free contact's", n)
		}
	})
}
