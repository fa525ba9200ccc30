package ledgertree_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// BenchmarkLedgerVerifyMillion times what `consentry ledger verify` does
// over a ledger of 1,000,000 events: the chain's check (each event's hash,
// the replay against the contacts' state) and the tree's (rebuilt from
// the events and compared with every stored hash and checkpoint). Target:
// ≤ 10 s in all. CONSENTRY_BENCH_EVENTS changes the count, for profiling
// at a smaller size.
//
//	go test ./internal/ledgertree -run XXX -bench LedgerVerifyMillion -benchtime 1x -timeout 30m
func BenchmarkLedgerVerifyMillion(b *testing.B) {
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		n := 1_000_000
		if v := os.Getenv("CONSENTRY_BENCH_EVENTS"); v != "" {
			n, _ = strconv.Atoi(v)
		}
		ctx := context.Background()
		for done := 0; done < n; {
			if err := db.Write(ctx, func(tx *store.Tx) error {
				for i := 0; i < 10_000 && done < n; i++ {
					done++
					if _, err := ledger.Append(tx, &ledger.Event{RecordedAt: time.Now(), Kind: ledger.KindContactDeleted,
						ContactRef: fmt.Sprintf("%032x", done)}); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		tree := newTree(db)
		tree.Batch = 20_000
		if _, err := tree.MakeCheckpoint(ctx); err != nil {
			b.Fatal(err)
		}
		cs := consent.NewService(db)
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			rep, err := cs.VerifyLedger(ctx)
			if err != nil || !rep.OK || rep.Events != int64(n) {
				b.Fatalf("chain: %+v %v", rep, err)
			}
			chain := time.Since(start)
			trep, err := tree.Verify(ctx)
			if err != nil || !trep.OK() || trep.TreeSize != int64(n) {
				b.Fatalf("tree: %+v %v", trep, err)
			}
			b.ReportMetric(chain.Seconds(), "chain-s")
			b.ReportMetric(time.Since(start).Seconds()-chain.Seconds(), "tree-s")
			b.ReportMetric(time.Since(start).Seconds(), "total-s")
		}
	})
}
