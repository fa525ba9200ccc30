package optin_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// Taking a contact off the blocklist does not clear a bounce.
func TestUnblocklistKeepsABounce(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		id := f.contact(t, "b@example.com", "")
		ctx := context.Background()
		if _, err := f.people.RecordBounce(ctx, "b@example.com", true); err != nil {
			t.Fatal(err)
		}
		d, err := f.people.SetBlocklisted(ctx, id, false)
		if err != nil {
			t.Fatal(err)
		}
		if d.Deliverability != contactstate.DeliverabilityBounced {
			t.Errorf("after DELETE blocklist on a bounced contact: %s", d.Deliverability)
		}
	})
}

// A link whose invitation was replaced by a newer one is dead: the page
// offers no confirm button, and posting to it confirms nothing.
func TestReplacedLinkShowsTheNeutralPage(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		id := f.contact(t, "p@example.com", "")
		ctx := context.Background()
		if _, err := f.svc.Invite(ctx, []string{id}, optin.TriggerUser); err != nil {
			t.Fatal(err)
		}
		old := f.links(t, id)[0] // sent, then replaced
		f.now = f.now.Add(time.Hour)
		if _, err := f.svc.Invite(ctx, []string{id}, optin.TriggerUser); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Pending(ctx, old); !errors.Is(err, optin.ErrNotConfirmed) {
			t.Error("a replaced link shows the confirm button")
		}
		if _, err := f.svc.Confirm(ctx, old, optin.Evidence{}); err == nil {
			t.Error("a replaced link confirmed")
		}
		if _, err := f.svc.Confirm(ctx, f.links(t, id)[1], optin.Evidence{}); err != nil {
			t.Errorf("the new link: %v", err)
		}
	})
}

// A contact named several times in one request gets one email.
func TestInviteNamesEachContactOnce(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		id := f.contact(t, "d@example.com", "")
		res, err := f.svc.Invite(context.Background(), []string{id, id, id}, optin.TriggerAPI)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(f.links(t, id)); n != 1 {
			t.Errorf("one request queued %d double opt-in emails for one contact (result %+v)", n, res)
		}
	})
}

// Renaming the built-in "Double opt-in email" source changes nothing for
// confirmations, which name it by id; deactivating it is refused.
func TestRenamedSourceStillConfirms(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		id := f.contact(t, "s@example.com", "")
		ctx := context.Background()
		if _, err := f.svc.Invite(ctx, []string{id}, optin.TriggerUser); err != nil {
			t.Fatal(err)
		}
		name := "DOI e-mail (Dutch site)"
		if _, err := f.svc.Consent.UpdateSource(ctx, audit.Actor{Kind: "user"}, "01930000-0000-7000-8001-00000000000a", consent.SourceInput{Name: &name}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Confirm(ctx, f.links(t, id)[0], optin.Evidence{IP: "192.0.2.1"}); err != nil {
			t.Errorf("confirm after the operator renamed the source: %v", err)
		}
		off := false
		if _, err := f.svc.Consent.UpdateSource(ctx, audit.Actor{Kind: "user"}, consent.SourceDoubleOptInEmail, consent.SourceInput{Active: &off}); err == nil {
			t.Error("the double opt-in source was deactivated")
		}
	})
}

// An invitation replaced before its email went out never had a working
// link: its email is not sent, and no token was ever made for it.
func TestReplacedBeforeSendingNeverHadALink(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		id := f.contact(t, "q@example.com", "")
		ctx := context.Background()
		for range 2 {
			if _, err := f.svc.Invite(ctx, []string{id}, optin.TriggerUser); err != nil {
				t.Fatal(err)
			}
			f.now = f.now.Add(time.Hour)
		}
		links := f.links(t, id)
		var tokens int
		if err := db.Read.QueryRow(`SELECT count(*) FROM tokens WHERE contact_id = $1`, id).Scan(&tokens); err != nil {
			t.Fatal(err)
		}
		if len(links) != 1 || tokens != 1 {
			t.Fatalf("%d links received, %d tokens made; want one of each, for the newer invitation", len(links), tokens)
		}
		if _, err := f.svc.Confirm(ctx, links[0], optin.Evidence{}); err != nil {
			t.Fatal(err)
		}
	})
}

// An invitation replaced by a newer one ends superseded, not expired: its
// time did not run out. Its email not yet sent is suppressed with that
// reason, and the newer invitation is the one open.
func TestReplacedInvitationIsSuperseded(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		id := f.contact(t, "r@example.com", "")
		ctx := context.Background()
		for range 2 {
			if _, err := f.svc.Invite(ctx, []string{id}, optin.TriggerUser); err != nil {
				t.Fatal(err)
			}
			f.now = f.now.Add(time.Hour)
		}
		invs, err := f.svc.Invitations(ctx, id)
		if err != nil || len(invs) != 2 {
			t.Fatalf("invitations: %+v %v", invs, err)
		}
		if invs[0].Status != optin.StatusInvited || invs[1].Status != optin.StatusSuperseded || invs[1].EndedAt == nil {
			t.Fatalf("newest first: %s, then %s (ended %v); want invited, then superseded", invs[0].Status, invs[1].Status, invs[1].EndedAt)
		}
		var reason string
		if err := db.Read.QueryRow(`SELECT reason FROM outbox WHERE subject_id = $1`, invs[1].ID).Scan(&reason); err != nil || reason != "invitation_superseded" {
			t.Fatalf("the replaced invitation's email: reason %q (%v)", reason, err)
		}
		// Expiry is still expiry.
		f.now = f.now.Add(15 * 24 * time.Hour)
		if _, err := f.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if invs, _ = f.svc.Invitations(ctx, id); invs[0].Status != optin.StatusExpired || invs[1].Status != optin.StatusSuperseded {
			t.Fatalf("after the expiry days: %s, %s", invs[0].Status, invs[1].Status)
		}
	})
}
