// Package ledgertree keeps a Merkle tree over the consent ledger, in the
// style of RFC 6962 and Certificate Transparency, and signed checkpoints of
// it, so that the ledger can be checked by anyone, offline, without
// trusting the database it lives in.
//
// Leaf n of the tree is tlog.RecordHash of the chain hash of ledger event
// n+1 (ledger.ComputeHash), which covers every field of the event and,
// through the previous hash, all of the ledger before it. A checkpoint is
// the tree's size and root hash as a signed note (golang.org/x/mod/sumdb
// /note) by the installation's signing key. An inclusion proof shows that
// an event is in the tree a checkpoint names; a consistency proof, that a
// later checkpoint's tree extends an earlier one's: the ledger only grew.
// golang.org/x/mod/sumdb/tlog does the hashing and the proofs.
//
// The tree is extended after events commit, in batches (Extend, run by
// Run), so that appending to the ledger costs no more than before; it
// holds no personal data, and erasure leaves it as it is.
package ledgertree

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/signing"
	"github.com/consentry/consentry/internal/store"
)

// Service extends the tree, makes checkpoints and answers proofs.
type Service struct {
	DB      *store.DB
	Signing *signing.Service
	Log     *slog.Logger
	Now     func() time.Time
	// Batch is how many events one extending transaction adds; 0: 2000.
	Batch int
	// Every is how often Run makes a checkpoint when the tree has grown;
	// 0: 5 minutes.
	Every time.Duration
	// Gap is the least time between two of Run's extensions: appends
	// come in bursts, each waking Run, and one extension per burst adds
	// a write per group commit, where one every Gap adds a few a second
	// that each take a batch. 0: 250 ms, so the tree trails the ledger
	// by at most about that.
	Gap time.Duration
	// Publish, when set, is given every new checkpoint once it is stored,
	// to keep a copy outside the database (a file, a URL).
	Publish func(ctx context.Context, c *Checkpoint) error

	edgeMu sync.Mutex
	edge   edge
}

func (s *Service) now() time.Time { return store.Now(s.clock) }

func (s *Service) clock() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Size returns how many events the tree covers.
func (s *Service) Size(ctx context.Context, q store.Querier) (int64, error) {
	var n int64
	if err := q.QueryRowContext(ctx, `SELECT size FROM ledger_tree WHERE id = 1`).Scan(&n); err != nil {
		return 0, fmt.Errorf("ledgertree: read size: %w", err)
	}
	return n, nil
}

// Extend adds up to Batch committed events to the tree in one write, and
// returns the tree's size after it.
//
// The events and the stored hashes it needs are read, and the new hashes
// computed, before the write, through the read pool: the write, which
// the changes of the moment share (store.DB.Write groups them), then only
// inserts. Committed events and hashes never change, so what was computed
// holds as long as the tree's size is still the one it was computed
// from, which the write checks: when another instance extended the tree
// in between, this extension adds nothing and the tree's size is
// returned as it is now, so that no event is ever added twice.
func (s *Service) Extend(ctx context.Context) (int64, error) {
	size, _, err := s.extend(ctx)
	return size, err
}

// extend is Extend, and also reports whether there may be more to add: a
// full batch was added, or another instance moved the tree.
func (s *Service) extend(ctx context.Context) (int64, bool, error) {
	batch := s.Batch
	if batch <= 0 {
		batch = 2000
	}
	var size int64
	if err := s.DB.ReadRow(ctx, `SELECT size FROM ledger_tree WHERE id = 1`).Scan(&size); err != nil {
		return 0, false, fmt.Errorf("ledgertree: read size: %w", err)
	}
	rows, r, err := s.newHashes(ctx, size, batch)
	if err != nil || len(rows) == 0 {
		return size, false, err
	}
	added := rows[len(rows)-1].leaves
	var after int64 // set by the write, which may run more than once
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		now, err := s.Size(ctx, tx)
		if after = now; err != nil || now != size {
			return err
		}
		if err := tx.Gather(len(rows), func(i int) error {
			return tx.ExecLater(store.Prefix("ledgertree: store hashes"), `INSERT INTO ledger_tree_hashes (idx, hash) VALUES ($1, $2)`, rows[i].idx, rows[i].hash[:])
		}); err != nil {
			return err
		}
		after = size + added
		_, err = tx.Exec(`UPDATE ledger_tree SET size = $1 WHERE id = 1`, after)
		return err
	})
	if err != nil {
		return 0, false, err
	}
	if after == size+added {
		s.keepEdge(after, r.known)
	}
	return after, after != size+added || added == int64(batch), nil
}

// edge is the tree's right edge as last extended: the stored hashes, by
// index, of the complete subtrees a tree of size events is made of, those
// that adding the next events reads. Kept between extensions, it spares
// reading them back; a hash not kept is read from the database.
type edge struct {
	size   int64
	hashes map[int64]tlog.Hash
}

// keepEdge keeps, of known, the hashes of the right edge of the tree of
// size events.
func (s *Service) keepEdge(size int64, known map[int64]tlog.Hash) {
	e := edge{size: size, hashes: map[int64]tlog.Hash{}}
	var start int64
	for level := 62; level >= 0; level-- {
		if size&(1<<level) == 0 {
			continue
		}
		idx := tlog.StoredHashIndex(level, start>>level)
		if h, ok := known[idx]; ok {
			e.hashes[idx] = h
		}
		start += 1 << level
	}
	s.edgeMu.Lock()
	s.edge = e
	s.edgeMu.Unlock()
}

// storedHash is a hash to store at index idx; leaves is how many events
// the tree covers once it and those before it are stored.
type storedHash struct {
	idx    int64
	hash   tlog.Hash
	leaves int64
}

// newHashes reads up to batch committed events after the first size and
// returns the hashes that adding them to a tree of size events stores,
// in order; none when there are no new events.
func (s *Service) newHashes(ctx context.Context, size int64, batch int) ([]storedHash, *txHashes, error) {
	leaves, err := store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (string, error) {
		var h string
		return h, row.Scan(&h)
	}, `SELECT hash FROM ledger_events WHERE seq > $1 ORDER BY seq LIMIT $2`, size, batch)
	if err != nil {
		return nil, nil, fmt.Errorf("ledgertree: read events: %w", err)
	}
	r := s.hashes(ctx, s.DB.Read)
	s.edgeMu.Lock()
	if s.edge.size == size {
		maps.Copy(r.known, s.edge.hashes)
	}
	s.edgeMu.Unlock()
	var out []storedHash
	for i, h := range leaves {
		n := size + int64(i)
		data, err := hex.DecodeString(h)
		if err != nil {
			return nil, nil, fmt.Errorf("ledgertree: event %d: its hash is not hex", n+1)
		}
		hashes, err := tlog.StoredHashes(n, data, r)
		if err != nil {
			return nil, nil, fmt.Errorf("ledgertree: hash event %d: %w", n+1, err)
		}
		at := tlog.StoredHashIndex(0, n)
		for j, sh := range hashes {
			r.known[at+int64(j)] = sh
			out = append(out, storedHash{idx: at + int64(j), hash: sh, leaves: int64(i) + 1})
		}
	}
	return out, r, nil
}

// CatchUp extends the tree until it covers every committed event, and
// returns its size.
func (s *Service) CatchUp(ctx context.Context) (int64, error) {
	for {
		size, more, err := s.extend(ctx)
		if err != nil || !more {
			return size, err
		}
	}
}

// Run keeps the tree current, woken after every ledger append and at
// least every poll, and makes a checkpoint every Every when the tree grew,
// until ctx ends.
func (s *Service) Run(ctx context.Context, poll time.Duration) {
	gap := s.Gap
	if gap <= 0 {
		gap = 250 * time.Millisecond
	}
	var last time.Time
	jobs.Loop(ctx, s.DB.Subscribe(ledger.AppendedTopic), poll, s.log(), "ledgertree: keep the tree", func(ctx context.Context) (int, error) {
		if wait := gap - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return 0, ctx.Err()
			case <-t.C:
			}
		}
		last = time.Now()
		return s.step(ctx)
	})
}

// step extends the tree over every committed event and makes a
// checkpoint if one is due; it returns the tree's size.
func (s *Service) step(ctx context.Context) (int, error) {
	size, err := s.CatchUp(ctx)
	if err != nil {
		return 0, err
	}
	_, err = s.checkpointIfDue(ctx)
	return int(size), err
}

// hashes returns a tlog.HashReader over the stored tree, read through q.
func (s *Service) hashes(ctx context.Context, q store.Querier) *txHashes {
	return &txHashes{ctx: ctx, d: s.DB.Dialect, q: q, known: map[int64]tlog.Hash{}}
}

// txHashes reads stored hashes through q, keeping those already read or
// just computed.
type txHashes struct {
	ctx   context.Context
	d     store.Dialect
	q     store.Querier
	known map[int64]tlog.Hash
}

func (r *txHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var missing []int64
	for _, i := range indexes {
		if _, ok := r.known[i]; !ok {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		cond, args := store.Among(r.d, 1, missing)
		rows, err := r.q.QueryContext(r.ctx, `SELECT idx, hash FROM ledger_tree_hashes WHERE idx `+cond, args...)
		if err != nil {
			return nil, fmt.Errorf("ledgertree: read hashes: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var i int64
			var h []byte
			if err := rows.Scan(&i, &h); err != nil {
				return nil, fmt.Errorf("ledgertree: read hashes: %w", err)
			}
			if len(h) != tlog.HashSize {
				return nil, fmt.Errorf("ledgertree: stored hash %d is not a hash", i)
			}
			r.known[i] = tlog.Hash(h)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	for k, i := range indexes {
		h, ok := r.known[i]
		if !ok {
			return nil, fmt.Errorf("ledgertree: hash %d is not stored", i)
		}
		out[k] = h
	}
	return out, nil
}
