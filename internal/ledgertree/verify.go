package ledgertree

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"

	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
)

// Report is the outcome of Verify.
type Report struct {
	TreeSize    int64 `json:"tree_size"`
	Hashes      int64 `json:"hashes" doc:"stored tree hashes compared"`
	Checkpoints int   `json:"checkpoints"`
	// Problem is the first thing found wrong; empty when all is well.
	Problem string `json:"problem,omitempty"`
}

// OK reports whether nothing was found wrong.
func (r *Report) OK() bool { return r.Problem == "" }

// Verify rebuilds the tree from the ledger's events, in memory and
// independently of what is stored, and compares: every hash the tiles
// hold, that no tile is missing, short or longer than the tree, and every
// checkpoint's root and signature (against every signing key the
// installation ever had). It reads one snapshot of the database, so that
// the tree growing meanwhile is no fault. The chain itself, that each
// event's hash covers its fields and the one before, is ledger.Verify's
// to check.
func (s *Service) Verify(ctx context.Context) (*Report, error) {
	var rep *Report
	err := s.DB.Snapshot(ctx, func(q store.Querier) (err error) {
		rep, err = s.verify(ctx, q)
		return err
	})
	return rep, err
}

// verifyChunk is how many level-0 tiles Verify reads at a time, before
// the events they cover.
const verifyChunk = 64

func (s *Service) verify(ctx context.Context, q store.Querier) (*Report, error) {
	size, err := s.Size(ctx, q)
	if err != nil {
		return nil, err
	}
	rep := &Report{TreeSize: size}
	checkpoints, err := store.QueryAll(ctx, q, scanCheckpoint, `SELECT `+checkpointColumns+` FROM ledger_checkpoints ORDER BY size`)
	if err != nil {
		return nil, err
	}
	rep.Checkpoints = len(checkpoints)
	keys, err := s.Signing.Public(ctx) // read after the checkpoints: every key that signed one
	if err != nil {
		return nil, err
	}
	var vkeys []string
	for _, k := range keys {
		vkeys = append(vkeys, k.VerifierKey())
	}
	roots := map[int64]tlog.Hash{}
	for _, c := range checkpoints {
		opened, err := OpenCheckpoint([]byte(c.Note), vkeys...)
		if err != nil {
			rep.Problem = fmt.Sprintf("checkpoint %d: %v", c.Size, err)
			return rep, nil
		}
		if opened.Size != c.Size || opened.Root != c.Root {
			rep.Problem = fmt.Sprintf("checkpoint %d: the signed note says size %d and another root", c.Size, opened.Size)
			return rep, nil
		}
		if c.Size > size {
			rep.Problem = fmt.Sprintf("checkpoint %d is beyond the tree (%d events)", c.Size, size)
			return rep, nil
		}
		roots[c.Size] = c.Root
	}

	// The tiles above level 0 are few (one hash in them for 256 events)
	// and read at once; those of level 0 a chunk at a time.
	read, err := store.QueryAll(ctx, q, scanTile, `SELECT level, idx, hashes FROM ledger_tree_tiles WHERE level > 0`)
	if err != nil {
		return nil, err
	}
	upper := map[tileKey][]byte{}
	for _, t := range read {
		if rep.Problem = tileProblem(size, t.key, t.data); rep.Problem != "" {
			return rep, nil
		}
		upper[t.key] = t.data
	}
	for level := 1; size>>(tileHeight*level) > 0; level++ {
		for n := int64(0); tileWidthAt(size, level, n) > 0; n++ {
			if _, ok := upper[tileKey{level, n}]; !ok {
				rep.Problem = fmt.Sprintf("the tree lacks tile %d/%d", level, n)
				return rep, nil
			}
		}
	}

	c := &treeCheck{rep: rep, roots: roots, upper: upper, lower: make([][]byte, verifyChunk), want: 1}
	for first := int64(0); first < size; first += verifyChunk * tileWidth {
		t0 := first / tileWidth
		read, err := store.QueryAll(ctx, q, scanTile, `SELECT level, idx, hashes FROM ledger_tree_tiles WHERE level = 0 AND idx >= $1 AND idx < $2`, t0, t0+verifyChunk)
		if err != nil {
			return nil, err
		}
		c.t0 = t0
		clear(c.lower)
		for _, t := range read {
			if rep.Problem = tileProblem(size, t.key, t.data); rep.Problem != "" {
				return rep, nil
			}
			c.lower[t.key.n-t0] = t.data
		}
		for n := t0; n < t0+verifyChunk && tileWidthAt(size, 0, n) > 0; n++ {
			if c.lower[n-t0] == nil {
				rep.Problem = fmt.Sprintf("the tree lacks tile 0/%d", n)
				return rep, nil
			}
		}
		if err := c.events(ctx, q, first, min(size, first+verifyChunk*tileWidth)); err != nil {
			return nil, err
		}
		if rep.Problem != "" {
			return rep, nil
		}
	}
	if c.want-1 != size {
		rep.Problem = fmt.Sprintf("the tree covers %d events, the ledger has %d", size, c.want-1)
		return rep, nil
	}
	var beyond int64
	switch err := q.QueryRowContext(ctx, `SELECT idx FROM ledger_tree_tiles WHERE level = 0 AND idx >= $1 ORDER BY idx LIMIT 1`,
		(size+tileWidth-1)/tileWidth).Scan(&beyond); {
	case err == nil:
		rep.Problem = fmt.Sprintf("tile 0/%d is beyond the tree (%d events)", beyond, size)
		return rep, nil
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("ledgertree: read tiles: %w", err)
	}
	var level int
	switch err := q.QueryRowContext(ctx, `SELECT level, idx FROM ledger_tree_tiles WHERE level < 0 OR idx < 0 LIMIT 1`).Scan(&level, &beyond); {
	case err == nil:
		rep.Problem = fmt.Sprintf("tile %d/%d is not a place in the tree", level, beyond)
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("ledgertree: read tiles: %w", err)
	}
	return rep, nil
}

// treeCheck is Verify's rebuilding of the tree, a chunk of events at a
// time, against the stored tiles.
type treeCheck struct {
	rep   *Report
	roots map[int64]tlog.Hash // the checkpoints' roots, by size
	upper map[tileKey][]byte  // the tiles above level 0
	lower [][]byte            // the chunk's tiles of level 0, from tile t0 on
	t0    int64
	tree  compact
	want  int64        // the next event's seq
	h     sql.RawBytes // reused: the driver's bytes are copied into it
}

// events adds the events after the first first, up to last, to the
// tree and compares every hash the tiles hold for them, and the root of
// every checkpoint made at their sizes. What is wrong goes in the
// report; the error is a failure to read.
func (c *treeCheck) events(ctx context.Context, q store.Querier, first, last int64) error {
	events, err := q.QueryContext(ctx, `SELECT seq, hash FROM ledger_events WHERE seq > $1 AND seq <= $2 ORDER BY seq`, first, last)
	if err != nil {
		return fmt.Errorf("ledgertree: read events: %w", err)
	}
	defer events.Close()
	var seq int64
	var leaf [tlog.HashSize]byte
	for events.Next() {
		if err := events.Scan(&seq, &c.h); err != nil {
			return fmt.Errorf("ledgertree: read events: %w", err)
		}
		if seq != c.want {
			c.rep.Problem = fmt.Sprintf("the ledger has no event %d", c.want)
			return nil
		}
		c.want++
		if len(c.h) != hex.EncodedLen(len(leaf)) {
			c.rep.Problem = fmt.Sprintf("event %d: its hash is not hex", seq)
			return nil
		}
		if _, err := hex.Decode(leaf[:], c.h); err != nil {
			c.rep.Problem = fmt.Sprintf("event %d: its hash is not hex", seq)
			return nil
		}
		for level, computed := range c.tree.add(tlog.RecordHash(leaf[:])) {
			if level%tileHeight != 0 {
				continue // not stored: computed from the tile below
			}
			n := seq>>level - 1 // the hash's number in its level
			k := tileKey{level / tileHeight, n / tileWidth}
			tile := c.upper[k]
			if k.level == 0 {
				tile = c.lower[k.n-c.t0]
			}
			at := n % tileWidth * tlog.HashSize
			if tlog.Hash(tile[at:at+tlog.HashSize]) != computed {
				c.rep.Problem = fmt.Sprintf("tile %d/%d: hash %d does not match event %d and those before it", k.level, k.n, n%tileWidth, seq)
				return nil
			}
			c.rep.Hashes++
		}
		if root, ok := c.roots[seq]; ok && root != c.tree.root() {
			c.rep.Problem = fmt.Sprintf("checkpoint %d: its root is not the root of the ledger's first %d events", seq, seq)
			return nil
		}
	}
	return events.Err()
}

// storedTile is a tile as stored: its key and its data.
type storedTile struct {
	key  tileKey
	data []byte
}

func scanTile(row store.Scanner) (storedTile, error) {
	var t storedTile
	if err := row.Scan(&t.key.level, &t.key.n, &t.data); err != nil {
		return t, fmt.Errorf("ledgertree: read tiles: %w", err)
	}
	return t, nil
}

// tileWidthAt is how many hashes tile n of level holds in the tree of
// size events: 256, but for the last of its level; none or less beyond.
func tileWidthAt(size int64, level int, n int64) int64 {
	return min(tileWidth, size>>(tileHeight*level)-n*tileWidth)
}

// tileProblem says what is wrong with data as tile k of the tree of size
// events; "" when it is as long as it should be.
func tileProblem(size int64, k tileKey, data []byte) string {
	w := tileWidthAt(size, k.level, k.n)
	switch {
	case w <= 0:
		return fmt.Sprintf("tile %d/%d is beyond the tree (%d events)", k.level, k.n, size)
	case int64(len(data)) < w*tlog.HashSize:
		return fmt.Sprintf("tile %d/%d lacks hashes: %d bytes, where its %d hashes take %d", k.level, k.n, len(data), w, w*tlog.HashSize)
	case int64(len(data)) > w*tlog.HashSize:
		return fmt.Sprintf("tile %d/%d holds more than the tree: %d bytes, where its %d hashes take %d", k.level, k.n, len(data), w, w*tlog.HashSize)
	}
	return ""
}

// compact is a Merkle tree kept as the roots of its complete subtrees,
// largest first: enough to extend it and to know its root, in memory
// that grows with the logarithm of its size.
type compact struct {
	levels []int
	hashes []tlog.Hash
	out    []tlog.Hash // add's result, reused
}

// add appends a leaf and returns the hashes tlog stores for it, in its
// order: the leaf, then each subtree the leaf completes. The slice is
// valid until the next add.
func (c *compact) add(leaf tlog.Hash) []tlog.Hash {
	out := append(c.out[:0], leaf)
	h, level := leaf, 0
	for n := len(c.levels); n > 0 && c.levels[n-1] == level; n = len(c.levels) {
		h = tlog.NodeHash(c.hashes[n-1], h)
		c.levels, c.hashes = c.levels[:n-1], c.hashes[:n-1]
		level++
		out = append(out, h)
	}
	c.levels, c.hashes = append(c.levels, level), append(c.hashes, h)
	c.out = out
	return out
}

// root is the tree's root hash (RFC 6962), the zero hash when empty.
func (c *compact) root() tlog.Hash {
	if len(c.hashes) == 0 {
		return tlog.Hash{}
	}
	h := c.hashes[len(c.hashes)-1]
	for i := len(c.hashes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(c.hashes[i], h)
	}
	return h
}

// VerifyWithChain is what `consentry ledger verify` checks: it catches the
// tree up with the ledger, then runs chain (the chain's check,
// ledger.Verify through the service that owns the state it replays to)
// and Verify at the same time. Each reads the database on its own, read
// only, so on two cores the tree's check adds little to the chain's. The
// tree's check covers the events committed when it starts, all of which
// the chain's check, starting after the catching up, covers too. It
// returns both reports, or the first error (the other check is then
// cancelled).
func (s *Service) VerifyWithChain(ctx context.Context, chain func(context.Context) (*ledger.Report, error)) (*ledger.Report, *Report, error) {
	if _, err := s.CatchUp(ctx); err != nil {
		return nil, nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	var crep *ledger.Report
	var trep *Report
	g.Go(func() (err error) {
		crep, err = chain(gctx)
		return err
	})
	g.Go(func() (err error) {
		trep, err = s.Verify(gctx)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return crep, trep, nil
}
