package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

func verifyUpTo(t testing.TB, f *fixture, seq int64) *ledger.Position {
	t.Helper()
	pos, err := f.consent.VerifyEntry(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// TestVerifyUpTo: one position verifies when the chain up to it and its
// history row are as written; a change before it or in its row is found,
// and a change after it is not its concern.
func TestVerifyUpTo(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		f := setUp(t, db)
		tamper := tamperer(t, db)
		pos := verifyUpTo(t, f, 3)
		var hash string
		if err := db.Read.QueryRow(`SELECT hash FROM ledger_events WHERE seq = 3`).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if !pos.OK || pos.Events != 3 || pos.Event == nil || pos.Event.Seq != 3 || pos.Event.Hash != hash || pos.EvidenceErased {
			t.Fatalf("position 3 of an intact ledger: %+v %+v", pos, pos.Problem)
		}
		if pos := verifyUpTo(t, f, 99); pos.OK || pos.Problem.Code != ledger.ProblemSequence || pos.Event != nil {
			t.Fatalf("a position past the end: %+v", pos)
		}

		// A later event changed: not this position's concern (Verify
		// finds it); position 6 fails.
		tamper(`UPDATE ledger_events SET value = 'withdrawn' WHERE seq = 6`)
		if pos := verifyUpTo(t, f, 3); !pos.OK {
			t.Fatalf("a change after position 3 failed it: %+v", pos.Problem)
		}
		if pos := verifyUpTo(t, f, 6); pos.OK || pos.Problem.Code != ledger.ProblemHash || pos.Problem.Seq != 6 {
			t.Fatalf("position 6 changed: %+v", pos)
		}
		// An earlier event changed: position 3 no longer verifies; 1 does.
		tamper(`UPDATE ledger_events SET method = 'import' WHERE seq = 2`)
		if pos := verifyUpTo(t, f, 3); pos.OK || pos.Problem.Code != ledger.ProblemHash || pos.Problem.Seq != 2 {
			t.Fatalf("a change before position 3: %+v", pos)
		}
		if pos := verifyUpTo(t, f, 1); !pos.OK {
			t.Fatalf("position 1: %+v", pos.Problem)
		}
		// The row's evidence changed behind the ledger's back.
		tamper(`UPDATE consent_records SET user_agent = 'curl/8' WHERE ledger_seq = 1`)
		if pos := verifyUpTo(t, f, 1); pos.OK || pos.Problem.Code != ledger.ProblemEvidence {
			t.Fatalf("changed evidence at position 1: %+v", pos)
		}
		tamper(`DELETE FROM consent_records WHERE ledger_seq = 1`)
		if pos := verifyUpTo(t, f, 1); pos.OK || pos.Problem.Code != ledger.ProblemRowMissing {
			t.Fatalf("a missing row at position 1: %+v", pos)
		}
	})
}

// BenchmarkVerifyUpTo100k verifies the last of 100,000 events: the cost of
// a proof page for the newest consent record of a ledger that long.
//
//	go test ./internal/ledger -run XXX -bench VerifyUpTo100k -benchtime 5x
func BenchmarkVerifyUpTo100k(b *testing.B) {
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		const n = 100_000
		ctx := context.Background()
		f := setUp(b, db) // six events
		for done := int64(6); done < n-1; {
			if err := db.Write(ctx, func(tx *store.Tx) error {
				for i := 0; i < 5000 && done < n-1; i++ {
					done++
					e := &ledger.Event{RecordedAt: time.Now().UnixMicro(), Kind: ledger.KindConsent, ContactRef: fmt.Sprintf("%032x", done%1000),
						PurposeID: "01930000-0000-7000-8000-000000000002", Value: consent.StateGranted, LegalBasis: "consent",
						SourceID: "01930000-0000-7000-8001-000000000008", TextVersion: 1, ActorKind: "api_token", ActorID: "tok",
						Method: consent.MethodAPI, RecordID: fmt.Sprintf("r%d", done),
						Details: &ledger.Details{IP: "192.0.2.7", UserAgent: fixtureUA, TextLanguage: "en"}}
					if _, err := ledger.Append(tx, e); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := f.consent.Record(ctx, f.ids[0], consent.RecordInput{Purpose: "Sales and service", State: consent.StateGranted,
			Source: "API", TextLanguage: "en", Actor: actor, Evidence: consent.Evidence{Method: consent.MethodAPI, IP: "192.0.2.9"}}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			pos, err := f.consent.VerifyEntry(ctx, n)
			if err != nil {
				b.Fatal(err)
			}
			if !pos.OK || pos.Events != n {
				b.Fatalf("position %d: %+v %+v", n, pos, pos.Problem)
			}
		}
	})
}
