package lists_test

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

func ptr[T any](v T) *T { return &v }

// TestSubscriptionsAndConditions: a subscription is set once per change,
// a list name is unique regardless of case, and inList() in a condition
// selects the subscribed contacts, in SQL and in memory alike.
func TestSubscriptionsAndConditions(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		ls := &lists.Service{DB: db, Now: time.Now}
		people := contact.NewService(db, consent.NewService(db))
		people.Lists = func(ctx context.Context) (filter.Lists, error) { return ls.Names(ctx) }
		news, err := ls.Create(ctx, lists.Input{Name: ptr("Newsletter")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ls.Create(ctx, lists.Input{Name: ptr("NEWSLETTER")}); !errs.Is(err, errs.KindConflict) {
			t.Fatalf("a second list named alike: %v", err)
		}
		if _, err := ls.Create(ctx, lists.Input{Name: ptr("  ")}); errs.As(err) == nil || errs.As(err).Field != "name" {
			t.Fatalf("a blank name: %v", err)
		}
		var ids []string
		for _, email := range []string{"a@example.com", "b@example.com"} {
			c, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr(email)},
				Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, c.ID)
		}
		if _, err := ls.Set(ctx, ids[0], "newsletter", lists.Subscribed, lists.SourceAPI, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := ls.Set(ctx, ids[1], "newsletter", "maybe", lists.SourceAPI, nil); errs.As(err) == nil || errs.As(err).Field != "status" {
			t.Fatalf("a bad status: %v", err)
		}
		if _, err := ls.Set(ctx, ids[1], "No such list", lists.Subscribed, lists.SourceAPI, nil); !errs.Is(err, errs.KindNotFound) {
			t.Fatalf("an unknown list: %v", err)
		}
		// A status the contact already has keeps its source and time.
		t0 := time.Now().UTC().Truncate(time.Microsecond)
		err = db.Write(ctx, func(tx *store.Tx) error {
			for i, st := range []string{lists.Subscribed, lists.Unsubscribed} {
				if err := lists.SetLater(tx, ids[1], news.ID, st, lists.SourceWebform, t0.Add(time.Duration(i)*time.Second)); err != nil {
					return err
				}
			}
			return lists.SetLater(tx, ids[1], news.ID, lists.Unsubscribed, lists.SourceAPI, t0.Add(time.Hour))
		})
		subs, _ := lists.Subscriptions(ctx, db.Read, ids[1])
		if err != nil || len(subs) != 1 || subs[0].State != lists.Unsubscribed || subs[0].Source != lists.SourceWebform ||
			!subs[0].ChangedAt.Equal(t0.Add(time.Second)) {
			t.Fatalf("after a repeated status: %+v (%v)", subs, err)
		}
		if _, err := ls.Set(ctx, ids[1], news.ID, lists.Unsubscribed, lists.SourceAPI, nil); err != nil {
			t.Fatal(err)
		}
		n, err := people.Count(ctx, `inList("Newsletter")`, contact.Asker{})
		if err != nil || n != 1 {
			t.Fatalf("inList counts %d (%v)", n, err)
		}
		if _, err := people.Count(ctx, `inList("Nope")`, contact.Asker{}); errs.As(err) == nil {
			t.Fatal("an unknown list in a condition is not an error")
		}
		cond, err := people.Condition(ctx, `inList("newsletter")`, false)
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			subs, err := lists.Subscriptions(ctx, db.Read, id)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := people.Get(ctx, id)
			if got := cond.Match(contact.Subject(c, nil, lists.SubscribedIDs(subs))); got != (i == 0) {
				t.Fatalf("in memory, contact %d in list: %v", i, got)
			}
		}
		// SetLater: the same change without an answer; a list deleted
		// since it was looked up is skipped, and the rest of the write
		// commits.
		gone, err := ls.Create(ctx, lists.Input{Name: ptr("Gone")})
		if err != nil {
			t.Fatal(err)
		}
		if err := ls.Delete(ctx, gone.ID); err != nil {
			t.Fatal(err)
		}
		err = db.Write(ctx, func(tx *store.Tx) error {
			if err := lists.SetLater(tx, ids[1], gone.ID, lists.Subscribed, lists.SourceWebform, time.Now()); err != nil {
				return err
			}
			return lists.SetLater(tx, ids[1], news.ID, lists.Subscribed, lists.SourceWebform, time.Now())
		})
		if err != nil {
			t.Fatal(err)
		}
		subs, err = lists.Subscriptions(ctx, db.Read, ids[1])
		if err != nil || len(subs) != 1 || subs[0].ListID != news.ID || subs[0].State != lists.Subscribed || subs[0].Source != lists.SourceWebform {
			t.Fatalf("after SetLater: %+v (%v)", subs, err)
		}
		if err := ls.Delete(ctx, news.ID); err != nil {
			t.Fatal(err)
		}
		if subs, _ := lists.Subscriptions(ctx, db.Read, ids[0]); len(subs) != 0 {
			t.Fatalf("deleting the list kept %v", subs)
		}
	})
}

// TestSubscriberCounts counts the subscribed contacts of every list in
// one query: an unsubscribed contact is not counted, and a list without
// subscribers is absent (0).
func TestSubscriberCounts(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		ls := &lists.Service{DB: db, Now: time.Now}
		people := contact.NewService(db, consent.NewService(db))
		news, err := ls.Create(ctx, lists.Input{Name: ptr("Newsletter")})
		if err != nil {
			t.Fatal(err)
		}
		empty, err := ls.Create(ctx, lists.Input{Name: ptr("Offers")})
		if err != nil {
			t.Fatal(err)
		}
		for i, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
			c, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr(email)},
				Actor: consent.Actor{Kind: consent.ActorAPIToken}, Evidence: consent.Evidence{Method: consent.MethodAPI}})
			if err != nil {
				t.Fatal(err)
			}
			state := lists.Subscribed
			if i == 2 {
				state = lists.Unsubscribed
			}
			if _, err := ls.Set(ctx, c.ID, news.ID, state, lists.SourceAPI, nil); err != nil {
				t.Fatal(err)
			}
		}
		counts, err := ls.SubscriberCounts(ctx)
		if err != nil || counts[news.ID] != 2 || counts[empty.ID] != 0 || len(counts) != 1 {
			t.Fatalf("counts: %v %v", counts, err)
		}
	})
}
