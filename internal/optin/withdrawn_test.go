package optin_test

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// withdrawnFixture is a fixture with a second purpose that governs
// marketing email, on legitimate interests ("Member offers"), and four
// contacts: one free, one who withdrew their E-marketing consent, one who
// objected to Member offers, one under a legal hold.
type withdrawnFixture struct {
	*fixture
	free, withdrew, objected, held string
}

func setUpWithdrawn(t testing.TB, db *store.DB) *withdrawnFixture {
	t.Helper()
	ctx := context.Background()
	f := &withdrawnFixture{fixture: setUp(t, db)}
	name, basis, text, yes := "Member offers", consent.BasisLegitimateInterests, "As a member, you get our offers.", true
	if _, err := f.svc.Consent.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: &name, LegalBasis: &basis, MarketingEmail: &yes, Text: &text}); err != nil {
		t.Fatal(err)
	}
	f.free = f.contact(t, "free@example.com", "")
	f.withdrew = f.contact(t, "withdrew@example.com", "")
	f.objected = f.contact(t, "objected@example.com", "")
	f.held = f.contact(t, "held@example.com", "")
	record := func(id, purpose, state string) {
		t.Helper()
		if _, err := f.svc.Consent.Record(ctx, id, consent.RecordInput{Purpose: purpose, State: state, Source: "Phone",
			Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}}); err != nil {
			t.Fatal(err)
		}
	}
	record(f.withdrew, optin.EMarketing, consent.StateGranted)
	record(f.withdrew, optin.EMarketing, consent.StateWithdrawn)
	record(f.objected, name, consent.StateWithdrawn)
	f.hold(t, f.held)
	return f
}

func (f *withdrawnFixture) invitations(t testing.TB, id string) int {
	t.Helper()
	var n int
	if err := f.db.Read.QueryRow(`SELECT count(*) FROM optin_invitations WHERE contact_id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWithdrawnContactGetsNoInvitation: a contact who withdrew their
// consent to a purpose that governs marketing email, or objected to one,
// is not invited by a user, the API, a workflow rule or a bulk run, with
// the reason marketing_email_withdrawn, while the others are; the
// invitation after their own webform post still goes.
func TestWithdrawnContactGetsNoInvitation(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := setUpWithdrawn(t, db)

		res, err := f.svc.Invite(ctx, []string{f.withdrew}, optin.TriggerUser)
		if err != nil {
			t.Fatal(err)
		}
		if res.Invited != 0 || res.Skipped[optin.SkipMarketingWithdrawn] != 1 || len(res.Skipped) != 1 {
			t.Fatalf("a user's invitation of the contact who withdrew: %+v", res)
		}
		res, err = f.svc.Invite(ctx, []string{f.free, f.withdrew, f.objected}, optin.TriggerAPI)
		if err != nil {
			t.Fatal(err)
		}
		if res.Invited != 1 || res.Skipped[optin.SkipMarketingWithdrawn] != 2 || len(res.Skipped) != 1 {
			t.Fatalf("the API's invitation of a list: %+v", res)
		}
		var reason string
		f.write(t, func(tx *store.Tx) (err error) {
			reason, err = f.svc.InviteTx(tx, f.objected, optin.TriggerWorkflow, f.now)
			return err
		})
		if reason != optin.SkipMarketingWithdrawn {
			t.Fatalf("a workflow rule's invitation of the contact who objected is skipped for %q", reason)
		}
		for _, id := range []string{f.withdrew, f.objected} {
			if n := f.invitations(t, id); n != 0 {
				t.Fatalf("%d invitations for a contact who said no to marketing email", n)
			}
		}
		if n := f.invitations(t, f.free); n != 1 {
			t.Fatalf("%d invitations for the free contact, want 1", n)
		}

		// In bulk, a batch at a time.
		f.now = f.now.Add(48 * time.Hour)
		got, err := f.runBulk(t, []string{f.free, f.withdrew, f.objected}, optin.TriggerUser)
		if err != nil || got.Status != optin.BulkDone || got.Invited != 1 || got.Skipped[optin.SkipMarketingWithdrawn] != 2 || len(got.Skipped) != 1 {
			t.Fatalf("bulk run: %+v %v", got, err)
		}
		if n := f.invitations(t, f.free); n != 2 {
			t.Fatalf("%d invitations for the free contact after the bulk run, want 2", n)
		}

		// Their own webform post with the marketing box checked asks for it.
		f.write(t, func(tx *store.Tx) (err error) {
			reason, err = f.svc.InviteTx(tx, f.withdrew, optin.TriggerWebform, f.now)
			return err
		})
		if reason != "" || f.invitations(t, f.withdrew) != 1 {
			t.Fatalf("the webform's invitation of the contact who withdrew: skipped for %q, %d invitations", reason, f.invitations(t, f.withdrew))
		}
		if _, err := f.outbox.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		sent := map[string]int{}
		for _, e := range f.sent.envs {
			sent[e.To]++
		}
		if sent["withdrew@example.com"] != 1 || sent["objected@example.com"] != 0 || sent["free@example.com"] != 1 { // the bulk run's invitation replaced the first, unsent
			t.Fatalf("invitations went to %v", sent)
		}
	})
}

// TestWhyNotReadsEveryReason: the contact page's answer (ReadStanding,
// WhyNot) gives the reason an invitation would be skipped for a contact
// under a legal hold and one who said no to marketing email, and none for
// a contact who may be invited.
func TestWhyNotReadsEveryReason(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUpWithdrawn(t, db)
		for id, want := range map[string]string{f.free: "", f.held: optin.SkipHeld, f.withdrew: optin.SkipMarketingWithdrawn,
			f.objected: optin.SkipMarketingWithdrawn} {
			st, err := f.svc.ReadStanding(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if got := optin.WhyNot(st); got != want {
				t.Errorf("WhyNot(%+v) = %q, want %q", st, got, want)
			}
		}
		if _, err := f.svc.ReadStanding(context.Background(), "no-such-contact"); err == nil {
			t.Fatal("the standing of a contact that does not exist")
		}
	})
}
