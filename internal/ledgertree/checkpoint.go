package ledgertree

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// Checkpoint is the tree at one size, signed.
type Checkpoint struct {
	Size int64
	Root tlog.Hash
	// Note is the signed note: the checkpoint's text (FormatCheckpoint)
	// and the signature line.
	Note      string
	KeyID     string
	CreatedAt time.Time
}

// FormatCheckpoint is a checkpoint's text, as the C2SP tlog-checkpoint
// format has it: the origin (the signing key's name), the tree size in
// decimal and the root hash in base64, a line each.
func FormatCheckpoint(origin string, size int64, root tlog.Hash) string {
	return fmt.Sprintf("%s\n%d\n%s\n", origin, size, base64.StdEncoding.EncodeToString(root[:]))
}

// ParseCheckpoint reads a checkpoint's text; lines after the third
// (extensions) are left.
func ParseCheckpoint(text string) (origin string, size int64, root tlog.Hash, err error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return "", 0, root, errors.New("a checkpoint has an origin, a size and a root hash, a line each")
	}
	if size, err = strconv.ParseInt(lines[1], 10, 64); err != nil || size < 0 {
		return "", 0, root, fmt.Errorf("the checkpoint's size %q is not a number", lines[1])
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return "", 0, root, fmt.Errorf("the checkpoint's root hash %q is not a hash", lines[2])
	}
	return lines[0], size, tlog.Hash(h), nil
}

// OpenCheckpoint checks a signed checkpoint against the verifier keys
// ("name+hash+base64", signing.PublicKey.VerifierKey) and reads it. It
// fails when no key given signed it, or it was changed since.
func OpenCheckpoint(signed []byte, verifierKeys ...string) (*Checkpoint, error) {
	var vs []note.Verifier
	for _, k := range verifierKeys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("verifier key %q: %w", k, err)
		}
		vs = append(vs, v)
	}
	n, err := note.Open(signed, note.VerifierList(vs...))
	if err != nil {
		return nil, fmt.Errorf("the checkpoint's signature does not check: %w", err)
	}
	origin, size, root, err := ParseCheckpoint(n.Text)
	if err != nil {
		return nil, err
	}
	if origin != n.Sigs[0].Name {
		return nil, fmt.Errorf("the checkpoint names %q but is signed by %q", origin, n.Sigs[0].Name)
	}
	return &Checkpoint{Size: size, Root: root, Note: string(signed), KeyID: fmt.Sprintf("%08x", n.Sigs[0].Hash)}, nil
}

// MakeCheckpoint extends the tree over every committed event and signs a
// checkpoint of it; when one of that size exists, it is returned, and so
// is the latest when it is larger (signed meanwhile by another instance):
// no checkpoint is ever smaller than one kept. Nil, and no error, when
// the ledger is empty.
func (s *Service) MakeCheckpoint(ctx context.Context) (*Checkpoint, error) {
	size, err := s.CatchUp(ctx)
	if err != nil || size == 0 {
		return nil, err
	}
	switch latest, err := s.Latest(ctx); {
	case errs.Is(err, errs.KindNotFound):
	case err != nil:
		return nil, err
	case latest.Size == size:
		return latest, nil
	case latest.Size > size:
		// Never a checkpoint smaller than one kept: that would be a
		// fork. Another instance may have extended the tree and signed
		// since; if not, the ledger lost events.
		if err := s.cover(ctx, latest.Size); err != nil {
			return nil, err
		}
		return latest, nil
	}
	root, err := tlog.TreeHash(size, s.hashes(ctx, s.DB.Read))
	if err != nil {
		return nil, fmt.Errorf("ledgertree: root of %d: %w", size, err)
	}
	key, err := s.Signing.Current(ctx)
	if err != nil {
		return nil, err
	}
	signed, err := note.Sign(&note.Note{Text: FormatCheckpoint(key.Name, size, root)}, key.NoteSigner())
	if err != nil {
		return nil, fmt.Errorf("ledgertree: sign checkpoint: %w", err)
	}
	c := &Checkpoint{Size: size, Root: root, Note: string(signed), KeyID: key.ID, CreatedAt: s.now()}
	// Stored only if no checkpoint of this size or larger was kept
	// meanwhile, which the write, one at a time, checks: a request and
	// the background step, or two instances, signing at once never store
	// (and publish) a smaller checkpoint after a larger one.
	var made bool
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(`INSERT INTO ledger_checkpoints (size, root, note, key_id, created_at) SELECT $1, $2, $3, $4, $5
			WHERE NOT EXISTS (SELECT 1 FROM ledger_checkpoints WHERE size >= CAST($1 AS BIGINT))`,
			c.Size, base64.StdEncoding.EncodeToString(root[:]), c.Note, c.KeyID, store.Micros(c.CreatedAt))
		if err != nil {
			return fmt.Errorf("ledgertree: store checkpoint: %w", err)
		}
		n, _ := res.RowsAffected()
		made = n == 1
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !made { // this size, or a larger one, was signed first
		latest, err := s.Latest(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.cover(ctx, latest.Size); err != nil {
			return nil, err
		}
		return latest, nil
	}
	s.publishLatest(ctx)
	return c, nil
}

// publishLatest gives Publish the latest kept checkpoint, unless this
// process published one as large already: checkpoints made at once (a
// request's and the background step's) are stored in the order of their
// sizes, but may finish in another, and a copy outside the database must
// never go back to a smaller tree.
func (s *Service) publishLatest(ctx context.Context) {
	if s.Publish == nil {
		return
	}
	s.publishMu.Lock()
	defer s.publishMu.Unlock()
	c, err := s.Latest(ctx)
	if err == nil && c.Size > s.published {
		if err = s.Publish(ctx, c); err == nil {
			s.published = c.Size
		}
	}
	if err != nil {
		s.log().Error("ledgertree: publish checkpoint", "err", err)
	}
}

// checkpointIfDue makes a checkpoint when the tree has grown since the
// latest and that one is older than Every (or there is none).
func (s *Service) checkpointIfDue(ctx context.Context) (*Checkpoint, error) {
	every := s.Every
	if every <= 0 {
		every = 5 * time.Minute
	}
	size, err := s.Size(ctx, s.DB.Read)
	if err != nil || size == 0 {
		return nil, err
	}
	last, err := s.Latest(ctx)
	switch {
	case errs.Is(err, errs.KindNotFound):
	case err != nil:
		return nil, err
	case last.Size >= size || s.now().Sub(last.CreatedAt) < every:
		return nil, nil
	}
	return s.MakeCheckpoint(ctx)
}

const checkpointColumns = `size, root, note, key_id, created_at`

// Latest returns the newest checkpoint; a not-found error when none was
// made yet.
func (s *Service) Latest(ctx context.Context) (*Checkpoint, error) {
	return scanCheckpoint(s.DB.Read.QueryRowContext(ctx, `SELECT `+checkpointColumns+` FROM ledger_checkpoints ORDER BY size DESC LIMIT 1`))
}

// CheckpointAt returns the checkpoint of size; a not-found error when none
// was made at that size.
func (s *Service) CheckpointAt(ctx context.Context, size int64) (*Checkpoint, error) {
	return scanCheckpoint(s.DB.Read.QueryRowContext(ctx, `SELECT `+checkpointColumns+` FROM ledger_checkpoints WHERE size = $1`, size))
}

// Checkpoints returns every checkpoint, oldest first.
func (s *Service) Checkpoints(ctx context.Context) ([]*Checkpoint, error) {
	return store.QueryAll(ctx, s.DB.Read, scanCheckpoint, `SELECT `+checkpointColumns+` FROM ledger_checkpoints ORDER BY size`)
}

func scanCheckpoint(row store.Scanner) (*Checkpoint, error) {
	var c Checkpoint
	var root string
	var at int64
	err := row.Scan(&c.Size, &root, &c.Note, &c.KeyID, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("checkpoint", "")
	}
	if err != nil {
		return nil, fmt.Errorf("ledgertree: read checkpoint: %w", err)
	}
	h, err := base64.StdEncoding.DecodeString(root)
	if err != nil || len(h) != tlog.HashSize {
		return nil, fmt.Errorf("ledgertree: checkpoint %d: the root is not a hash", c.Size)
	}
	c.Root, c.CreatedAt = tlog.Hash(h), store.FromMicros(at)
	return &c, nil
}

// log is the service's logger, the default one when none is set.
func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}
