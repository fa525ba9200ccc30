package lists_test

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/contactstate"
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
		news, err := ls.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("Newsletter")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ls.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("NEWSLETTER")}); !errs.Is(err, errs.KindConflict) {
			t.Fatalf("a second list named alike: %v", err)
		}
		if _, err := ls.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("  ")}); errs.As(err) == nil || errs.As(err).Field != "name" {
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
		gone, err := ls.Create(ctx, audit.Actor{Kind: "user"}, lists.Input{Name: ptr("Gone")})
		if err != nil {
			t.Fatal(err)
		}
		if err := ls.Delete(ctx, audit.Actor{Kind: "user"}, gone.ID); err != nil {
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
		if err := ls.Delete(ctx, audit.Actor{Kind: "user"}, news.ID); err != nil {
			t.Fatal(err)
		}
		if subs, _ := lists.Subscriptions(ctx, db.Read, ids[0]); len(subs) != 0 {
			t.Fatalf("deleting the list kept %v", subs)
		}
	})
}

// twoLists returns the list and contact services on db, and two lists,
// Newsletter and Offers.
func twoLists(t testing.TB, db *store.DB) (*lists.Service, *contact.Service, *lists.List, *lists.List) {
	ls := &lists.Service{DB: db, Now: time.Now}
	var made []*lists.List
	for _, name := range []string{"Newsletter", "Offers"} {
		l, err := ls.Create(context.Background(), audit.Actor{Kind: "user"}, lists.Input{Name: ptr(name)})
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, l)
	}
	return ls, contact.NewService(db, consent.NewService(db)), made[0], made[1]
}

// TestSubscriberCounts counts the subscribed contacts of every list in
// one query: an unsubscribed contact is not counted, and a list without
// subscribers is absent (0).
func TestSubscriberCounts(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		ls, people, news, empty := twoLists(t, db)
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

// TestLockedContactsTakeNoSubscription: a contact whose data was erased,
// or who asked to stop processing, cannot be subscribed to a list, through
// Set or inside a write (SetLater, as webforms and workflow rules do, and
// JoinLater): each is refused with the 423 of the lock (contact_erased,
// processing_stopped), and nothing is written, no subscription and no
// event. Unsubscribing a locked contact still works: it is a no.
func TestLockedContactsTakeNoSubscription(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		ls, people, news, other := twoLists(t, db)
		ids := map[string]string{}
		for _, who := range []string{"erased", "stopped"} {
			c, err := people.Create(ctx, contact.NewContact{Input: contact.Input{Email: ptr(who + "@example.com")}})
			if err != nil {
				t.Fatal(err)
			}
			ids[who] = c.ID
		}
		// The stopped contact was on the list before the lock.
		if _, err := ls.Set(ctx, ids["stopped"], news.ID, lists.Subscribed, lists.SourceAPI, nil); err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			if err := contactstate.MarkErasedTx(tx, ids["erased"], time.Now()); err != nil {
				return err
			}
			return contactstate.StopProcessingTx(tx, ids["stopped"], time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		count := func(query string, args ...any) int {
			t.Helper()
			var n int
			if err := db.Read.QueryRow(query, args...).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		subscribedBefore := count(`SELECT count(*) FROM events WHERE type = 'list.subscribed'`)
		for who, code := range map[string]string{"erased": "contact_erased", "stopped": "processing_stopped"} {
			id := ids[who]
			locked := func(how string, err error) {
				t.Helper()
				if e := errs.As(err); !errs.Is(err, errs.KindLocked) || e.Code != code {
					t.Fatalf("%s contact, %s: %v, want the locked error %s", who, how, err, code)
				}
			}
			for _, l := range []string{news.ID, other.ID} {
				_, err := ls.Set(ctx, id, l, lists.Subscribed, lists.SourceAPI, nil)
				locked("Set", err)
				locked("SetLater", db.Write(ctx, func(tx *store.Tx) error {
					return lists.SetLater(tx, id, l, lists.Subscribed, lists.SourceWorkflow, time.Now())
				}))
			}
			// (JoinLater leaves a contact who is on the list or left it
			// as they are: only a list they never joined is asked.)
			locked("JoinLater", db.Write(ctx, func(tx *store.Tx) error {
				_, err := lists.JoinLater(tx, id, other.ID, "import", time.Now())
				return err
			}))
			if n := count(`SELECT count(*) FROM list_subscriptions WHERE contact_id = $1 AND list_id = $2`, id, other.ID); n != 0 {
				t.Fatalf("%s contact: %d subscriptions written to a list it was never on", who, n)
			}
		}
		if n := count(`SELECT count(*) FROM events WHERE type = 'list.subscribed'`); n != subscribedBefore {
			t.Fatalf("%d list.subscribed events written for locked contacts", n-subscribedBefore)
		}
		// A no stays open to a locked record.
		sub, err := ls.Set(ctx, ids["stopped"], news.ID, lists.Unsubscribed, lists.SourceAPI, nil)
		if err != nil || sub.State != lists.Unsubscribed {
			t.Fatalf("unsubscribing the stopped contact: %v %+v", err, sub)
		}
		subs, err := lists.Subscriptions(ctx, db.Read, ids["stopped"])
		if err != nil || len(subs) != 1 || subs[0].State != lists.Unsubscribed {
			t.Fatalf("the stopped contact's subscriptions: %v %+v", err, subs)
		}
	})
}
