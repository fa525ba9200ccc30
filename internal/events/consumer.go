package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/consentry/consentry/internal/store"
)

// ErrMoved is what Advance returns when another instance moved the
// consumer's position since it was read: the caller's transaction must be
// dropped and the events read again.
var ErrMoved = errors.New("events: the consumer's position moved")

// Peek returns consumer's position and up to limit committed events after
// it, oldest first, from q outside any write: a consumer that must read a
// lot to decide what to do (a workflow rule reading contacts) reads here,
// then writes what it decided with Advance in one transaction. A consumer
// never seen before is at 0 here; Advance starts it after the newest
// event instead (see Next). It returns an empty slice when nothing is new.
func Peek(ctx context.Context, q store.Querier, consumer string, limit int) (int64, []Event, error) {
	var pos int64
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(position), -1) FROM event_cursors WHERE consumer = $1`, consumer).Scan(&pos)
	if err != nil {
		return 0, nil, fmt.Errorf("events: position of %s: %w", consumer, err)
	}
	if pos < 0 {
		return -1, nil, nil
	}
	out, err := store.QueryAll(ctx, q, scan, `SELECT `+columns+` FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, pos, limit)
	if err != nil {
		return 0, nil, fmt.Errorf("events: read for %s: %w", consumer, err)
	}
	return pos, out, nil
}

// Advance moves consumer from position from to to inside tx, where the
// caller writes what it did about the events in between. from is what
// Peek returned: -1 starts a new consumer after the newest event. It
// returns ErrMoved when the position is no longer from.
func Advance(tx *store.Tx, consumer string, from, to int64) error {
	if from < 0 {
		_, err := Position(tx, consumer)
		return err
	}
	res, err := tx.Exec(`UPDATE event_cursors SET position = $3 WHERE consumer = $1 AND position = $2`, consumer, from, to)
	if err != nil {
		return fmt.Errorf("events: move %s: %w", consumer, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return ErrMoved
	}
	return nil
}
