package ledgertree

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"

	"github.com/consentry/consentry/internal/ledger"
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
// independently of what is stored, and compares: every stored hash, and
// every checkpoint's root and signature (against every signing key the
// installation ever had). The chain itself, that each event's hash covers
// its fields and the one before, is ledger.Verify's to check.
func (s *Service) Verify(ctx context.Context) (*Report, error) {
	size, err := s.Size(ctx, s.DB.Read)
	if err != nil {
		return nil, err
	}
	rep := &Report{TreeSize: size}
	checkpoints, err := s.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	rep.Checkpoints = len(checkpoints)
	keys, err := s.Signing.Public(ctx)
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

	events, err := s.DB.Read.QueryContext(ctx, `SELECT seq, hash FROM ledger_events WHERE seq <= $1 ORDER BY seq`, size)
	if err != nil {
		return nil, fmt.Errorf("ledgertree: read events: %w", err)
	}
	defer events.Close()
	stored, err := s.DB.Read.QueryContext(ctx, `SELECT idx, hash FROM ledger_tree_hashes ORDER BY idx`)
	if err != nil {
		return nil, fmt.Errorf("ledgertree: read hashes: %w", err)
	}
	defer stored.Close()
	var tree compact
	var want int64 = 1
	var seq int64
	var h, got sql.RawBytes // reused: the drivers' bytes are copied into them
	var leaf [tlog.HashSize]byte
	for events.Next() {
		if err := events.Scan(&seq, &h); err != nil {
			return nil, fmt.Errorf("ledgertree: read events: %w", err)
		}
		if seq != want {
			rep.Problem = fmt.Sprintf("the ledger has no event %d", want)
			return rep, nil
		}
		want++
		if len(h) != hex.EncodedLen(len(leaf)) {
			rep.Problem = fmt.Sprintf("event %d: its hash is not hex", seq)
			return rep, nil
		}
		if _, err := hex.Decode(leaf[:], h); err != nil {
			rep.Problem = fmt.Sprintf("event %d: its hash is not hex", seq)
			return rep, nil
		}
		for _, computed := range tree.add(tlog.RecordHash(leaf[:])) {
			idx := rep.Hashes
			if !stored.Next() {
				rep.Problem = fmt.Sprintf("the tree lacks hash %d (event %d)", idx, seq)
				return rep, stored.Err()
			}
			var at int64
			if err := stored.Scan(&at, &got); err != nil {
				return nil, fmt.Errorf("ledgertree: read hashes: %w", err)
			}
			if at != idx || len(got) != tlog.HashSize || tlog.Hash(got) != computed {
				rep.Problem = fmt.Sprintf("tree hash %d does not match event %d and those before it", idx, seq)
				return rep, nil
			}
			rep.Hashes++
		}
		if root, ok := roots[seq]; ok && root != tree.root() {
			rep.Problem = fmt.Sprintf("checkpoint %d: its root is not the root of the ledger's first %d events", seq, seq)
			return rep, nil
		}
	}
	if err := events.Err(); err != nil {
		return nil, err
	}
	if want-1 != size {
		rep.Problem = fmt.Sprintf("the tree covers %d events, the ledger has %d", size, want-1)
	}
	return rep, nil
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
