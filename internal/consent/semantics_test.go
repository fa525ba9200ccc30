package consent_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

var contactActor = consent.Actor{Kind: consent.ActorContact}

// newWithConsents creates a contact and grants the purposes named.
func newWithConsents(t testing.TB, cs *consent.Service, people *contact.Service, email string, purposes ...string) *contact.Contact {
	t.Helper()
	ctx := context.Background()
	in := contact.NewContact{Input: contact.Input{Email: ptr(email)}, Actor: apiActor, Evidence: apiEvidence}
	for _, p := range purposes {
		in.Consents = append(in.Consents, consent.RecordInput{Purpose: p, State: consent.StateGranted, Source: "Web form",
			Actor: apiActor, Evidence: apiEvidence})
	}
	c, err := people.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// addSharePurpose adds a purpose on the legal basis of consent that does
// not govern marketing email.
func addSharePurpose(t testing.TB, cs *consent.Service) {
	t.Helper()
	if _, err := cs.CreatePurpose(context.Background(), audit.Actor{Kind: "user"}, consent.PurposeInput{Name: ptr("Share with partners"),
		LegalBasis: ptr(consent.BasisConsent), Text: ptr("We may share your details with partners.")}); err != nil {
		t.Fatal(err)
	}
}

func ledgerVerifies(t testing.TB, cs *consent.Service) {
	t.Helper()
	if rep, err := cs.VerifyLedger(context.Background()); err != nil || !rep.OK {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

func currentStates(t testing.TB, cs *consent.Service, id string) map[string]consent.Current {
	t.Helper()
	cur, err := cs.CurrentConsents(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]consent.Current{}
	for _, c := range cur {
		out[c.PurposeName] = c
	}
	return out
}

// TestTheContactsOptOutWithdrawsMarketingConsent: unsubscribing is saying
// no to marketing, so the consent records say so too, with the evidence of
// the unsubscribe, and the condition language no longer counts the contact
// as consenting. A purpose that does not govern marketing email keeps its
// consent, and a user's opt-out withdraws nothing (the contact did not say
// no).
func TestTheContactsOptOutWithdrawsMarketingConsent(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		cs, people := services(db)
		addSharePurpose(t, cs)
		anna := newWithConsents(t, cs, people, "anna@example.com", "E-marketing", "Share with partners")
		bo := newWithConsents(t, cs, people, "bo@example.com", "E-marketing")

		ev := consent.Evidence{Method: consent.MethodUnsubscribeLink, IP: "198.51.100.7", UserAgent: "Mail/1.0", TokenID: "tok-1"}
		if _, err := cs.SetOptIn(ctx, anna.ID, consent.OptInInput{Status: contactstate.OptOutContact, Channel: consent.ChannelContact,
			Actor: contactActor, Evidence: ev}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.SetOptIn(ctx, bo.ID, consent.OptInInput{Status: contactstate.OptOutUser, Channel: consent.ChannelUser,
			Actor: apiActor, Evidence: apiEvidence}); err != nil {
			t.Fatal(err)
		}
		st := currentStates(t, cs, anna.ID)
		if st["E-marketing"].State != consent.StateWithdrawn || st["E-marketing"].Source != "Email" ||
			st["Share with partners"].State != consent.StateGranted {
			t.Fatalf("after the contact's opt-out: %+v", st)
		}
		hist, err := cs.History(ctx, anna.ID)
		if err != nil {
			t.Fatal(err)
		}
		last := hist[len(hist)-1]
		if last.PurposeName != "E-marketing" || last.Actor != contactActor || last.Evidence != ev {
			t.Fatalf("the withdrawal carries the unsubscribe's evidence: %+v", last)
		}
		if st := currentStates(t, cs, bo.ID); st["E-marketing"].State != consent.StateGranted {
			t.Fatalf("a user's opt-out withdraws nothing: %+v", st)
		}
		ids, err := people.MatchingIDs(ctx, `consent("E-marketing") == "granted"`, 10)
		if err != nil || !slices.Equal(ids, []string{bo.ID}) {
			t.Fatalf("granted E-marketing after the opt-out: %v %v", ids, err)
		}
		ledgerVerifies(t, cs)
	})
}

// TestStopProcessingWithdrawsEveryConsent: stopping processing opts the
// contact out, withdraws every consent given on the legal basis of consent
// (a contract stays what it is) and locks the record, in one transaction.
func TestStopProcessingWithdrawsEveryConsent(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		cs, people := services(db)
		addSharePurpose(t, cs)
		c := newWithConsents(t, cs, people, "cai@example.com", "E-marketing", "Share with partners", "Sales and service")
		ev := consent.Evidence{Method: consent.MethodPreferencesPage, IP: "203.0.113.9"}
		err := db.Write(ctx, func(tx *store.Tx) error {
			k, err := contactstate.Load(tx, c.ID)
			if err != nil {
				return err
			}
			return cs.StopProcessingTx(tx, k, contactActor, ev, cs.Now())
		})
		if err != nil {
			t.Fatal(err)
		}
		st := currentStates(t, cs, c.ID)
		if st["E-marketing"].State != consent.StateWithdrawn || st["Share with partners"].State != consent.StateWithdrawn ||
			st["Sales and service"].State != consent.StateGranted || st["Share with partners"].Source != "Preferences page" {
			t.Fatalf("after stop processing: %+v", st)
		}
		got, err := people.Get(ctx, c.ID)
		if err != nil || got.OptInStatus != contactstate.OptOutContact || got.ProcessingStoppedAt == nil {
			t.Fatalf("after stop processing: %v %+v", err, got)
		}
		ids, err := people.MatchingIDs(ctx, `processing_stopped == true && opt_in_status == "opt_out_contact"`, 10)
		if err != nil || !slices.Equal(ids, []string{c.ID}) {
			t.Fatalf("the condition language sees the lock: %v %v", ids, err)
		}
		// The locked record takes withdrawals, never a grant; a refused
		// grant leaves nothing behind (on PostgreSQL the one-statement
		// write is rolled back).
		before, err := cs.History(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs.Record(ctx, c.ID, consent.RecordInput{Purpose: "E-marketing", State: consent.StateGranted, Source: "Phone",
			Actor: apiActor, Evidence: apiEvidence}); !errs.Is(err, errs.KindLocked) {
			t.Fatalf("a grant on a locked record: %v", err)
		}
		if after, _ := cs.History(ctx, c.ID); len(after) != len(before) {
			t.Fatalf("a refused grant wrote %d records", len(after)-len(before))
		}
		if _, err := cs.Record(ctx, c.ID, consent.RecordInput{Purpose: "Sales and service", State: consent.StateWithdrawn, Source: "Phone",
			Actor: apiActor, Evidence: apiEvidence}); err != nil {
			t.Fatalf("a withdrawal on a locked record: %v", err)
		}
		ledgerVerifies(t, cs)
	})
}

// TestLiftingAUsersOptOut: lifting restores a double opt-in that the
// opt-out replaced while the contact's marketing consent still stands, and
// none otherwise.
func TestLiftingAUsersOptOut(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		cs, people := services(db)
		set := func(id, status string, ch consent.Channel) string {
			t.Helper()
			actor, ev := apiActor, apiEvidence
			if ch == consent.ChannelConfirmation {
				actor, ev = contactActor, consent.Evidence{Method: consent.MethodDoubleOptInLink}
			}
			chg, err := cs.SetOptIn(ctx, id, consent.OptInInput{Status: status, Channel: ch, Actor: actor, Evidence: ev})
			if err != nil || chg == nil {
				t.Fatalf("set %s: %v", status, err)
			}
			return chg.To
		}
		confirmed := newWithConsents(t, cs, people, "dee@example.com", "E-marketing")
		withdrawn := newWithConsents(t, cs, people, "eli@example.com", "E-marketing")
		for _, c := range []*contact.Contact{confirmed, withdrawn} {
			set(c.ID, contactstate.DoubleOptIn, consent.ChannelConfirmation)
			set(c.ID, contactstate.OptOutUser, consent.ChannelUser)
		}
		if _, err := cs.Record(ctx, withdrawn.ID, consent.RecordInput{Purpose: "E-marketing", State: consent.StateWithdrawn,
			Source: "Phone", Actor: apiActor, Evidence: apiEvidence}); err != nil {
			t.Fatal(err)
		}
		if got := set(confirmed.ID, contactstate.OptInNone, consent.ChannelUser); got != contactstate.DoubleOptIn {
			t.Fatalf("lifting with the consent standing gives %s", got)
		}
		if got := set(withdrawn.ID, contactstate.OptInNone, consent.ChannelUser); got != contactstate.OptInNone {
			t.Fatalf("lifting after a withdrawal gives %s", got)
		}
		ledgerVerifies(t, cs)
	})
}

// TestDeliverabilityInTheContactAndConditions: the contact says whether
// email reaches it, and conditions can select by it.
func TestDeliverabilityInTheContactAndConditions(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		cs, people := services(db)
		a := newWithConsents(t, cs, people, "fay@example.com")
		b := newWithConsents(t, cs, people, "gus@example.com")
		if a.Deliverability != contactstate.DeliverabilityOK {
			t.Fatalf("new contact: %q", a.Deliverability)
		}
		if _, err := people.RecordBounce(ctx, "FAY@example.com", true); err != nil {
			t.Fatal(err)
		}
		if got, err := people.Get(ctx, a.ID); err != nil || got.Deliverability != contactstate.DeliverabilityBounced {
			t.Fatalf("after a hard bounce: %v %+v", err, got)
		}
		ids, err := people.MatchingIDs(ctx, `deliverability == "bounced"`, 10)
		if err != nil || !slices.Equal(ids, []string{a.ID}) {
			t.Fatalf("bounced: %v %v", ids, err)
		}
		ids, err = people.MatchingIDs(ctx, `deliverability == "ok" && erasure_requested == false && processing_stopped == false`, 10)
		if err != nil || !slices.Equal(ids, []string{b.ID}) {
			t.Fatalf("ok: %v %v", ids, err)
		}
		if _, err := people.MatchingIDs(ctx, `deliverability == "bouncd"`, 10); err == nil {
			t.Fatal("a misspelt deliverability is an error")
		}
	})
}

// TestUnsubscribingAgainWithdrawsWhatWasGrantedSince: a contact already
// opted out who unsubscribes again has any marketing consent granted since
// withdrawn; and opt-outs recorded before opt-outs withdrew consent get
// their withdrawal once, by the system.
func TestUnsubscribingAgainWithdrawsWhatWasGrantedSince(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		cs, people := services(db)
		optOut := func(id string) {
			t.Helper()
			if _, err := cs.SetOptIn(ctx, id, consent.OptInInput{Status: contactstate.OptOutContact, Channel: consent.ChannelContact,
				Actor: contactActor, Evidence: consent.Evidence{Method: consent.MethodUnsubscribeLink}}); err != nil {
				t.Fatal(err)
			}
		}
		grant := func(id string) {
			t.Helper()
			if _, err := cs.Record(ctx, id, consent.RecordInput{Purpose: "E-marketing", State: consent.StateGranted, Source: "API",
				Actor: apiActor, Evidence: apiEvidence}); err != nil {
				t.Fatal(err)
			}
		}
		again := newWithConsents(t, cs, people, "hal@example.com", "E-marketing")
		optOut(again.ID)
		grant(again.ID)
		optOut(again.ID)
		if st := currentStates(t, cs, again.ID); st["E-marketing"].State != consent.StateWithdrawn {
			t.Fatalf("after unsubscribing again: %+v", st["E-marketing"])
		}

		// An opt-out written as it was before this rule: the status only.
		old := newWithConsents(t, cs, people, "ida@example.com", "E-marketing")
		if err := db.Write(ctx, func(tx *store.Tx) error {
			return contactstate.SetOptInTx(tx, old.ID, contactstate.OptOutContact, time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		if n, err := cs.WithdrawMarketingOfOptedOut(ctx); err != nil || n != 1 {
			t.Fatalf("first run: %d %v", n, err)
		}
		st := currentStates(t, cs, old.ID)
		if st["E-marketing"].State != consent.StateWithdrawn || st["E-marketing"].Source != "Email" {
			t.Fatalf("after the system's withdrawal: %+v", st["E-marketing"])
		}
		if n, err := cs.WithdrawMarketingOfOptedOut(ctx); err != nil || n != 0 {
			t.Fatalf("second run: %d %v", n, err)
		}
	})
}
