package app_test

import (
	"context"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/webhook"
)

// TestServeDeliversWebhooks: the running service makes a delivery of a
// committed change and sends it, signed, to a receiver; and schedules the
// pruning of the delivery log.
func TestServeDeliversWebhooks(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		rc := newReceiver(t)
		e := startWithLocalWebhooks(t, db)
		_, secret, err := e.a.Webhooks.Create(context.Background(), audit.Actor{Kind: "user"}, webhook.EndpointInput{URL: rc.URL})
		if err != nil {
			t.Fatal(err)
		}
		e.api("POST", "/api/v1/contacts", `{"email":"hook@example.com"}`, 201, nil)
		waitFor(t, func() bool { n, _, _ := rc.Last(); return n > 0 })
		wh, _ := standardwebhooks.NewWebhook(secret)
		_, body, header := rc.Last()
		if err := wh.Verify(body, header); err != nil {
			t.Fatalf("the delivery does not verify: %v: %s", err, body)
		}
		waitFor(t, func() bool {
			return count(t, db, `SELECT count(*) FROM jobs WHERE kind = $1`, webhook.PruneJob) > 0
		})
	})
}
