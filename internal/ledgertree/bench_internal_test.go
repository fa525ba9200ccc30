package ledgertree

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/consentry/consentry/internal/signing"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// BenchmarkInclusionProof10M proves one event of a tree of 10,000,000
// events (CONSENTRY_BENCH_EVENTS to change it) against the latest
// checkpoint, as a receipt's proof is made: read the checkpoint, read the
// proof's hashes, return them. Target: ≤ 5 ms. The tree's hashes are
// stored directly (building them from ledger events would take hours);
// the proof reads only them.
//
//	go test ./internal/ledgertree -run XXX -bench InclusionProof10M -benchtime 2000x -timeout 60m
func BenchmarkInclusionProof10M(b *testing.B) {
	n := int64(10_000_000)
	if v := os.Getenv("CONSENTRY_BENCH_EVENTS"); v != "" {
		n, _ = strconv.ParseInt(v, 10, 64)
	}
	storetest.Each(b, func(t testing.TB, db *store.DB) {
		b := t.(*testing.B)
		ctx := context.Background()
		s := &Service{DB: db, Signing: &signing.Service{DB: db, Name: "bench.example/ledger"}}
		storeSyntheticTree(b, db, n)
		c, err := s.MakeCheckpoint(ctx)
		if err != nil || c.Size != n {
			b.Fatalf("checkpoint: %+v %v", c, err)
		}
		b.ResetTimer()
		for range b.N {
			seq := 1 + rand.Int64N(n)
			p, err := s.Inclusion(ctx, seq, 0)
			if err != nil {
				b.Fatal(err)
			}
			if p.TreeSize != n || len(p.Hashes) == 0 {
				b.Fatalf("proof of %d: %+v", seq, p)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/proof")
	})
}

// storeSyntheticTree stores the tree of n made-up leaves, as Extend
// would store the tree of n events, and sets the tree's size.
func storeSyntheticTree(b *testing.B, db *store.DB, n int64) {
	ctx := context.Background()
	var tree compact
	var rows [][]any
	flush := func() {
		if err := db.Write(ctx, func(tx *store.Tx) error {
			return tx.Gather(len(rows), func(i int) error {
				return tx.ExecLater(nil, `INSERT INTO ledger_tree_hashes (idx, hash) VALUES ($1, $2)`, rows[i]...)
			})
		}); err != nil {
			b.Fatal(err)
		}
		rows = rows[:0]
	}
	var idx int64
	for i := range n {
		for _, h := range tree.add(tlog.RecordHash([]byte(fmt.Sprint(i)))) {
			rows = append(rows, []any{idx, h[:]})
			idx++
		}
		if len(rows) >= 20_000 {
			flush()
		}
	}
	flush()
	if err := db.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`UPDATE ledger_tree SET size = $1 WHERE id = 1`, n)
		return err
	}); err != nil {
		b.Fatal(err)
	}
}
