package ledgertree_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// memoryTree is the tree of the first n events, computed in memory from
// the events alone with tlog, apart from what the service stores.
func memoryTree(t testing.TB, db *store.DB, n int64) tlog.HashReader {
	t.Helper()
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < 0 || x >= int64(len(stored)) {
				return nil, fmt.Errorf("hash %d is not in the tree", x)
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	for i := range n {
		leaf := leaf(t, db, i+1)
		hs, err := tlog.StoredHashesForRecordHash(i, leaf, r)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}
	return r
}

// TestTiles: every tile of the stored tree, and every shorter start of
// one, is the tile tlog makes of the tree computed from the events; a
// tile the tree does not hold is not found, saying why. After an upgrade
// rebuilt the tree, a tile the latest checkpoint needs is caught up with
// first.
func TestTiles(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		tree := newTree(db)
		appendEvents(t, db, 600)
		if _, err := tree.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		mem := memoryTree(t, db, 600)
		check := func(tile tlog.Tile) {
			t.Helper()
			want, err := tlog.ReadTileData(tile, mem)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tree.Tile(ctx, tile)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("tile %s: %d bytes, %v; want the %d of the tree of the events", tile.Path(), len(got), err, len(want))
			}
		}
		tiles := tlog.NewTiles(8, 0, 600)
		if len(tiles) != 4 { // level 0: 0, 1 and 2.p/88; level 1: 0.p/2
			t.Fatalf("tiles %v", tiles)
		}
		for _, tile := range tiles {
			check(tile)
			for _, w := range []int{1, tile.W - 1, tile.W / 2} {
				if w > 0 {
					short := tile
					short.W = w
					check(short)
				}
			}
		}
		for _, tile := range []tlog.Tile{{H: 8, L: 0, N: 2, W: 89}, {H: 8, L: 0, N: 2, W: 256}, {H: 8, L: 0, N: 3, W: 1}, {H: 8, L: 1, N: 0, W: 3},
			{H: 8, L: 2, N: 0, W: 1}, {H: 8, L: 9, N: 0, W: 1}, {H: 4, L: 0, N: 0, W: 16}, {H: 8, L: -1, N: 0, W: 256}} {
			if _, err := tree.Tile(ctx, tile); !errs.Is(err, errs.KindNotFound) || errs.As(err).Field != "tile" {
				t.Errorf("tile %+v: %v, want not found, on the field tile", tile, err)
			}
		}
		for _, tile := range []tlog.Tile{{H: 8, L: 0, N: -1, W: 1}, {H: 8, L: 0, N: 0, W: 0}, {H: 8, L: 0, N: 0, W: 257}} {
			if _, err := tree.Tile(ctx, tile); !errs.Is(err, errs.KindInvalid) {
				t.Errorf("tile %+v: %v, want invalid", tile, err)
			}
		}

		// The upgrade to tiles starts the tree again; the checkpoint of
		// 600 is kept.
		if _, err := tree.MakeCheckpoint(ctx); err != nil {
			t.Fatal(err)
		}
		appendEvents(t, db, 50)
		if err := db.Write(ctx, func(tx *store.Tx) error {
			if _, err := tx.Exec(`DELETE FROM ledger_tree_tiles`); err != nil {
				return err
			}
			_, err := tx.Exec(`UPDATE ledger_tree SET size = 0 WHERE id = 1`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		tree = newTree(db)
		// Beyond every checkpoint, a tile not stored is not found: asking
		// for it does not extend the tree.
		if _, err := tree.Tile(ctx, tlog.Tile{H: 8, L: 0, N: 2, W: 100}); !errs.Is(err, errs.KindNotFound) {
			t.Fatalf("a tile beyond the checkpoints, not stored: %v, want not found", err)
		}
		if size, err := tree.Size(ctx, db.Read); err != nil || size != 0 {
			t.Fatalf("the tree covers %d events after a tile beyond the checkpoints was asked for, want 0 (%v)", size, err)
		}
		check(tlog.Tile{H: 8, L: 0, N: 2, W: 88})
		if size, err := tree.Size(ctx, db.Read); err != nil || size != 650 {
			t.Fatalf("the tree covers %d events after a tile of the checkpoint was asked for, want 650 (%v)", size, err)
		}
	})
}
