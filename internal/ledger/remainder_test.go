package ledger_test

import (
	"testing"

	"github.com/consentry/consentry/internal/ledger"
)

// TestRemainderCommitmentIsPinned: the encoding docs/ledger.md gives for
// the contact_erased commitment, checked against a value computed from
// that description alone (in Python), so that it cannot change by
// accident; the order of rows does not matter, and no rows commit to zeros.
func TestRemainderCommitmentIsPinned(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	rows := []ledger.ErasedRow{{Kind: ledger.KindConsent, RecordID: "r1", TextLanguage: "sv"}, {Kind: ledger.KindOptIn, RecordID: "o1"}}
	const want = "bc8cfc5c0c32c91ce2abe362f68779ac84501185d9a4c3e9e7d85ebc0991b2f2"
	if got := ledger.CommitRemainder(key, rows); got != want {
		t.Fatalf("commitment %s, want %s", got, want)
	}
	if got := ledger.CommitRemainder(key, []ledger.ErasedRow{rows[1], rows[0]}); got != want {
		t.Fatalf("the order of rows changed the commitment: %s", got)
	}
	if got := ledger.CommitRemainder(key, nil); got != "0000000000000000000000000000000000000000000000000000000000000000" {
		t.Fatalf("no rows: %s", got)
	}
}
