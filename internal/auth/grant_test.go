package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestGrantClaimedOnce: a one-time grant gives what it carries once, to
// its user, for its subject, within its life; anyone else, another
// subject, a second claim, a made-up secret and a late claim get
// ErrNoGrant. The database holds neither the secret nor the payload.
func TestGrantClaimedOnce(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		grants := &auth.Grants{DB: db, Now: func() time.Time { return now }}
		secret, err := grants.Issue(ctx, "user-1", "reveal c1 national_id", "Customer called about invoice 77")
		if err != nil {
			t.Fatal(err)
		}
		var stored strings.Builder
		rows, err := db.Read.Query(`SELECT hash, sealed FROM one_time_grants`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var h, s string
			if err := rows.Scan(&h, &s); err != nil {
				t.Fatal(err)
			}
			stored.WriteString(h + s)
		}
		rows.Close()
		if got := stored.String(); strings.Contains(got, secret) || strings.Contains(got, "invoice") {
			t.Fatalf("the database holds a grant in the clear: %s", got)
		}
		noGrant := func(what, secret, user, subject string) {
			t.Helper()
			if v, err := grants.Claim(ctx, secret, user, subject); !errors.Is(err, auth.ErrNoGrant) {
				t.Fatalf("%s: %q %v, want ErrNoGrant", what, v, err)
			}
		}
		noGrant("another user", secret, "user-2", "reveal c1 national_id")
		noGrant("another subject", secret, "user-1", "reveal c2 national_id")
		noGrant("a made-up secret", strings.Repeat("A", 43), "user-1", "reveal c1 national_id")
		noGrant("not a secret", "x", "user-1", "reveal c1 national_id")
		if v, err := grants.Claim(ctx, secret, "user-1", "reveal c1 national_id"); err != nil || v != "Customer called about invoice 77" {
			t.Fatalf("claim: %q %v", v, err)
		}
		noGrant("a second claim", secret, "user-1", "reveal c1 national_id")

		late, err := grants.Issue(ctx, "user-1", "api token t1", "cst_secret")
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(auth.GrantLife)
		noGrant("a claim after its life", late, "user-1", "api token t1")
		// Expired grants go as the next one is made.
		if _, err := grants.Issue(ctx, "user-1", "api token t2", "cst_other"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.Read.QueryRow(`SELECT count(*) FROM one_time_grants`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d grants kept (%v), want the new one only", n, err)
		}
	})
}
