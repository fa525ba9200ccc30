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
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/singleflight"

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

	edgeMu     sync.Mutex
	edge       edge
	catchingUp singleflight.Group
	publishMu  sync.Mutex
	published  int64 // the size of the checkpoint last given to Publish
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
// The tree is stored as tiles (tlog.Tile, of height tileHeight): the
// events and the stored data it needs are read, and the new hashes and
// the tiles they change computed, before the write, through the read
// pool: the write, which the changes of the moment share (store.DB.Write
// groups them), then only stores a few tiles. Committed events and
// hashes never change, and a tile only grows, so what was computed holds
// as long as the tree's size is still the one it was computed from,
// which the write checks: when another instance extended the tree in
// between, this extension adds nothing and the tree's size is returned
// as it is now, so that no event is ever added twice.
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
	tiles, added, err := s.newTiles(ctx, size, batch)
	if err != nil || added == 0 {
		return size, false, err
	}
	var after int64 // set by the write, which may run more than once
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		now, err := s.Size(ctx, tx)
		if after = now; err != nil || now != size {
			return err
		}
		if err := tx.Gather(len(tiles), func(i int) error {
			return tx.ExecLater(store.Prefix("ledgertree: store tiles"), `INSERT INTO ledger_tree_tiles (level, idx, hashes) VALUES ($1, $2, $3)
				ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes`, tiles[i].L, tiles[i].N, tiles[i].data)
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
		s.keepEdge(size, after, tiles)
	}
	return after, after != size+added || added == int64(batch), nil
}

// tileHeight is the height of the tiles the tree is stored in: a tile
// holds up to 256 hashes of one level of the tree, 8 KB.
const tileHeight = 8

// tileWidth is how many hashes a full tile holds.
const tileWidth = 1 << tileHeight

// tileKey names a stored tile: its level (tlog.Tile.L) and number within
// the level (tlog.Tile.N).
type tileKey struct {
	level int
	n     int64
}

// tileData is a tile and its data, W hashes concatenated.
type tileData struct {
	tlog.Tile
	data []byte
}

// edge is the tree's right edge as last extended: the data of the
// partial tiles, the last of each level, of the tree of size events,
// which hold every hash that adding the next events reads. Kept between
// extensions, it spares reading them back; a tile not kept is read from
// the database.
type edge struct {
	size  int64
	tiles map[tileKey][]byte
}

// keepEdge keeps the right edge of the tree of size after events, which
// an extension from size wrote tiles to: the tiles it wrote and, for the
// levels it did not change, those kept before.
func (s *Service) keepEdge(size, after int64, wrote []tileData) {
	s.edgeMu.Lock()
	defer s.edgeMu.Unlock()
	have := map[tileKey][]byte{}
	if s.edge.size == size {
		maps.Copy(have, s.edge.tiles)
	}
	for _, t := range wrote {
		have[tileKey{t.L, t.N}] = t.data
	}
	e := edge{size: after, tiles: map[tileKey][]byte{}}
	for level := 0; after>>(tileHeight*level) > 0; level++ {
		hashes := after >> (tileHeight * level) // of the tiles' level of the tree
		if hashes%tileWidth == 0 {
			continue // no partial tile: the next events start a new one
		}
		k := tileKey{level, hashes / tileWidth}
		if d, ok := have[k]; ok && int64(len(d)) == hashes%tileWidth*tlog.HashSize {
			e.tiles[k] = d
		}
	}
	s.edge = e
}

// newTiles reads up to batch committed events after the first size and
// returns the tiles that adding them to a tree of size events changes,
// with their data, and how many events were added; none when there are
// no new events.
func (s *Service) newTiles(ctx context.Context, size int64, batch int) ([]tileData, int64, error) {
	leaves, err := store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (string, error) {
		var h string
		return h, row.Scan(&h)
	}, `SELECT hash FROM ledger_events WHERE seq > $1 ORDER BY seq LIMIT $2`, size, batch)
	if err != nil || len(leaves) == 0 {
		if err != nil {
			err = fmt.Errorf("ledgertree: read events: %w", err)
		}
		return nil, 0, err
	}
	r := s.hashes(ctx, s.DB.Read)
	s.edgeMu.Lock()
	if s.edge.size == size {
		maps.Copy(r.tiles, s.edge.tiles)
	}
	s.edgeMu.Unlock()
	for i, h := range leaves {
		n := size + int64(i)
		data, err := hex.DecodeString(h)
		if err != nil {
			return nil, 0, fmt.Errorf("ledgertree: event %d: its hash is not hex", n+1)
		}
		hashes, err := tlog.StoredHashes(n, data, r)
		if err != nil {
			return nil, 0, fmt.Errorf("ledgertree: hash event %d: %w", n+1, err)
		}
		at := tlog.StoredHashIndex(0, n)
		for j, sh := range hashes {
			r.known[at+int64(j)] = sh
		}
	}
	added := int64(len(leaves))
	var out []tileData
	for _, t := range tlog.NewTiles(tileHeight, size, size+added) {
		data, err := tlog.ReadTileData(t, r)
		if err != nil {
			return nil, 0, fmt.Errorf("ledgertree: tile %d/%d: %w", t.L, t.N, err)
		}
		out = append(out, tileData{t, data})
	}
	return out, added, nil
}

// CatchUp extends the tree until it covers every committed event, and
// returns its size. Callers at the same time share one catch-up: after an
// upgrade rebuilds the tree, the requests that need it caught up and the
// background step would otherwise each compute the same batches, of which
// all but one are thrown away.
func (s *Service) CatchUp(ctx context.Context) (int64, error) {
	for {
		v, err, _ := s.catchingUp.Do("", func() (any, error) { return s.catchUp(ctx) })
		if err != nil && ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			continue // the caller whose catch-up it was went away; this one goes on
		}
		size, _ := v.(int64)
		return size, err
	}
}

func (s *Service) catchUp(ctx context.Context) (int64, error) {
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
	return &txHashes{ctx: ctx, d: s.DB.Dialect, q: q, known: map[int64]tlog.Hash{}, tiles: map[tileKey][]byte{}}
}

// txHashes reads stored hashes from the tiles, read through q, keeping
// the tiles it read; known are hashes just computed, not stored yet.
type txHashes struct {
	ctx   context.Context
	d     store.Dialect
	q     store.Querier
	known map[int64]tlog.Hash
	tiles map[tileKey][]byte
}

// ReadHashes returns the hashes at indexes (tlog.StoredHashIndex), each
// read from the tile that holds it or computed from the tile's hashes
// below it (tlog.HashFromTile). The tiles not yet at hand are read in one
// query. An index no stored tile covers is an error.
func (r *txHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var missing map[int][]int64 // tile numbers to read, by level
	for _, i := range indexes {
		if _, ok := r.known[i]; ok {
			continue
		}
		t := tlog.TileForIndex(tileHeight, i)
		if len(r.tiles[tileKey{t.L, t.N}]) >= t.W*tlog.HashSize {
			continue
		}
		if missing == nil {
			missing = map[int][]int64{}
		}
		if ns := missing[t.L]; !slices.Contains(ns, t.N) {
			missing[t.L] = append(ns, t.N)
		}
	}
	if len(missing) > 0 {
		if err := r.readTiles(missing); err != nil {
			return nil, err
		}
	}
	for k, i := range indexes {
		if h, ok := r.known[i]; ok {
			out[k] = h
			continue
		}
		t := tlog.TileForIndex(tileHeight, i)
		data := r.tiles[tileKey{t.L, t.N}]
		if len(data) < t.W*tlog.HashSize {
			return nil, fmt.Errorf("ledgertree: hash %d is not stored", i)
		}
		h, err := tlog.HashFromTile(t, data[:t.W*tlog.HashSize], i)
		if err != nil {
			return nil, fmt.Errorf("ledgertree: hash %d: %w", i, err)
		}
		out[k] = h
	}
	return out, nil
}

// readTiles reads the tiles numbered ns at each level, in one query, and
// keeps them; a tile not stored is left out.
func (r *txHashes) readTiles(ns map[int][]int64) error {
	var parts []string
	var args []any
	for _, level := range slices.Sorted(maps.Keys(ns)) {
		cond, a := store.Among(r.d, len(args)+2, ns[level])
		parts = append(parts, fmt.Sprintf(`SELECT level, idx, hashes FROM ledger_tree_tiles WHERE level = $%d AND idx %s`, len(args)+1, cond))
		args = append(append(args, level), a...)
	}
	rows, err := r.q.QueryContext(r.ctx, strings.Join(parts, " UNION ALL "), args...)
	if err != nil {
		return fmt.Errorf("ledgertree: read tiles: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k tileKey
		var data []byte
		if err := rows.Scan(&k.level, &k.n, &data); err != nil {
			return fmt.Errorf("ledgertree: read tiles: %w", err)
		}
		if len(data)%tlog.HashSize != 0 || len(data) > tileWidth*tlog.HashSize {
			return fmt.Errorf("ledgertree: tile %d/%d is not a tile (%d bytes)", k.level, k.n, len(data))
		}
		r.tiles[k] = data
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledgertree: read tiles: %w", err)
	}
	return nil
}
