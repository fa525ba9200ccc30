package ledgertree_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/ledger/ledgertest"
	"github.com/consentry/consentry/internal/ledgertree"
	"github.com/consentry/consentry/internal/signing"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// appendEvents appends n events, in writes of up to 7.
func appendEvents(t testing.TB, db *store.DB, n int) { t.Helper(); ledgertest.Append(t, db, n, 7) }

func newTree(db *store.DB) *ledgertree.Service {
	return &ledgertree.Service{DB: db, Signing: &signing.Service{DB: db, Name: "ledger.example.org/ledger"}, Batch: 64}
}

// leaf is the leaf of event seq, read straight from the ledger.
func leaf(t testing.TB, db *store.DB, seq int64) tlog.Hash {
	t.Helper()
	var h string
	if err := db.Read.QueryRowContext(context.Background(), `SELECT hash FROM ledger_events WHERE seq = $1`, seq).Scan(&h); err != nil {
		t.Fatal(err)
	}
	data, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return tlog.RecordHash(data)
}

// verifier is the installation's public key as an outsider holds it.
func verifier(t testing.TB, tree *ledgertree.Service) note.Verifiers {
	t.Helper()
	keys, err := tree.Signing.Public(context.Background())
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	v, err := note.NewVerifier(keys[0].VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	return note.VerifierList(v)
}

// openedRoot opens a signed checkpoint with only the note package and
// reads its size and root as the checkpoint format has them.
func openedRoot(t testing.TB, signed string, vs note.Verifiers) (int64, tlog.Hash) {
	t.Helper()
	n, err := note.Open([]byte(signed), vs)
	if err != nil {
		t.Fatalf("the checkpoint does not open: %v", err)
	}
	var origin, root string
	var size int64
	if _, err := fmt.Sscanf(n.Text, "%s\n%d\n%s\n", &origin, &size, &root); err != nil {
		t.Fatalf("checkpoint text %q: %v", n.Text, err)
	}
	h, err := base64.StdEncoding.DecodeString(root)
	if err != nil || len(h) != tlog.HashSize {
		t.Fatalf("root %q", root)
	}
	return size, tlog.Hash(h)
}

// signed makes a checkpoint and opens it with only the note package and
// the installation's public key, as an outsider holds it; it returns the
// checkpoint, its size and its root.
func signed(t testing.TB, tree *ledgertree.Service) (*ledgertree.Checkpoint, int64, tlog.Hash) {
	t.Helper()
	c, err := tree.MakeCheckpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	size, root := openedRoot(t, c.Note, verifier(t, tree))
	return c, size, root
}

func hashes(t testing.TB, in []string) []tlog.Hash {
	t.Helper()
	out, err := ledgertree.DecodeHashes(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestProofsCheckWithTlogAlone grows the ledger, keeps the tree, signs
// checkpoints, and checks every inclusion and consistency proof the way
// an outsider would: with tlog, note and the public key, nothing of this
// project's code. Verify agrees with the stored tree.
func TestProofsCheckWithTlogAlone(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		tree := newTree(db)
		appendEvents(t, db, 300)
		first, size, root := signed(t, tree)
		vs := verifier(t, tree)
		if size != 300 {
			t.Fatalf("the first checkpoint covers %d events, want 300", size)
		}
		// Stored as tlog's tiles of height 8: of level 0, a full one and
		// one of 44 hashes; of level 1, one of 1.
		stored := storedTiles(t, db)
		want := map[[2]int64]int{}
		for _, tile := range tlog.NewTiles(8, 0, 300) {
			want[[2]int64{int64(tile.L), tile.N}] = tile.W * tlog.HashSize
		}
		if len(stored) != 3 || len(want) != 3 {
			t.Fatalf("stored tiles %v, want %v", len(stored), want)
		}
		for k, w := range want {
			if len(stored[k]) != w {
				t.Fatalf("tile %v holds %d bytes, want %d", k, len(stored[k]), w)
			}
		}
		for _, seq := range []int64{1, 2, 64, 65, 199, 300} {
			p, err := tree.Inclusion(ctx, seq, 0)
			if err != nil {
				t.Fatal(err)
			}
			if p.TreeSize != 300 || p.Checkpoint != first.Note {
				t.Fatalf("event %d proved against %d", seq, p.TreeSize)
			}
			if err := tlog.CheckRecord(hashes(t, p.Hashes), size, root, seq-1, leaf(t, db, seq)); err != nil {
				t.Errorf("event %d: %v", seq, err)
			}
			// The proof of one event does not prove another.
			other := seq%300 + 1
			if tlog.CheckRecord(hashes(t, p.Hashes), size, root, seq-1, leaf(t, db, other)) == nil {
				t.Errorf("the proof of event %d also proves event %d", seq, other)
			}
		}

		appendEvents(t, db, 123)
		// An event beyond the latest checkpoint gets a new one on demand.
		p, err := tree.Inclusion(ctx, 423, 0)
		if err != nil {
			t.Fatal(err)
		}
		size2, root2 := openedRoot(t, p.Checkpoint, vs)
		if size2 != 423 {
			t.Fatalf("the checkpoint made on demand covers %d", size2)
		}
		if err := tlog.CheckRecord(hashes(t, p.Hashes), size2, root2, 422, leaf(t, db, 423)); err != nil {
			t.Error(err)
		}
		c, err := tree.Consistency(ctx, 300, 0)
		if err != nil {
			t.Fatal(err)
		}
		if c.To != 423 || c.Checkpoint != p.Checkpoint {
			t.Fatalf("consistency to %d", c.To)
		}
		if err := tlog.CheckTree(hashes(t, c.Hashes), size2, root2, size, root); err != nil {
			t.Errorf("the newer checkpoint does not extend the older: %v", err)
		}
		// An old proof still checks against its own checkpoint.
		old, err := tree.Inclusion(ctx, 5, 300)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(hashes(t, old.Hashes), size, root, 4, leaf(t, db, 5)); err != nil {
			t.Error(err)
		}

		rep, err := tree.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.TreeSize != 423 || rep.Checkpoints != 2 || rep.Hashes != 423+1 {
			t.Fatalf("verify: %+v", rep)
		}

		for _, bad := range []struct {
			seq, at int64
			field   string
		}{{0, 0, "seq"}, {5, 299, "at"}, {424, 300, "at"}} {
			if _, err := tree.Inclusion(ctx, bad.seq, bad.at); errs.As(err) == nil || errs.As(err).Field != bad.field {
				t.Errorf("Inclusion(%d, %d): %v, want an error on %s", bad.seq, bad.at, err, bad.field)
			}
		}
		if _, err := tree.Inclusion(ctx, 10_000, 0); !errs.Is(err, errs.KindNotFound) {
			t.Errorf("an event that does not exist: %v", err)
		}
		for _, bad := range [][2]int64{{0, 10}, {11, 10}, {1, 424}} {
			if _, err := tree.Consistency(ctx, bad[0], bad[1]); errs.As(err) == nil {
				t.Errorf("Consistency(%d, %d): %v", bad[0], bad[1], err)
			}
		}
	})
}

// TestTamperingIsFound: an event changed after it was added, a hash in
// a stored tile changed, a tile cut short, made longer, removed or added,
// or a checkpoint signed by another key, and Verify names it; a ledger
// forked (rewritten from some event on) signs a checkpoint no consistency
// proof can tie to the one an outsider kept.
func TestTamperingIsFound(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		tree := newTree(db)
		const events = 300 // tiles 0/0 (full), 0/1 (44 hashes) and 1/0 (1)
		appendEvents(t, db, events)
		kept, keptSize, keptRoot := signed(t, tree)
		exec := func(q string, args ...any) {
			t.Helper()
			if err := db.Write(ctx, func(tx *store.Tx) error { _, err := tx.Exec(q, args...); return err }); err != nil {
				t.Fatal(err)
			}
		}
		check := func(what, problem string) {
			t.Helper()
			rep, err := tree.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("%s went unnoticed", what)
			}
			if !strings.Contains(rep.Problem, problem) {
				t.Errorf("%s: the problem named is %q, want one about %q", what, rep.Problem, problem)
			}
		}
		setTile := func(level, idx int64, data []byte) {
			t.Helper()
			exec(`UPDATE ledger_tree_tiles SET hashes = $1 WHERE level = $2 AND idx = $3`, data, level, idx)
		}

		var h string
		if err := db.Read.QueryRowContext(ctx, `SELECT hash FROM ledger_events WHERE seq = 17`).Scan(&h); err != nil {
			t.Fatal(err)
		}
		exec(`UPDATE ledger_events SET hash = $1 WHERE seq = 17`, "00"+h[2:])
		check("an event's hash changed", "event 17")
		exec(`UPDATE ledger_events SET hash = $1 WHERE seq = 17`, h)

		tiles := storedTiles(t, db)
		for _, k := range [][2]int64{{0, 0}, {0, 1}, {1, 0}} {
			data := tiles[k]
			at := (len(data)/tlog.HashSize - 1) * tlog.HashSize // the tile's last hash
			changed := append([]byte(nil), data...)
			changed[at+3] ^= 1
			setTile(k[0], k[1], changed)
			check(fmt.Sprintf("a hash in tile %d/%d changed", k[0], k[1]), fmt.Sprintf("tile %d/%d", k[0], k[1]))
			setTile(k[0], k[1], data)
		}
		setTile(0, 1, tiles[[2]int64{0, 1}][:43*tlog.HashSize])
		check("a tile cut short", "tile 0/1 lacks hashes")
		setTile(0, 1, append(append([]byte(nil), tiles[[2]int64{0, 1}]...), make([]byte, tlog.HashSize)...))
		check("a tile longer than the tree", "tile 0/1 holds more than the tree")
		setTile(0, 1, tiles[[2]int64{0, 1}])
		exec(`DELETE FROM ledger_tree_tiles WHERE level = 0 AND idx = 0`)
		check("a tile removed", "lacks tile 0/0")
		exec(`INSERT INTO ledger_tree_tiles (level, idx, hashes) VALUES (0, 0, $1)`, tiles[[2]int64{0, 0}])
		for _, k := range [][2]int64{{0, 2}, {1, 1}, {2, 0}} {
			exec(`INSERT INTO ledger_tree_tiles (level, idx, hashes) VALUES ($1, $2, $3)`, k[0], k[1], make([]byte, tlog.HashSize))
			check("a tile beyond the tree", fmt.Sprintf("tile %d/%d is beyond the tree", k[0], k[1]))
			exec(`DELETE FROM ledger_tree_tiles WHERE level = $1 AND idx = $2`, k[0], k[1])
		}
		for _, k := range [][2]int64{{0, -1}, {1, -1}, {-1, 0}} {
			exec(`INSERT INTO ledger_tree_tiles (level, idx, hashes) VALUES ($1, $2, $3)`, k[0], k[1], make([]byte, 256*tlog.HashSize))
			check("a tile at no place in the tree", fmt.Sprintf("tile %d/%d is not a place in the tree", k[0], k[1]))
			exec(`DELETE FROM ledger_tree_tiles WHERE level = $1 AND idx = $2`, k[0], k[1])
		}

		// A forger with the database but not the key signs with a key of
		// their own: the checkpoint no longer checks.
		skey, _, err := note.GenerateKey(nil, "ledger.example.org/ledger")
		if err != nil {
			t.Fatal(err)
		}
		signer, err := note.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		forged, err := note.Sign(&note.Note{Text: ledgertree.FormatCheckpoint("ledger.example.org/ledger", events, keptRoot)}, signer)
		if err != nil {
			t.Fatal(err)
		}
		exec(`UPDATE ledger_checkpoints SET note = $1 WHERE size = $2`, string(forged), events)
		check("a checkpoint signed by another key", fmt.Sprintf("checkpoint %d", events))
		exec(`UPDATE ledger_checkpoints SET note = $1 WHERE size = $2`, kept.Note, events)
		if rep, err := tree.Verify(ctx); err != nil || !rep.OK() || rep.Hashes != events+1 {
			t.Fatalf("after putting everything back: %+v %v", rep, err)
		}

		// The fork: the operator rewrites the ledger from event 21 on (a
		// consent that was withdrawn made to look granted), cuts the tree
		// back to 20 events, extends it over the new ones and signs a new
		// checkpoint with the real key.
		exec(`DELETE FROM ledger_events WHERE seq > 20`)
		cutTree(t, db, 20)
		exec(`DELETE FROM ledger_checkpoints`)
		var seq int64
		var head string
		if err := db.Read.QueryRowContext(ctx, `SELECT seq, hash FROM ledger_events WHERE seq = 20`).Scan(&seq, &head); err != nil {
			t.Fatal(err)
		}
		exec(`UPDATE ledger_head SET seq = $1, hash = $2 WHERE id = 1`, seq, head)
		appendEvents(t, db, events)
		_, forkSize, forkRoot := signed(t, tree) // the real key signed it
		if rep, err := tree.Verify(ctx); err != nil || !rep.OK() || rep.TreeSize != events+20 {
			t.Fatalf("the forked tree, as stored, is the tree of the forked ledger: %+v %v", rep, err)
		}
		proof, err := tree.Consistency(ctx, keptSize, forkSize)
		if err != nil {
			t.Fatal(err)
		}
		if tlog.CheckTree(hashes(t, proof.Hashes), forkSize, forkRoot, keptSize, keptRoot) == nil {
			t.Fatal("the forked ledger proved consistent with the checkpoint kept before the fork")
		}
	})
}

// TestUpgradeRebuildsTheTree: the upgrade to tiles empties the tree
// (size 0, no tiles) and keeps the checkpoints. Proofs asked for before
// the background step has caught up catch the tree up first, and check
// against the checkpoints signed before the upgrade; no checkpoint is
// made smaller than the latest.
func TestUpgradeRebuildsTheTree(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		before := newTree(db)
		appendEvents(t, db, 300)
		_, size1, root1 := signed(t, before)
		appendEvents(t, db, 250)
		c2, size2, root2 := signed(t, before)
		upgrade := func() *ledgertree.Service {
			t.Helper()
			if err := db.Write(ctx, func(tx *store.Tx) error {
				if _, err := tx.Exec(`DELETE FROM ledger_tree_tiles`); err != nil {
					return err
				}
				_, err := tx.Exec(`UPDATE ledger_tree SET size = 0 WHERE id = 1`)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			after := newTree(db)
			after.Batch = 37 // batches that end within tiles
			return after
		}
		caughtUp := func() {
			t.Helper()
			if size, err := before.Size(ctx, db.Read); err != nil || size != 550 {
				t.Fatalf("the tree covers %d events after catching up, want 550 (%v)", size, err)
			}
		}

		p, err := upgrade().Inclusion(ctx, 17, size1)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(hashes(t, p.Hashes), size1, root1, 16, leaf(t, db, 17)); err != nil {
			t.Errorf("event 17 against the checkpoint of %d from before: %v", size1, err)
		}
		caughtUp()

		p, err = upgrade().Inclusion(ctx, 420, 0)
		if err != nil {
			t.Fatal(err)
		}
		if p.TreeSize != size2 || p.Checkpoint != c2.Note {
			t.Fatalf("event 420 proved against %d, want the latest checkpoint, of %d", p.TreeSize, size2)
		}
		if err := tlog.CheckRecord(hashes(t, p.Hashes), size2, root2, 419, leaf(t, db, 420)); err != nil {
			t.Errorf("event 420 against the checkpoint of %d from before: %v", size2, err)
		}

		c, err := upgrade().Consistency(ctx, size1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckTree(hashes(t, c.Hashes), size2, root2, size1, root1); err != nil {
			t.Errorf("the checkpoints from before, after the upgrade: %v", err)
		}

		made, err := upgrade().MakeCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if made.Note != c2.Note {
			t.Errorf("a checkpoint made after the upgrade covers %d, want the latest from before, of %d", made.Size, size2)
		}

		// The service that ran before the upgrade, its right edge kept,
		// catches up too, and the rebuilt tree is the tree of the events.
		upgrade()
		if _, err := before.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		caughtUp()
		if rep, err := before.Verify(ctx); err != nil || !rep.OK() || rep.Hashes != 550+2 {
			t.Fatalf("the rebuilt tree: %+v %v", rep, err)
		}

		// A ledger that lost events since the latest checkpoint gets no
		// smaller checkpoint.
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`DELETE FROM ledger_events WHERE seq > 500`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if made, err := upgrade().MakeCheckpoint(ctx); err == nil {
			t.Fatalf("a ledger of 500 events, its latest checkpoint of %d: made %+v", size2, made)
		}
		if latest, err := before.Latest(ctx); err != nil || latest.Size != size2 {
			t.Fatalf("latest checkpoint %+v %v", latest, err)
		}
	})
}

// storedTiles returns the stored tiles' data by level and number.
func storedTiles(t testing.TB, db *store.DB) map[[2]int64][]byte {
	t.Helper()
	rows, err := db.Read.QueryContext(context.Background(), `SELECT level, idx, hashes FROM ledger_tree_tiles`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[[2]int64][]byte{}
	for rows.Next() {
		var k [2]int64
		var data []byte
		if err := rows.Scan(&k[0], &k[1], &data); err != nil {
			t.Fatal(err)
		}
		out[k] = data
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// cutTree cuts the stored tree back to its first size events: tiles
// beyond them deleted, the tiles at the new right edge cut short.
func cutTree(t testing.TB, db *store.DB, size int64) {
	t.Helper()
	tiles := storedTiles(t, db)
	if err := db.Write(context.Background(), func(tx *store.Tx) error {
		for k, data := range tiles {
			w := min(256, size>>(8*k[0])-256*k[1])
			var err error
			switch {
			case w <= 0:
				_, err = tx.Exec(`DELETE FROM ledger_tree_tiles WHERE level = $1 AND idx = $2`, k[0], k[1])
			case int(w)*tlog.HashSize < len(data):
				_, err = tx.Exec(`UPDATE ledger_tree_tiles SET hashes = $1 WHERE level = $2 AND idx = $3`, data[:w*tlog.HashSize], k[0], k[1])
			}
			if err != nil {
				return err
			}
		}
		_, err := tx.Exec(`UPDATE ledger_tree SET size = $1 WHERE id = 1`, size)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestInstancesExtendTogether: two instances, each with its own right
// edge in memory, extend one tree while events are appended; each adds
// only what the other has not, and the tree is the tree of the events.
func TestInstancesExtendTogether(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		a, b := newTree(db), newTree(db)
		a.Batch, b.Batch = 29, 41 // batches that end within tiles, unlike each other
		appendEvents(t, db, 100)
		done := make(chan error, 2)
		for _, s := range []*ledgertree.Service{a, b} {
			go func() {
				var err error
				for range 20 {
					if _, err = s.CatchUp(ctx); err != nil {
						break
					}
				}
				done <- err
			}()
		}
		appendEvents(t, db, 600)
		for range 2 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range []*ledgertree.Service{b, a} {
			if size, err := s.CatchUp(ctx); err != nil || size != 700 {
				t.Fatalf("caught up to %d (%v), want 700", size, err)
			}
		}
		if rep, err := a.Verify(ctx); err != nil || !rep.OK() || rep.Hashes != 700+2 {
			t.Fatalf("verify: %+v %v", rep, err)
		}
	})
}

// publishLog records the sizes of the checkpoints a Service publishes, in
// the order Publish got them.
type publishLog struct {
	mu    sync.Mutex
	sizes []int64
}

func (l *publishLog) add(size int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sizes = append(l.sizes, size)
}

func (l *publishLog) got() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int64(nil), l.sizes...)
}

// TestCheckpointsOnlyGrow: checkpoints made at once, while events are
// added, as requests and the background step make them, are published
// in growing sizes only, and each is kept.
func TestCheckpointsOnlyGrow(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		tree := newTree(db)
		var log publishLog
		tree.Publish = func(_ context.Context, c *ledgertree.Checkpoint) error {
			log.add(c.Size)
			return nil
		}
		appendEvents(t, db, 5)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 15 {
					if w == 0 {
						appendEvents(t, db, 3)
					}
					if _, err := tree.MakeCheckpoint(ctx); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		published := log.got()
		if len(published) < 2 {
			t.Fatalf("published %v", published)
		}
		for i := 1; i < len(published); i++ {
			if published[i] <= published[i-1] {
				t.Fatalf("published %v: %d after %d", published, published[i], published[i-1])
			}
		}
		for _, size := range published {
			if _, err := tree.CheckpointAt(ctx, size); err != nil {
				t.Errorf("published checkpoint %d is not kept: %v", size, err)
			}
		}
		rep, err := tree.Verify(ctx)
		if err != nil || !rep.OK() {
			t.Fatalf("verify: %+v %v", rep, err)
		}
	})
}

// TestLargerCheckpointPublishedAfter forces the interleaving where a
// larger checkpoint is made and stored while a smaller one is still being
// published, as a request and the background step can: the copy outside
// the database gets the smaller one first and the larger one after it,
// never the other way round.
func TestLargerCheckpointPublishedAfter(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		tree := newTree(db)
		var log publishLog
		var other chan error
		tree.Publish = func(ctx context.Context, c *ledgertree.Checkpoint) error {
			if other == nil {
				other = make(chan error, 1)
				go func() {
					other <- func() error {
						if err := db.Write(ctx, func(tx *store.Tx) error {
							_, err := ledger.Append(tx, &ledger.Event{RecordedAt: time.Now().UnixMicro(), Kind: ledger.KindContactDeleted, ContactRef: "later"})
							return err
						}); err != nil {
							return err
						}
						_, err := tree.MakeCheckpoint(ctx)
						return err
					}()
				}()
				for { // until the larger checkpoint is stored
					latest, err := tree.Latest(ctx)
					if err != nil {
						return err
					}
					if latest.Size > c.Size {
						break
					}
				}
			}
			log.add(c.Size)
			return nil
		}
		appendEvents(t, db, 5)
		if c, err := tree.MakeCheckpoint(ctx); err != nil || c.Size != 5 {
			t.Fatalf("checkpoint: %+v %v", c, err)
		}
		if err := <-other; err != nil {
			t.Fatal(err)
		}
		if published := log.got(); len(published) != 2 || published[0] != 5 || published[1] != 6 {
			t.Fatalf("published %v, want [5 6]", published)
		}
	})
}
