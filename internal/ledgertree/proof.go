package ledgertree

import (
	"context"
	"encoding/base64"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/consentry/consentry/internal/errs"
)

// InclusionProof shows that ledger event Seq is leaf LeafIndex of the
// tree a signed checkpoint names. Hashes are base64, as tlog.ProveRecord
// orders them; check with tlog.CheckRecord(proof, TreeSize, root,
// LeafIndex, tlog.RecordHash(event hash)).
type InclusionProof struct {
	Seq        int64    `json:"seq"`
	LeafIndex  int64    `json:"leaf_index"`
	TreeSize   int64    `json:"tree_size"`
	RootHash   string   `json:"root_hash"`
	Hashes     []string `json:"hashes"`
	Checkpoint string   `json:"checkpoint" doc:"the signed checkpoint of tree_size, as a signed note"`
}

// ConsistencyProof shows that the tree of size To extends the tree of
// size From: check with tlog.CheckTree(proof, To, root of To, From, root
// of From).
type ConsistencyProof struct {
	From       int64    `json:"from"`
	To         int64    `json:"to"`
	FromRoot   string   `json:"from_root"`
	ToRoot     string   `json:"to_root"`
	Hashes     []string `json:"hashes"`
	Checkpoint string   `json:"checkpoint,omitempty" doc:"the signed checkpoint of to, when one was made at that size"`
}

// Inclusion proves event seq against the checkpoint of size at, or, with
// at 0, against the latest checkpoint, making one first when none covers
// the event yet. A tree behind the checkpoint is caught up first. The error names the field at fault: seq for an event
// that does not exist, at for a size no checkpoint was made at or that
// does not cover the event.
func (s *Service) Inclusion(ctx context.Context, seq, at int64) (*InclusionProof, error) {
	if seq < 1 {
		return nil, errs.Invalid("seq", "a ledger position starts at 1")
	}
	var c *Checkpoint
	var err error
	if at == 0 {
		c, err = s.Latest(ctx)
		if errs.Is(err, errs.KindNotFound) || (err == nil && c.Size < seq) {
			c, err = s.MakeCheckpoint(ctx)
		}
		if err == nil && (c == nil || c.Size < seq) {
			return nil, errs.NotFound("ledger event", fmt.Sprint(seq))
		}
	} else {
		c, err = s.CheckpointAt(ctx, at)
		if errs.Is(err, errs.KindNotFound) {
			return nil, errs.Invalid("at", "no checkpoint was made at tree size %d", at)
		}
		if err == nil && c.Size < seq {
			return nil, errs.Invalid("at", "the checkpoint of size %d does not cover event %d", at, seq)
		}
	}
	if err == nil {
		err = s.cover(ctx, c.Size)
	}
	if err != nil {
		return nil, err
	}
	p, err := tlog.ProveRecord(c.Size, seq-1, s.hashes(ctx, s.DB.Read))
	if err != nil {
		return nil, fmt.Errorf("ledgertree: prove event %d: %w", seq, err)
	}
	return &InclusionProof{Seq: seq, LeafIndex: seq - 1, TreeSize: c.Size, RootHash: b64(c.Root), Hashes: b64s(p), Checkpoint: c.Note}, nil
}

// Consistency proves that the tree of size to extends the tree of size
// from; to 0 means the latest checkpoint's size. Sizes must be within the
// tree, caught up with the ledger first when to is beyond it: the error
// names from or to and says why.
func (s *Service) Consistency(ctx context.Context, from, to int64) (*ConsistencyProof, error) {
	var c *Checkpoint
	if to == 0 {
		var err error
		if c, err = s.Latest(ctx); err != nil {
			if errs.Is(err, errs.KindNotFound) {
				return nil, errs.Invalid("to", "no checkpoint was made yet")
			}
			return nil, err
		}
		to = c.Size
	}
	size, err := s.Size(ctx, s.DB.Read)
	if err == nil && to > size {
		size, err = s.CatchUp(ctx) // the tree may be behind a checkpoint
	}
	if err != nil {
		return nil, err
	}
	switch {
	case to < 1 || to > size:
		return nil, errs.Invalid("to", "the tree has %d events; to must be between 1 and that", size)
	case from < 1 || from > to:
		return nil, errs.Invalid("from", "from must be between 1 and to (%d)", to)
	}
	r := s.hashes(ctx, s.DB.Read)
	p, err := tlog.ProveTree(to, from, r)
	if err != nil {
		return nil, fmt.Errorf("ledgertree: prove %d to %d: %w", from, to, err)
	}
	fromRoot, err := tlog.TreeHash(from, r)
	if err != nil {
		return nil, err
	}
	toRoot, err := tlog.TreeHash(to, r)
	if err != nil {
		return nil, err
	}
	out := &ConsistencyProof{From: from, To: to, FromRoot: b64(fromRoot), ToRoot: b64(toRoot), Hashes: b64s(p)}
	if c == nil {
		if c, err = s.CheckpointAt(ctx, to); err != nil && !errs.Is(err, errs.KindNotFound) {
			return nil, err
		}
	}
	if c != nil {
		out.Checkpoint = c.Note
	}
	return out, nil
}

// cover makes sure that the tree covers at least need events, catching
// it up with the ledger when it does not: after an upgrade the tree is
// rebuilt from the events, in the background, and until then it is
// behind the checkpoints kept from before. It fails when even then the
// tree covers fewer.
func (s *Service) cover(ctx context.Context, need int64) error {
	size, err := s.Size(ctx, s.DB.Read)
	if err != nil || size >= need {
		return err
	}
	if size, err = s.CatchUp(ctx); err != nil {
		return err
	}
	if size < need {
		return fmt.Errorf("ledgertree: the tree covers %d events, fewer than the checkpoint of %d: the ledger has lost events", size, need)
	}
	return nil
}

func b64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

func b64s(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = b64(h)
	}
	return out
}

// DecodeHashes reads base64 hashes, as proofs carry them.
func DecodeHashes(in []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(in))
	for i, s := range in {
		h, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(h) != tlog.HashSize {
			return nil, fmt.Errorf("proof hash %d is not a hash", i)
		}
		out[i] = tlog.Hash(h)
	}
	return out, nil
}
