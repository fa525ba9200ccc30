package app

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestHousekeepingForgetsStrangersOfRequestsByEmail: confirmations sent to
// addresses that are no contact's go once old and done with, request
// tokens once expired long ago, daily limits once their day is over; the
// rest stays.
func TestHousekeepingForgetsStrangersOfRequestsByEmail(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		now := time.Now()
		old, recent, dayAgo := store.Micros(now.Add(-40*24*time.Hour)), store.Micros(now.Add(-time.Hour)), store.Micros(now.Add(-25*time.Hour))
		seed(t, db, []seedRow{
			{`INSERT INTO outbox (id, kind, to_address, subject, text_body, status, run_at, created_at) VALUES
				('o1', 'request_confirmation', 'x@stranger.example', 's', 't', 'sent', 0, $1),
				('o2', 'request_confirmation', 'x@stranger.example', 's', 't', 'queued', 0, $1),
				('o3', 'request_confirmation', 'x@stranger.example', 's', 't', 'sent', 0, $2),
				('o4', 'operator', 'privacy@acme.example', 's', 't', 'sent', 0, $1)`, []any{old, recent}},
			{`INSERT INTO mailbox (id, outbox_id, to_address, from_address, subject, text_body, delivered_at) VALUES
				('m1', 'o1', 'x@stranger.example', 'b', 's', 't', $1)`, []any{recent}},
			{`INSERT INTO subject_requests (id, kind, channel, contact_ref, address, address_key, status, received_at, due_at, actor_kind, updated_at)
				VALUES ('r', 'erasure', 'email', 'ref', 'x@stranger.example', 'x@stranger.example', 'received', $1, $1, 'system', $1)`, []any{old}},
			{`INSERT INTO request_tokens (id, request_id, hash, expires_at, created_at) VALUES ('t1', 'r', 'h1', $1, $1), ('t2', 'r', 'h2', $2, $1)`,
				[]any{old, store.Micros(now.Add(time.Hour))}},
			{`INSERT INTO inbound_confirmations (address_hash, sent_at) VALUES ('a1', $1), ('a2', $2)`, []any{dayAgo, recent}},
		})
		if err := housekeeping(ctx, db, now); err != nil {
			t.Fatal(err)
		}
		var outbox, mailbox, tokens, limits string
		db.Read.QueryRow(`SELECT (SELECT string_agg(id, ',' ORDER BY id) FROM outbox), (SELECT count(*) FROM mailbox),
			(SELECT string_agg(id, ',' ORDER BY id) FROM request_tokens), (SELECT string_agg(address_hash, ',' ORDER BY address_hash) FROM inbound_confirmations)`).
			Scan(&outbox, &mailbox, &tokens, &limits)
		if outbox != "o2,o3,o4" || mailbox != "0" || tokens != "t2" || limits != "a2" {
			t.Fatalf("left outbox %s, mailbox %s, tokens %s, limits %s", outbox, mailbox, tokens, limits)
		}
	})
}
