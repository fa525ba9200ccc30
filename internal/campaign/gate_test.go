package campaign_test

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/campaign"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contact/contacttest"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// deliveries records, per address, when the SMTP server had each message
// addressed to it.
type deliveries struct {
	mu sync.Mutex
	at map[string][]time.Time
}

func (f *fixture) deliveries() *deliveries {
	d := &deliveries{at: map[string][]time.Time{}}
	f.smtp.OnData = func(to []string, at time.Time) {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, a := range to {
			d.at[a] = append(d.at[a], at)
		}
	}
	return d
}

// twice returns the addresses that got more than one message.
func (d *deliveries) twice() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for a, ts := range d.at {
		if len(ts) > 1 {
			out = append(out, a)
		}
	}
	return out
}

// gateSize is how many recipients the gate-timing test sends to: 10,000
// always, and the 100,000 the gate is specified for when
// CONSENTRY_LONG=1 is set and -short is not (that run takes minutes per
// database, too long for every go test).
func gateSize() int {
	if !testing.Short() && os.Getenv("CONSENTRY_LONG") == "1" {
		return 100_000
	}
	return 10_000
}

// TestCampaignGateOrdersRevocations: while a campaign of many recipients
// is being sent, revocations commit through the real paths (a withdrawn
// consent, the contact's own opt-out) for random recipients. No message
// to a contact reaches the mail server after their revocation committed,
// and nobody gets a message twice.
func TestCampaignGateOrdersRevocations(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		n := gateSize()
		f := newFixture(t, db)
		contacttest.SeedReachable(t, db, n)
		got := f.deliveries()
		c := f.startAll()

		sent := make(chan error, 1)
		go func() {
			_, err := f.sender.RunDue(ctx)
			sent <- err
		}()

		// Revokers pick distinct random contacts until the sender is done.
		var mu sync.Mutex
		committed := map[string]time.Time{} // address -> commit time
		order := rand.Perm(n)
		var next int
		take := func() (int, bool) {
			mu.Lock()
			defer mu.Unlock()
			if next >= len(order) {
				return 0, false
			}
			next++
			return order[next-1] + 1, true
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		errc := make(chan error, 4)
		for w := range 4 {
			wg.Go(func() {
				for k := 0; ; k++ {
					select {
					case <-stop:
						return
					default:
					}
					i, ok := take()
					if !ok {
						return
					}
					id := "c" + strconv.Itoa(i)
					actor := consent.Actor{Kind: consent.ActorContact, ID: id}
					ev := consent.Evidence{Method: "api"}
					var err error
					if (w+k)%2 == 0 {
						_, err = f.cs.Record(ctx, id, consent.RecordInput{Purpose: "E-marketing", State: consent.StateWithdrawn, Source: "API",
							Actor: actor, Evidence: ev})
					} else {
						_, err = f.cs.SetOptIn(ctx, id, consent.OptInInput{Status: contactstate.OptOutContact, Channel: consent.ChannelContact,
							Actor: actor, Evidence: ev})
					}
					at := time.Now()
					if err != nil {
						errc <- err
						return
					}
					mu.Lock()
					committed[id+"@example.com"] = at
					mu.Unlock()
				}
			})
		}
		err := <-sent
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			t.Fatalf("revoking: %v", err)
		default:
		}

		p, err := f.svc.Progress(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != campaign.StatusSent {
			t.Fatalf("status %s: %+v", p.Status, p.Recipients)
		}
		if d := got.twice(); len(d) > 0 {
			t.Fatalf("%d addresses got two messages, %v among them", len(d), d[0])
		}
		late, during := 0, 0
		for addr, at := range committed {
			ts := got.at[addr]
			if len(ts) == 0 {
				continue
			}
			if !ts[0].Before(at) {
				late++
				if late <= 5 {
					t.Errorf("%s: message received at %s, after the revocation committed at %s", addr, ts[0].Format(time.RFC3339Nano), at.Format(time.RFC3339Nano))
				}
			}
			during++
		}
		if late > 0 {
			t.Fatalf("%d messages reached the server after their recipient's revocation committed", late)
		}
		if got := p.Recipients[campaign.RecipientSent] + p.Recipients[campaign.RecipientSuppressed] + p.Recipients[campaign.RecipientExcluded]; got != int64(n) {
			t.Fatalf("%d recipients accounted for of %d: %+v", got, n, p.Recipients)
		}
		if int(p.Recipients[campaign.RecipientSent]) != len(got.at) {
			t.Fatalf("%d recorded sent, the server has %d addresses", p.Recipients[campaign.RecipientSent], len(got.at))
		}
		t.Logf("%d recipients, %d revocations committed while sending: %d of them before their message was handed over (suppressed %d), %d after it was received",
			n, len(committed), len(committed)-during, p.Recipients[campaign.RecipientSuppressed], during)
	})
}
