package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/webhook"
)

// TestWebhooksSurviveKill9 runs the built binary as a child process while
// it sends thousands of webhook deliveries to a receiver, and kills it
// with SIGKILL several times, starting it again each time. Every event
// must arrive, verified by the Standard Webhooks reference library; one
// may arrive more than once (with the same id), and those about one
// contact first arrive in order.
func TestWebhooksSurviveKill9(t *testing.T) {
	eachKillRun(t, "sends thousands of webhooks", webhookKillRun)
}

// hookArrivals counts the deliveries a receiver got, by webhook-id, and
// keeps the order in which each contact's events first arrived.
type hookArrivals struct {
	mu      sync.Mutex
	byID    map[string]int
	first   map[string][]int64 // per contact, the seq of each event at its first arrival
	bad     []string
	more    chan struct{}
	verify  *standardwebhooks.Webhook
	arrived int
}

func (a *hookArrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var env struct {
		ID   string `json:"id"`
		Data struct {
			Contact string `json:"contact_id"`
		} `json:"data"`
	}
	err := a.verify.Verify(body, r.Header)
	json.Unmarshal(body, &env)
	a.mu.Lock()
	if err != nil || env.ID != r.Header.Get("webhook-id") {
		a.bad = append(a.bad, fmt.Sprintf("%s: %v", body, err))
	}
	a.byID[env.ID]++
	a.arrived++
	if a.byID[env.ID] == 1 {
		seq, _ := strconv.ParseInt(strings.TrimPrefix(env.ID, "evt_"), 10, 64)
		a.first[env.Data.Contact] = append(a.first[env.Data.Contact], seq)
	}
	a.mu.Unlock()
	select {
	case a.more <- struct{}{}:
	default:
	}
}

func (a *hookArrivals) distinct() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.byID)
}

func webhookKillRun(t *testing.T, bin string, db *store.DB, env []string) {
	ctx := context.Background()
	const n, contacts = 4000, 40
	svc := &webhook.Service{DB: db, Now: time.Now, Policy: webhook.Policy{AllowHTTPLocalhost: true}}
	got := &hookArrivals{byID: map[string]int{}, first: map[string][]int64{}, more: make(chan struct{}, 1)}
	rc := httptest.NewServer(got)
	t.Cleanup(rc.Close)
	_, secret, err := svc.Create(ctx, audit.Actor{Kind: "user"}, webhook.EndpointInput{URL: rc.URL})
	if err != nil {
		t.Fatal(err)
	}
	if got.verify, err = standardwebhooks.NewWebhook(secret); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 200 {
		if err := db.Write(ctx, func(tx *store.Tx) error {
			for j := i; j < i+200; j++ {
				c := fmt.Sprintf("contact-%02d", j%contacts)
				if err := events.Emit(tx, events.ConsentGranted, c, events.ConsentData{ContactID: c}, time.Now()); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	// A short lease, so that what was in flight at a kill goes again
	// seconds after the restart, not minutes.
	env = append(env, "CONSENTRY_WEBHOOKS_ALLOW_HTTP_LOCALHOST=true", "CONSENTRY_WEBHOOKS_LEASE=3s", "CONSENTRY_LOG_LEVEL=warn")
	start := time.Now()
	child := startChild(t, bin, env)
	wait := func(want int) {
		stalled := time.Now().Add(2 * time.Minute)
		for got.distinct() < want {
			if time.Now().After(stalled) {
				t.Fatalf("%d of %d events arrived, waiting for %d; the service's goroutines:\n%s", got.distinct(), n, want, child.dump())
			}
			select {
			case <-got.more:
			case <-child.exited:
				t.Fatalf("serve exited with %v:\n%s", child.cmd.ProcessState, child.output())
			case <-time.After(100 * time.Millisecond): // look again
			}
		}
	}
	for _, share := range []float64{0.2, 0.5, 0.8} {
		wait(int(share * n))
		child.kill(t)
		t.Logf("killed after %d of %d events arrived", got.distinct(), n)
		child = startChild(t, bin, env)
	}
	wait(n)
	took := time.Since(start)
	child.stop(t)

	got.mu.Lock()
	defer got.mu.Unlock()
	for _, b := range got.bad {
		t.Errorf("a delivery does not verify: %s", b)
	}
	for c, seqs := range got.first {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] < seqs[i-1] {
				t.Errorf("%s: evt_%d first arrived after evt_%d", c, seqs[i], seqs[i-1])
			}
		}
	}
	status, err := store.CountBy(ctx, db.Read, `SELECT status, count(*) FROM webhook_deliveries GROUP BY status`)
	if err != nil {
		t.Fatal(err)
	}
	if status[webhook.StatusDelivered] != n || len(status) != 1 {
		t.Errorf("deliveries by status: %v", status)
	}
	t.Logf("%d events, 3 kills, %s: %d requests, %d repeats", n, took.Round(time.Millisecond), got.arrived, got.arrived-len(got.byID))
}
