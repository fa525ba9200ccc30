package campaign_test

import (
	"context"
	"github.com/consentry/consentry/internal/audit"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// handOverLog is a transport that takes every message at once and notes,
// on the test's clock, how many it had been handed by then.
type handOverLog struct {
	mu    sync.Mutex
	now   func() time.Time
	at    []time.Time // when the i-th message was handed over
	total int
}

func (h *handOverLog) Name() string { return "log" }
func (h *handOverLog) Close() error { return nil }
func (h *handOverLog) Send(_ context.Context, envs []*mail.Envelope) []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for range envs {
		h.at = append(h.at, h.now())
	}
	return make([]error, len(envs))
}

// TestCampaignRateCapsFromTheFirstMessage: with campaign_rate set, the
// messages handed to the mail server by any moment since sending started
// are at most what the rate allows by then, a tenth of a second's worth
// at once included, from the very first message. The clock is the
// campaign service's, which the sender's waits move; nothing sleeps.
func TestCampaignRateCapsFromTheFirstMessage(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		const n, rate = 120, 20 // a burst of 2
		contacttest.SeedReachable(t, db, n)
		if _, err := settings.Update(ctx, db, settings.Patch{CampaignsPatch: settings.CampaignsPatch{CampaignRate: ptr(rate)}}, audit.Actor{Kind: "user"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		clock := time.Now()
		now := func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return clock
		}
		f.svc.Now = now
		f.sender.Sleep = func(_ context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			clock = clock.Add(d)
			return nil
		}
		log := &handOverLog{now: now}
		f.sender.Transport = log
		start := now()
		c := f.startAll()
		f.run()

		if p, err := f.svc.Progress(ctx, c.ID); err != nil || p.Status != campaign.StatusSent || p.Recipients[campaign.RecipientSent] != n {
			t.Fatalf("progress: %+v %v", p, err)
		}
		if len(log.at) != n {
			t.Fatalf("%d messages handed over, want %d", len(log.at), n)
		}
		const burst = rate / 10
		for i, at := range log.at {
			allowed := burst + int(at.Sub(start).Seconds()*rate+1e-9)
			if i+1 > allowed {
				t.Fatalf("%d messages handed over %v after sending started, where %d a second allow %d", i+1, at.Sub(start), rate, allowed)
			}
		}
		if took := log.at[n-1].Sub(start); took < time.Duration(n-burst)*time.Second/rate {
			t.Fatalf("%d messages in %v at %d a second", n, took, rate)
		}
	})
}
