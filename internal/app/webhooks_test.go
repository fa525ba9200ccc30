package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webhook"
)

// TestServeDeliversWebhooks: the running service makes a delivery of a
// committed change and sends it, signed, to a receiver; and schedules the
// pruning of the delivery log.
func TestServeDeliversWebhooks(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		var mu sync.Mutex
		var bodies [][]byte
		var headers []http.Header
		rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			bodies, headers = append(bodies, body), append(headers, r.Header.Clone())
			mu.Unlock()
		}))
		t.Cleanup(rc.Close)
		e := startWithLocalWebhooks(t, db)
		_, secret, err := e.a.Webhooks.Create(context.Background(), webhook.EndpointInput{URL: rc.URL})
		if err != nil {
			t.Fatal(err)
		}
		e.api("POST", "/api/v1/contacts", `{"email":"hook@example.com"}`, 201, nil)
		waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(bodies) > 0 })
		wh, _ := standardwebhooks.NewWebhook(secret)
		mu.Lock()
		defer mu.Unlock()
		if err := wh.Verify(bodies[0], headers[0]); err != nil {
			t.Fatalf("the delivery does not verify: %v: %s", err, bodies[0])
		}
		waitFor(t, func() bool {
			return count(t, db, `SELECT count(*) FROM jobs WHERE kind = $1`, webhook.PruneJob) > 0
		})
	})
}
