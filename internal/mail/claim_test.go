package mail_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// countingTransport counts what it is handed, and runs during once, inside
// the first Send, as if something happened while the send was under way.
type countingTransport struct {
	mu     sync.Mutex
	sent   map[string]int
	during func()
}

func (s *countingTransport) Name() string { return "counting" }
func (s *countingTransport) Close() error { return nil }
func (s *countingTransport) Send(ctx context.Context, envs []*mail.Envelope) []error {
	s.mu.Lock()
	f := s.during
	s.during = nil
	s.mu.Unlock()
	if f != nil {
		f()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range envs {
		s.sent[e.OutboxID]++
	}
	return make([]error, len(envs))
}

// TestShutdownDuringSendRecordsWhatWasSent: the service is told to stop
// while a batch is going out; what was handed over is still recorded, so
// nothing goes out twice after the restart.
func TestShutdownDuringSendRecordsWhatWasSent(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		people := contact.NewService(db, consent.NewService(db))
		msg := enqueue(t, db, mail.Message{ContactID: addContact(t, people, "a@example.com", ""), Kind: mail.KindAdHoc, Subject: "hi", Text: "hi"})
		now := time.Now()
		clock := func() time.Time { return now }
		ctx, cancel := context.WithCancel(context.Background())
		tr := &countingTransport{sent: map[string]int{}, during: cancel}
		newDeliverer(db, tr, clock).RunDue(ctx)
		if status, _, _ := outboxRow(t, db, msg); status != mail.StatusSent {
			t.Fatalf("after the shutdown the message is %s", status)
		}
		now = now.Add(time.Hour)
		if _, err := newDeliverer(db, tr, clock).RunDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if tr.sent[msg] != 1 {
			t.Fatalf("sent %d times", tr.sent[msg])
		}
	})
}

// TestStaleClaimCannotOverwrite: once a claim's lease has run out and
// another deliverer has taken the message, the first one's outcome is not
// recorded over the second's.
func TestStaleClaimCannotOverwrite(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		people := contact.NewService(db, consent.NewService(db))
		msg := enqueue(t, db, mail.Message{ContactID: addContact(t, people, "a@example.com", ""), Kind: mail.KindAdHoc, Subject: "hi", Text: "hi"})
		now := time.Now()
		clock := func() time.Time { return now }
		failing := &failingTransport{}
		d1 := newDeliverer(db, failing, clock)
		tr := &countingTransport{sent: map[string]int{}}
		d2 := newDeliverer(db, tr, clock)
		failing.during = func() {
			now = now.Add(2 * time.Minute) // d1's lease runs out while it sends
			if _, err := d2.RunDue(context.Background()); err != nil {
				t.Error(err)
			}
		}
		d1.RunDue(context.Background())
		if status, _, _ := outboxRow(t, db, msg); status != mail.StatusSent {
			t.Fatalf("the stale deliverer's failure overwrote the other's success: %s", status)
		}
	})
}

// failingTransport fails every message, temporarily.
type failingTransport struct{ during func() }

func (f *failingTransport) Name() string { return "failing" }
func (f *failingTransport) Close() error { return nil }
func (f *failingTransport) Send(ctx context.Context, envs []*mail.Envelope) []error {
	if f.during != nil {
		f.during()
		f.during = nil
	}
	errs := make([]error, len(envs))
	for i := range errs {
		errs[i] = context.DeadlineExceeded
	}
	return errs
}
