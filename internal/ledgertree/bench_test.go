package ledgertree_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// BenchmarkLedgerVerifyMillion times what `consentry ledger verify` does
// over a ledger of 1,000,000 events (VerifyWithChain): the chain's check
// (each event's hash, the replay against the contacts' state) and, at the
// same time, the tree's (rebuilt from the events and compared with every
// stored hash and checkpoint). Target: ≤ 10 s in all (total-s); chain-s
// is when the chain's check ended, and each check is also timed alone,
// outside the benchmark's time (chain-alone-s, tree-alone-s). cpu-s is
// the processor time the process spent in all (both checks, the garbage
// collector, the SQLite driver), which a busy machine inflates less than
// the time on the clock. CONSENTRY_BENCH_EVENTS changes the count, for profiling
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
					if _, err := ledger.Append(tx, &ledger.Event{RecordedAt: time.Now().UnixMicro(), Kind: ledger.KindContactDeleted,
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
		// As an installation's ledger is, written over time: in the
		// database file, not in SQLite's write-ahead log.
		if err := db.Checkpoint(ctx); err != nil {
			b.Fatal(err)
		}
		cs := consent.NewService(db)
		b.ResetTimer()
		for range b.N {
			start, cpu := time.Now(), cpuTime(b)
			var chain time.Duration
			rep, trep, err := tree.VerifyWithChain(ctx, func(ctx context.Context) (*ledger.Report, error) {
				defer func() { chain = time.Since(start) }()
				return cs.VerifyLedger(ctx)
			})
			total, cpu := time.Since(start), cpuTime(b)-cpu
			if err != nil || !rep.OK || rep.Events != int64(n) {
				b.Fatalf("chain: %+v %v", rep, err)
			}
			if !trep.OK() || trep.TreeSize != int64(n) {
				b.Fatalf("tree: %+v", trep)
			}
			// Each check alone, untimed, for where the time goes.
			b.StopTimer()
			start = time.Now()
			if _, err := cs.VerifyLedger(ctx); err != nil {
				b.Fatal(err)
			}
			chainAlone := time.Since(start)
			start = time.Now()
			if _, err := tree.Verify(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(chain.Seconds(), "chain-s")
			b.ReportMetric(total.Seconds(), "total-s")
			b.ReportMetric(cpu.Seconds(), "cpu-s")
			b.ReportMetric(chainAlone.Seconds(), "chain-alone-s")
			b.ReportMetric(time.Since(start).Seconds(), "tree-alone-s")
			b.StartTimer()
		}
	})
}

// cpuTime is the processor time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
