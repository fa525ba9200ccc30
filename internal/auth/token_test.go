package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestTokenLastUsed: a token's last use is kept to the minute: the first
// request writes it, a request within the minute writes nothing, and one
// after it moves it on. The tokens list shows it, and a token never used
// has none.
func TestTokenLastUsed(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		tokens := &auth.Tokens{DB: db, Now: func() time.Time { return now }}
		secret, tok, err := tokens.Create(ctx, audit.Actor{Kind: "user"}, "crm", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := tokens.Create(ctx, audit.Actor{Kind: "user"}, "idle", nil); err != nil {
			t.Fatal(err)
		}
		lastUsed := func() map[string]*time.Time {
			t.Helper()
			list, err := tokens.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]*time.Time{}
			for _, k := range list {
				out[k.Name] = k.LastUsedAt
			}
			return out
		}
		if got := lastUsed(); got["crm"] != nil || got["idle"] != nil {
			t.Fatalf("before any use: %v", got)
		}
		use := func() {
			t.Helper()
			got, err := tokens.Authenticate(ctx, secret)
			if err != nil || got.ID != tok.ID {
				t.Fatalf("authenticate: %v %v", got, err)
			}
		}
		use()
		first := now
		now = now.Add(40 * time.Second)
		use()
		if got := lastUsed(); got["crm"] == nil || !got["crm"].Equal(first) || got["idle"] != nil {
			t.Fatalf("within the minute: %v, want %v", got["crm"], first)
		}
		now = now.Add(30 * time.Second)
		use()
		if got := lastUsed(); got["crm"] == nil || !got["crm"].Equal(now) {
			t.Fatalf("after the minute: %v, want %v", got["crm"], now)
		}
	})
}
