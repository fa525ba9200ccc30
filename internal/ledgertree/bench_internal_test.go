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
		// The stored tiles are the tree of the made-up leaves.
		p, err := s.Inclusion(ctx, n/3+1, 0)
		if err != nil {
			b.Fatal(err)
		}
		proof, err := DecodeHashes(p.Hashes)
		if err != nil {
			b.Fatal(err)
		}
		if err := tlog.CheckRecord(proof, n, c.Root, n/3, tlog.RecordHash([]byte(fmt.Sprint(n/3)))); err != nil {
			b.Fatalf("the stored tree: %v", err)
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
// would store the tree of n events: full tiles and, at the right edge,
// partial ones; and sets the tree's size.
func storeSyntheticTree(b *testing.B, db *store.DB, n int64) {
	ctx := context.Background()
	var tree compact
	var rows []storedTile
	flush := func() {
		if err := db.Write(ctx, func(tx *store.Tx) error {
			return tx.Gather(len(rows), func(i int) error {
				return tx.ExecLater(nil, `INSERT INTO ledger_tree_tiles (level, idx, hashes) VALUES ($1, $2, $3)`, rows[i].key.level, rows[i].key.n, rows[i].data)
			})
		}); err != nil {
			b.Fatal(err)
		}
		rows = rows[:0]
	}
	filling := map[int][]byte{} // the tile being filled, by level
	for i := range n {
		for level, h := range tree.add(tlog.RecordHash([]byte(fmt.Sprint(i)))) {
			if level%tileHeight != 0 {
				continue
			}
			l := level / tileHeight
			if filling[l] = append(filling[l], h[:]...); len(filling[l]) == tileWidth*tlog.HashSize {
				rows = append(rows, storedTile{tileKey{l, (i+1)>>level/tileWidth - 1}, filling[l]})
				filling[l] = nil
			}
		}
		if len(rows) >= 500 {
			flush()
		}
	}
	for l, data := range filling {
		if len(data) > 0 {
			rows = append(rows, storedTile{tileKey{l, n >> (tileHeight * l) / tileWidth}, data})
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
