package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestBodiesOverTheLimitAre413: every way the API reads a body refuses one
// over its limit with 413 and the usual error body, naming the limit, and
// writes nothing: a JSON body, one read whole for an Idempotency-Key, a
// workflow rule's definition and a message posted to the inbound route.
func TestBodiesOverTheLimitAre413(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		e := newEnv(t, db)
		secret, _, err := e.a.Tokens.Create(context.Background(), audit.Actor{Kind: "user"}, "limits", nil, auth.ScopeAutomation)
		if err != nil {
			t.Fatal(err)
		}
		inbound, _, err := e.a.Tokens.Create(context.Background(), audit.Actor{Kind: "user"}, "provider", nil, auth.ScopeInbound)
		if err != nil {
			t.Fatal(err)
		}
		before := e.state(t)
		for _, c := range []struct {
			name, path, contentType, token, body, code, limit, key string
		}{
			{"a JSON body", "/api/v1/contacts", "application/json", e.token, `{"email":"big@example.com","first_name":"` + strings.Repeat("a", 1<<20) + `"}`,
				"body_too_large", "1 MiB", ""},
			{"a body read for its Idempotency-Key", "/api/v1/double-opt-in", "application/json", e.token,
				`{"contact_ids":["` + strings.Repeat("a", 8<<20) + `"]}`, "body_too_large", "8 MiB", `"big"`},
			{"a workflow rule", "/api/v1/workflows", "application/json", secret, `{"name":"` + strings.Repeat("a", 256<<10) + `"}`,
				"body_too_large", "256 KiB", ""},
			{"an inbound message", "/api/v1/inbound-email", "message/rfc822", inbound, "From: a@example.org\r\n\r\n" + strings.Repeat("x", 1<<20),
				"message_too_large", "1 MiB", ""},
		} {
			r := e.send(t, "POST", c.path, c.contentType, c.token, c.body, c.key)
			if r.status != 413 || !strings.Contains(string(r.body), "larger than "+c.limit) {
				t.Errorf("%s: %d %.300s", c.name, r.status, r.body)
				continue
			}
			field := ""
			if c.code == "message_too_large" {
				field = "message"
			}
			checkError(t, r, c.code, field)
		}
		if after := e.state(t); after != before {
			t.Fatalf("a refused body wrote something:\nbefore %+v\nafter  %+v", before, after)
		}
	})
}
