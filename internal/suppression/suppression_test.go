package suppression_test

import (
	"testing"

	"github.com/consentry/consentry/internal/suppression"
)

// TestHashIsPinned: the suppression entry's encoding, as docs/erasure.md
// gives it, checked against a value computed from that description alone
// (in Python); the address is compared trimmed and in lower case.
func TestHashIsPinned(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	const want = "e3c5a715a019a93c2f6bf3cff92c577d55e4c625a724ac09a0a1a6711d03c633"
	for _, address := range []string{"anna@example.com", "  Anna@Example.COM "} {
		if got := suppression.Hash(key, address); got != want {
			t.Errorf("Hash(%q) = %s, want %s", address, got, want)
		}
	}
}
