package retention_test

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/retention"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

func ptr[T any](v T) *T { return &v }

// erased records what retention asked to erase, and marks the contact
// erased as the real eraser does.
type erased map[string]string

func (e erased) erase(tx *store.Tx, ids []string, action, rule string, now time.Time) error {
	if rule != retention.Rule {
		panic("rule " + rule)
	}
	for _, id := range ids {
		e[id] = action
		if err := contactstate.MarkErasedTx(tx, id, now); err != nil {
			return err
		}
	}
	return nil
}

// TestRetention: a contact is flagged once every purpose they have a
// record for has passed its period (counted from the last record, or a
// later contract end), stays flagged for the grace period, and is then
// erased with the action its purposes choose; a purpose with no period, a
// new consent during the grace period, or a legal hold keeps them.
func TestRetention(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		clock := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		now := func() time.Time { return clock }
		cs := consent.NewService(db)
		cs.Now = now
		people := contact.NewService(db, cs)
		people.Now = now
		news, err := cs.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: ptr("Newsletter"), LegalBasis: ptr("consent"), Text: ptr("Yes, news."),
			RetentionDays: ptr(30)})
		if err != nil {
			t.Fatal(err)
		}
		events, err := cs.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: ptr("Events"), LegalBasis: ptr("consent"), Text: ptr("Yes, events."),
			RetentionDays: ptr(60), RetentionAction: ptr(consent.RetentionAnonymise)})
		if err != nil {
			t.Fatal(err)
		}
		forever, err := cs.CreatePurpose(ctx, audit.Actor{Kind: "user"}, consent.PurposeInput{Name: ptr("Support"), LegalBasis: ptr("contract"), Text: ptr("Support.")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := settings.Update(ctx, db, settings.Patch{RetentionGraceDays: ptr(10)}, audit.Actor{Kind: "user"}, clock); err != nil {
			t.Fatal(err)
		}
		grant := func(id, purpose string) {
			t.Helper()
			if _, err := cs.Record(ctx, id, consent.RecordInput{Purpose: purpose, State: consent.StateGranted, Source: "API",
				Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}}); err != nil {
				t.Fatal(err)
			}
		}
		person := func(email string, purposes ...string) string {
			t.Helper()
			c, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: &email},
				Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range purposes {
				grant(c.ID, p)
			}
			return c.ID
		}
		onlyNews := person("news@example.com", news.ID)         // due after 30 days, erase
		onlyEvents := person("events@example.com", events.ID)   // due after 60 days, anonymise
		both := person("both@example.com", news.ID, events.ID)  // due after 60 days, erase (one purpose wants proof kept)
		kept := person("kept@example.com", news.ID, forever.ID) // never: support has no period
		renewed := person("renewed@example.com", news.ID)       // renews during the grace period
		held := person("held@example.com", news.ID)             // a legal hold keeps them
		none := person("none@example.com")                      // no records: no rule applies
		_ = none
		_ = held
		eraser := erased{}
		svc := &retention.Service{DB: db, Erase: eraser.erase, Now: now, Chunk: 3, Batch: 2}
		flag := func(wantFlagged, wantCleared int) {
			t.Helper()
			f, c, err := svc.Flag(ctx)
			if err != nil || f != wantFlagged || c != wantCleared {
				t.Fatalf("flagged %d cleared %d (%v), want %d and %d", f, c, err, wantFlagged, wantCleared)
			}
		}
		flag(0, 0)
		clock = clock.Add(31 * 24 * time.Hour)
		flag(3, 0) // onlyNews, renewed, held
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`INSERT INTO legal_holds (id, contact_id, reason, legal_basis, set_by_kind, set_at)
				VALUES ('h1', $1, 'bookkeeping', 'legal_obligation', 'user', 0)`, held)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		flag(0, 1) // the hold clears held
		clock = clock.Add(5 * 24 * time.Hour)
		grant(renewed, news.ID)
		due, n, err := svc.Preview(ctx, clock.Add(6*24*time.Hour), 10)
		if err != nil || n != 2 || len(due) != 2 {
			t.Fatalf("preview: %d %+v %v", n, due, err)
		}
		if got, err := svc.Run(ctx); err != nil || got != 0 {
			t.Fatalf("run within the grace period erased %d (%v)", got, err)
		}
		clock = clock.Add(6 * 24 * time.Hour) // 42 days: the grace period has passed for the first ones
		if got, err := svc.Run(ctx); err != nil || got != 1 || eraser[onlyNews] != consent.RetentionErase {
			t.Fatalf("run erased %d (%v): %v", got, err, eraser)
		}
		if _, ok := eraser[renewed]; ok {
			t.Fatal("a contact who consented again during the grace period was erased")
		}
		clock = clock.Add(30 * 24 * time.Hour) // 72 days
		flag(3, 0)                             // onlyEvents, both, and renewed (36 + 30 days)
		clock = clock.Add(11 * 24 * time.Hour)
		if got, err := svc.Run(ctx); err != nil || got != 3 {
			t.Fatalf("second run erased %d (%v)", got, err)
		}
		if eraser[onlyEvents] != consent.RetentionAnonymise || eraser[both] != consent.RetentionErase {
			t.Fatalf("actions: %v", eraser)
		}
		for _, id := range []string{kept, held, none} {
			if _, ok := eraser[id]; ok {
				t.Fatalf("%s erased", id)
			}
		}
	})
}
