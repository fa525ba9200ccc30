package campaign

import (
	"context"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/store/storetest"
)

// TestBounceRecipient: a Return-Path maps back to its recipient row in
// any case and whatever comes before the +; an address this installation
// did not make does not.
func TestBounceRecipient(t *testing.T) {
	db := storetest.OpenSQLite(t)
	ctx := context.Background()
	l := &Links{DB: db, BaseURL: "https://consent.example"}
	key, err := l.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rp := returnPath("bounces@acme.example", 12, 3456, bounceTag(key, 3456))
	if !strings.HasPrefix(rp, "bounces+c12-3456-") || len(rp[:strings.IndexByte(rp, '@')]) > 64 {
		t.Fatalf("Return-Path %q", rp)
	}
	tag := rp[len("bounces+c12-3456-"):strings.IndexByte(rp, '@')]
	for _, c := range []struct {
		addr string
		want int64
	}{
		{rp, 3456},
		{strings.ToUpper(rp), 3456},
		{"news+c12-3456-" + tag + "@other.example", 3456},
		{"bounces+c12-3457-" + tag + "@acme.example", 0},
		{"bounces+c12-3456-" + tag[1:] + "@acme.example", 0},
		{"bounces+c12-3456@acme.example", 0},
		{"bounces+cx-3456-" + tag + "@acme.example", 0},
		{"bounces+c12--3456-" + tag + "@acme.example", 0},
		{"bounces@acme.example", 0},
		{"bounces+c12-3456-" + tag, 0},
		{"", 0},
	} {
		id, ok, err := l.BounceRecipient(ctx, c.addr)
		if err != nil || id != c.want || ok != (c.want != 0) {
			t.Errorf("%q: %d %v %v, want %d", c.addr, id, ok, err, c.want)
		}
	}
}
