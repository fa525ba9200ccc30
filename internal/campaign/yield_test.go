package campaign_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// steppedTransport hands messages over one at a time, each only when the
// test says so, and records who got one.
type steppedTransport struct {
	step    chan struct{} // one receive per message handed over
	begun   chan string   // the recipient of each message begun
	asked   chan struct{} // the sender was asked to stop while a message was in flight
	mu      sync.Mutex
	handed  []string
	stopped int // messages not begun because the context ended
}

func (s *steppedTransport) Name() string { return "stepped" }
func (s *steppedTransport) Close() error { return nil }

func (s *steppedTransport) Send(ctx context.Context, envs []*mail.Envelope) []error {
	errs := make([]error, len(envs))
	for i, e := range envs {
		if err := ctx.Err(); err != nil {
			errs[i] = err
			s.mu.Lock()
			s.stopped++
			s.mu.Unlock()
			continue
		}
		s.begun <- e.To
		select {
		case <-s.step:
		case <-ctx.Done():
			select {
			case s.asked <- struct{}{}:
			default: // told already
			}
			<-s.step // a message begun is finished
		}
		s.mu.Lock()
		s.handed = append(s.handed, e.To)
		s.mu.Unlock()
	}
	return errs
}

// TestSenderLetsGoOfTheFenceForAWaitingChange: on PostgreSQL, a withdrawal that comes
// while a batch is being handed over waits for the message in flight
// only, not for the rest of the batch; the sender then reads the rest
// again, so the contact who withdrew gets nothing, and the others get
// their messages.
func TestSenderLetsGoOfTheFenceForAWaitingChange(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		if db.Dialect != store.Postgres {
			t.Skip("on SQLite the sender finishes its batch (see Sender.send)")
		}
		ctx := context.Background()
		f := newFixture(t, db)
		const n = 40
		contacttest.SeedReachable(t, db, n)
		tr := &steppedTransport{step: make(chan struct{}), begun: make(chan string), asked: make(chan struct{}, 1)}
		f.sender.Transport = tr
		// A budget the test cannot run out of: the sender stops beginning
		// messages only because the withdrawal waits.
		f.sender.Budget = time.Hour
		f.startAll()
		sent := make(chan error, 1)
		go func() {
			_, err := f.sender.RunDue(ctx)
			sent <- err
		}()

		// The first message is in flight, the fence held for its batch.
		first := <-tr.begun
		withdrawn := make(chan error, 1)
		last := "c" + strconv.Itoa(n)
		go func() {
			_, err := f.cs.Record(ctx, last, consent.RecordInput{Purpose: "E-marketing", State: consent.StateWithdrawn, Source: "API",
				Actor: consent.Actor{Kind: consent.ActorSystem}, Evidence: consent.Evidence{Method: "api"}})
			withdrawn <- err
		}()
		// The sender is asked to let go while the message is in flight;
		// the withdrawal commits once that message is handed over, and no
		// other message begins before it does.
		<-tr.asked
		tr.step <- struct{}{}
		var err error
		began := 0 // messages begun once the withdrawal had committed
	waiting:
		for {
			select {
			case err = <-withdrawn:
				break waiting
			case to := <-tr.begun:
				// Either channel may be ready first once the withdrawal
				// commits; a message may begin only after that.
				var state string
				if err := db.Read.QueryRow(`SELECT cc.state FROM consent_current cc JOIN purposes p ON p.id = cc.purpose_id
					WHERE cc.contact_id = $1 AND p.name_key = 'e-marketing'`, last).Scan(&state); err != nil {
					t.Fatal(err)
				}
				if state != consent.StateWithdrawn {
					t.Fatalf("a message to %s began while a withdrawal waited for the fence", to)
				}
				began++
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		tr.mu.Lock()
		handed := len(tr.handed)
		tr.mu.Unlock()
		if handed != 1 {
			t.Fatalf("%d messages handed over before the withdrawal committed, want only the one in flight (%s)", handed, first)
		}

		// The rest of the campaign goes on.
		for range began {
			tr.step <- struct{}{}
		}
		done := false
		for !done {
			select {
			case <-tr.begun:
				tr.step <- struct{}{}
			case err := <-sent:
				if err != nil {
					t.Fatal(err)
				}
				done = true
			}
		}
		got := map[string]int{}
		for _, to := range tr.handed {
			got[to]++
		}
		if got[last+"@example.com"] != 0 {
			t.Fatalf("%s withdrew before their message began, and got it", last)
		}
		if len(got) != n-1 || len(tr.handed) != n-1 {
			t.Fatalf("%d messages to %d addresses, want one each to %d", len(tr.handed), len(got), n-1)
		}
	})
}
