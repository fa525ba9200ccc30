package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webhook"
)

// waitFor waits, up to a bound, for cond to hold.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// secondHandle opens another connection pool to db's database, as
// another instance would (PostgreSQL); on SQLite it is db itself.
func secondHandle(t testing.TB, db *store.DB) *store.DB {
	if db.Dialect != store.Postgres {
		return db
	}
	other, err := store.Open(context.Background(), storetest.PostgresURL(), store.Options{Schema: db.Schema()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

// Two instances send together: each delivery goes once, and those about
// one contact in order, while some fail and are tried again.
func TestInstancesShareTheWorkWithoutSendingTwice(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		var mu sync.Mutex
		failedOnce := map[string]bool{}
		rc := newReceiver(t, func(r received, n int) int {
			mu.Lock()
			defer mu.Unlock()
			if n%7 == 3 && !failedOnce[r.Envelope.ID] {
				failedOnce[r.Envelope.ID] = true
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		})
		now := time.Now
		var workers []*webhook.Worker
		for _, h := range []*store.DB{db, secondHandle(t, db)} {
			svc := &webhook.Service{DB: h, Now: now, Policy: webhook.Policy{AllowHTTPLocalhost: true}}
			w := webhook.NewWorker(svc)
			w.Poll = 20 * time.Millisecond
			w.Backoff = func(int) time.Duration { return time.Millisecond } // tried again at the next look
			workers = append(workers, w)
		}
		if _, _, err := workers[0].Create(context.Background(), audit.Actor{Kind: "user"}, webhook.EndpointInput{URL: rc.URL}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Add(1)
			go func() { defer wg.Done(); w.Run(ctx) }()
		}
		const contacts, each = 20, 10
		var emitters sync.WaitGroup
		for c := 0; c < contacts; c++ {
			emitters.Add(1)
			go func() {
				defer emitters.Done()
				for i := 0; i < each; i++ {
					if err := db.Write(ctx, func(tx *store.Tx) error {
						return events.Emit(tx, events.ContactUpdated, fmt.Sprintf("c%02d", c), events.ContactUpdatedData{ContactID: fmt.Sprintf("c%02d", c), Fields: []string{strconv.Itoa(i)}}, now())
					}); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		emitters.Wait()
		waitFor(t, "every delivery made", func() bool { return len(delivered(rc)) >= contacts*each })
		cancel()
		wg.Wait()
		seen := map[string]int{}
		next := map[string]int{}
		for _, r := range rc.all() {
			if r.Status != http.StatusOK {
				continue
			}
			seen[r.Envelope.ID]++
			var data events.ContactUpdatedData
			json.Unmarshal(r.Envelope.Data, &data)
			n := -1
			if len(data.Fields) == 1 {
				n, _ = strconv.Atoi(data.Fields[0]) // the change's number, written there by the emitter
			}
			if n != next[data.ContactID] {
				t.Errorf("contact %s: change %d arrived when %d was next", data.ContactID, n, next[data.ContactID])
			}
			next[data.ContactID] = n + 1
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s delivered %d times", id, n)
			}
		}
		if len(seen) != contacts*each {
			t.Fatalf("%d distinct deliveries, want %d", len(seen), contacts*each)
		}
	})
}
