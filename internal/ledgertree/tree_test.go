package ledgertree_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/ledgertree"
	"github.com/consentry/consentry/internal/signing"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// appendEvents appends n events, in writes of up to 7.
func appendEvents(t testing.TB, db *store.DB, n int) {
	t.Helper()
	for n > 0 {
		k := min(n, 7)
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			for i := range k {
				if _, err := ledger.Append(tx, &ledger.Event{RecordedAt: time.Now(), Kind: ledger.KindContactDeleted,
					ContactRef: fmt.Sprintf("ref-%d-%d", n, i)}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
}

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
		first, err := tree.MakeCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		vs := verifier(t, tree)
		size, root := openedRoot(t, first.Note, vs)
		if size != 300 {
			t.Fatalf("the first checkpoint covers %d events, want 300", size)
		}
		var stored int64
		if err := db.Read.QueryRowContext(ctx, `SELECT count(*) FROM ledger_tree_hashes`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != tlog.StoredHashCount(300) {
			t.Fatalf("%d stored hashes, want %d", stored, tlog.StoredHashCount(300))
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
		if !rep.OK() || rep.TreeSize != 423 || rep.Checkpoints != 2 || rep.Hashes != tlog.StoredHashCount(423) {
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

// TestTamperingIsFound: an event changed after it was added, a stored
// tree hash changed, or a checkpoint signed by another key, and Verify
// names it; a ledger forked (rewritten from some event on) signs a
// checkpoint no consistency proof can tie to the one an outsider kept.
func TestTamperingIsFound(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		tree := newTree(db)
		appendEvents(t, db, 40)
		kept, err := tree.MakeCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		vs := verifier(t, tree)
		keptSize, keptRoot := openedRoot(t, kept.Note, vs)
		exec := func(q string, args ...any) {
			t.Helper()
			if err := db.Write(ctx, func(tx *store.Tx) error { _, err := tx.Exec(q, args...); return err }); err != nil {
				t.Fatal(err)
			}
		}
		check := func(want string) {
			t.Helper()
			rep, err := tree.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("%s went unnoticed", want)
			}
		}

		var h string
		if err := db.Read.QueryRowContext(ctx, `SELECT hash FROM ledger_events WHERE seq = 17`).Scan(&h); err != nil {
			t.Fatal(err)
		}
		exec(`UPDATE ledger_events SET hash = $1 WHERE seq = 17`, "00"+h[2:])
		check("an event's hash changed")
		exec(`UPDATE ledger_events SET hash = $1 WHERE seq = 17`, h)

		var stored []byte
		if err := db.Read.QueryRowContext(ctx, `SELECT hash FROM ledger_tree_hashes WHERE idx = 5`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		changed := append([]byte(nil), stored...)
		changed[0] ^= 1
		exec(`UPDATE ledger_tree_hashes SET hash = $1 WHERE idx = 5`, changed)
		check("a stored tree hash changed")
		exec(`UPDATE ledger_tree_hashes SET hash = $1 WHERE idx = 5`, stored)

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
		forged, err := note.Sign(&note.Note{Text: ledgertree.FormatCheckpoint("ledger.example.org/ledger", 40, keptRoot)}, signer)
		if err != nil {
			t.Fatal(err)
		}
		exec(`UPDATE ledger_checkpoints SET note = $1 WHERE size = 40`, string(forged))
		check("a checkpoint signed by another key")
		exec(`UPDATE ledger_checkpoints SET note = $1 WHERE size = 40`, kept.Note)
		if rep, err := tree.Verify(ctx); err != nil || !rep.OK() {
			t.Fatalf("after putting everything back: %+v %v", rep, err)
		}

		// The fork: the operator rewrites the ledger from event 21 on (a
		// consent that was withdrawn made to look granted), rebuilds the
		// tree and signs a new checkpoint with the real key.
		exec(`DELETE FROM ledger_events WHERE seq > 20`)
		exec(`DELETE FROM ledger_tree_hashes WHERE idx >= $1`, tlog.StoredHashCount(20))
		exec(`UPDATE ledger_tree SET size = 20 WHERE id = 1`)
		exec(`DELETE FROM ledger_checkpoints`)
		var seq int64
		var head string
		if err := db.Read.QueryRowContext(ctx, `SELECT seq, hash FROM ledger_events WHERE seq = 20`).Scan(&seq, &head); err != nil {
			t.Fatal(err)
		}
		exec(`UPDATE ledger_head SET seq = $1, hash = $2 WHERE id = 1`, seq, head)
		appendEvents(t, db, 30)
		forkedCheckpoint, err := tree.MakeCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		forkSize, forkRoot := openedRoot(t, forkedCheckpoint.Note, vs) // the real key signed it
		proof, err := tree.Consistency(ctx, keptSize, forkSize)
		if err != nil {
			t.Fatal(err)
		}
		if tlog.CheckTree(hashes(t, proof.Hashes), forkSize, forkRoot, keptSize, keptRoot) == nil {
			t.Fatal("the forked ledger proved consistent with the checkpoint kept before the fork")
		}
	})
}
