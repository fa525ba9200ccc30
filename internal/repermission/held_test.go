package repermission_test

import (
	"context"
	"testing"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/holds"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/mail/mailtest"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/repermission"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestHeldContactIsNotAsked: a re-permission run skips a contact under a
// legal hold with the reason held, as the double opt-in it sends does;
// through a real SMTP server, only the contact without a hold is asked.
func TestHeldContactIsNotAsked(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		ctx := context.Background()
		srv := mailtest.Start(t)
		tr, err := mail.NewSMTP(srv.URL(), 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		f.outbox.Transport = tr
		f.contact(t, "free@example.com", "")
		held := f.contact(t, "held@example.com", "")
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := holds.SetTx(tx, held, holds.New{Reason: "Bookkeeping", LegalBasis: holds.BasisLegalObligation},
				consent.Actor{Kind: consent.ActorSystem}, f.now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		run, err := f.svc.Start(ctx, repermission.Input{Condition: `email endsWith "@example.com"`}, user)
		if err != nil {
			t.Fatal(err)
		}
		f.runJobs(t)
		if _, err := f.outbox.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		got := f.get(t, run.ID)
		if got.Invited != 1 || got.Skipped[optin.SkipHeld] != 1 || got.Status != repermission.StatusWaiting {
			t.Fatalf("run: %+v", got)
		}
		if msgs := srv.Wait(t, 1); len(msgs) != 1 || msgs[0].To[0] != "free@example.com" {
			t.Fatalf("asked %v", msgs)
		}
		if r := f.report(t, run.ID)["held@example.com"]; r == nil || r[4] != "skipped" || r[5] != optin.SkipHeld {
			t.Fatalf("the held contact in the report: %v", r)
		}
	})
}
