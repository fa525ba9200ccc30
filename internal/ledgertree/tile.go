package ledgertree

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/consentry/consentry/internal/errs"
)

// Tile returns the data of tile t of the stored tree, as tlog.ReadTileData
// makes it and a tlog.TileReader returns it: the tile's t.W hashes,
// 32 bytes each, concatenated. Tiles are of height 8 (tlog.Tile.H), of
// the tree's hashes only (no tile of level -1, the events' data).
//
// A partial tile (t.W below 256) is the first t.W hashes of its tile, so
// it is served as long as the stored tree holds at least those: after
// the tree grew past it, the same hashes still make the tile of the
// older tree, which is what someone holding an older checkpoint asks for.
// The stored tree may be ahead of the latest checkpoint; its tiles are
// served all the same, as the one who reads them checks them against a
// checkpoint's root (tlog.TileHashReader). After an upgrade the tree is
// rebuilt from the events, and may then be behind the checkpoints kept:
// a tile the latest checkpoint's tree holds is caught up with first.
//
// The error, for a tile the tree does not hold (yet), or one of another
// height or of the events' data, is a not-found error on the field "tile"
// that says why; for a width or number no tile has, an invalid one.
func (s *Service) Tile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	switch {
	case t.H != tileHeight:
		return nil, tileNotFound("the tree is stored in tiles of height %d only", tileHeight)
	case t.L < 0:
		return nil, tileNotFound("the events themselves are not served as tiles, only the tree's hashes")
	case t.L >= maxLevel:
		return nil, tileNotFound("the tree has no tiles at level %d: its tiles are of levels 0 to %d", t.L, maxLevel-1)
	case t.W < 1 || t.W > tileWidth:
		return nil, errs.Invalid("tile", "a tile holds 1 to %d hashes", tileWidth)
	case t.N < 0:
		return nil, errs.Invalid("tile", "tiles are numbered from 0")
	}
	size, data, err := s.readTile(ctx, t)
	if err != nil {
		return nil, err
	}
	if !tileIn(t, size) {
		// The tree may have been rebuilt and be behind the checkpoints.
		c, err := s.Latest(ctx)
		switch {
		case errs.Is(err, errs.KindNotFound):
		case err != nil:
			return nil, err
		case c.Size > size && tileIn(t, c.Size):
			if err := s.cover(ctx, c.Size); err != nil {
				return nil, err
			}
			if size, data, err = s.readTile(ctx, t); err != nil {
				return nil, err
			}
		}
	}
	if !tileIn(t, size) {
		// t.N is the level's partial tile, or one beyond it.
		have := hashesAt(size, t.L)
		if held := have % tileWidth; t.N == have/tileWidth && held > 0 {
			return nil, tileNotFound("the tree has %d events, and tile %d at level %d holds %d hashes, not %d", size, t.N, t.L, held, t.W)
		}
		return nil, tileNotFound("the tree has %d events, and no tile %d at level %d", size, t.N, t.L)
	}
	if len(data) < t.W*tlog.HashSize {
		return nil, fmt.Errorf("ledgertree: tile %d/%d holds %d bytes, fewer than the tree of %d events has in it", t.L, t.N, len(data), size)
	}
	return data[:t.W*tlog.HashSize], nil
}

// readTile returns the tree's size and the stored data of tile t, in one
// read; nil data when no such tile is stored.
func (s *Service) readTile(ctx context.Context, t tlog.Tile) (int64, []byte, error) {
	var size int64
	var data []byte
	err := s.DB.ReadRow(ctx, `SELECT s.size, t.hashes FROM ledger_tree s
		LEFT JOIN ledger_tree_tiles t ON t.level = $1 AND t.idx = $2 WHERE s.id = 1`, t.L, t.N).Scan(&size, &data)
	if err != nil {
		return 0, nil, fmt.Errorf("ledgertree: read tile %d/%d: %w", t.L, t.N, err)
	}
	return size, data, nil
}

// maxLevel is the first level of tiles no tree has: one of 2^63 events
// at most reaches level 7.
const maxLevel = 63/tileHeight + 1

// hashesAt returns how many hashes the tree of size events has at the
// level of the tiles of level l (tree level l*tileHeight); none above the
// tree's top.
func hashesAt(size int64, l int) int64 {
	if l >= maxLevel {
		return 0
	}
	return size >> (tileHeight * l)
}

// tileIn reports whether the tree of size events holds all of tile t's
// hashes: its first t.W, in its tile.
func tileIn(t tlog.Tile, size int64) bool {
	full := hashesAt(size, t.L) / tileWidth // full tiles of the level
	switch {
	case t.N < full:
		return true
	case t.N > full:
		return false
	}
	return int64(t.W) <= hashesAt(size, t.L)%tileWidth
}

// tileNotFound is a not-found error on the field "tile" that says why.
func tileNotFound(format string, args ...any) *errs.Error {
	return &errs.Error{Kind: errs.KindNotFound, Code: "tile_not_found", Field: "tile", Message: fmt.Sprintf(format, args...)}
}
