package campaign_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// contactID is the id contacttest.SeedReachable gives its i-th contact,
// whose address is the id at example.com.
func contactID(i int) string { return "c" + strconv.Itoa(i) }

// within waits for c, failing the test after a generous guard: the guard
// only fails a test whose condition never comes, it times nothing.
func within[T any](t testing.TB, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: still waiting after 30s", what)
		panic("unreachable")
	}
}

// TestOptOutsDoNotWaitForASlowMailServer: while the mail server holds a
// campaign message at DATA, a contact of the same batch opts out and a
// consent is withdrawn, and both complete; the opted-out contact's
// message does not begin. The contact whose message is being handed over
// opts out too: that change waits for their message only (other changes
// go on meanwhile) and completes once the server has answered, after it
// had the message. Nobody gets a message after their change was answered,
// and everyone else gets theirs.
func TestOptOutsDoNotWaitForASlowMailServer(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		const n = 6
		contacttest.SeedReachable(t, db, n)
		// One connection, so the messages go one after another; a step
		// may take as long as the test holds it.
		tr, err := mail.NewSMTP(f.smtp.URL()+"&timeout=2m", 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		f.sender.Transport = tr
		f.sender.Budget = time.Hour // the batch is not cut short while the server holds it

		var mu sync.Mutex
		received := map[string]time.Time{}
		held := make(chan string, 1)
		release := make(chan struct{})
		var once sync.Once
		t.Cleanup(func() { once.Do(func() { close(release) }) })
		f.smtp.OnData = func(to []string, at time.Time) {
			mu.Lock()
			first := len(received) == 0
			received[to[0]] = at
			mu.Unlock()
			if first {
				held <- to[0]
				<-release // the server has the message and does not answer yet
			}
		}
		c := f.startAll()
		sent := make(chan error, 1)
		go func() {
			_, err := f.sender.RunDue(ctx)
			sent <- err
		}()
		slow := within(t, held, "the first message")
		var others []string
		for i := 1; i <= n; i++ {
			if a := contactID(i); a+"@example.com" != slow {
				others = append(others, a)
			}
		}
		optOut := func(id string) <-chan error {
			done := make(chan error, 1)
			go func() {
				_, err := f.cs.SetOptIn(ctx, id, consent.OptInInput{Status: contactstate.OptOutContact, Channel: consent.ChannelContact,
					Actor: consent.Actor{Kind: consent.ActorContact, ID: id}, Evidence: consent.Evidence{Method: "api"}})
				done <- err
			}()
			return done
		}
		withdraw := func(id string) <-chan error {
			done := make(chan error, 1)
			go func() {
				_, err := f.cs.Record(ctx, id, consent.RecordInput{Purpose: "E-marketing", State: consent.StateWithdrawn, Source: "API",
					Actor: consent.Actor{Kind: consent.ActorContact, ID: id}, Evidence: consent.Evidence{Method: "api"}})
				done <- err
			}()
			return done
		}

		// While the server holds the message: another recipient opts out.
		if err := within(t, optOut(others[0]), "an opt-out while the mail server holds a message"); err != nil {
			t.Fatal(err)
		}
		// The held message's own recipient opts out: that waits for the
		// message, and a withdrawal of another recipient's consent does not
		// wait for either.
		slowID := slow[:len(slow)-len("@example.com")]
		slowDone := optOut(slowID)
		if err := within(t, withdraw(others[1]), "a withdrawal while an opt-out waits for its contact's message"); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-slowDone:
			t.Fatalf("the opt-out of %s was answered while the server held their message (%v)", slowID, err)
		default:
		}
		once.Do(func() { close(release) })
		if err := within(t, slowDone, "the opt-out of the held message's recipient"); err != nil {
			t.Fatal(err)
		}
		answered := time.Now()
		if err := within(t, sent, "the campaign"); err != nil {
			t.Fatal(err)
		}

		mu.Lock()
		defer mu.Unlock()
		if at := received[slow]; at.IsZero() || !at.Before(answered) {
			t.Fatalf("the held message reached the server at %v, its recipient's opt-out was answered at %v", at, answered)
		}
		for _, id := range others[:2] {
			if _, got := received[id+"@example.com"]; got {
				t.Fatalf("%s got the campaign after their change was answered", id)
			}
		}
		for _, id := range others[2:] {
			if _, got := received[id+"@example.com"]; !got {
				t.Fatalf("%s got nothing", id)
			}
		}
		p, err := f.svc.Progress(ctx, c.ID)
		if err != nil || p.Status != campaign.StatusSent || p.Recipients[campaign.RecipientSent] != n-2 || p.Recipients[campaign.RecipientSuppressed] != 2 {
			t.Fatalf("progress: %+v %v", p, err)
		}
	})
}
