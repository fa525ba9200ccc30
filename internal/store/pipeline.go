package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Writes on PostgreSQL are bound by round trips, not by work: every
// statement is a message to the server and a wait for its answer, and the
// writes of a group commit run one after another on one connection, each
// holding the others up. A webform post, say, inserts a dozen rows whose
// answers nobody reads. ExecLater lets such statements wait in the
// transaction and go to the server together, as one pgx batch (one
// pipeline, one round trip), just before the next statement that needs an
// answer and before COMMIT (and, inside a savepoint, before the write
// function is considered done).
//
// Statements may wait past the end of the function that queued them, to go
// with the next function's first read or with COMMIT (see batcher.attempt).
// Errors still stay with the write function that caused them: every queued
// statement remembers which function queued it; a failed statement aborts
// the PostgreSQL transaction, the Tx remembers its error (as wrapped by the
// caller) and its function, every later call on the Tx returns that error,
// and the batcher takes it as that function's outcome, whatever the
// function returned, and runs the others again.

// laterStmt is a statement waiting to be sent, or, with dest, the query
// that ends a pipeline and whose row is read into dest.
type laterStmt struct {
	query string
	args  []any
	wrap  func(error) error
	dest  []any
	ofTx  bool // the transaction's own, such as its write lock
	owner int  // the write function that queued it (Tx.fn)
	// gatherRow is the row of a Gather that queued it (see gather.go),
	// 0 outside Gather.
	gatherRow int
}

// ExecLater runs a statement whose result the caller does not need, such
// as the INSERT of a history row, passing its error through wrap (nil: as
// it is). On SQLite, in-process, it runs at once and returns that error.
// On PostgreSQL it is queued and returns nil (or the error of a statement
// queued earlier); the error of the statement itself comes from a later
// call on tx, and in any case becomes the write function's outcome, as
// the transaction it belongs to can go no further.
//
// Use it only where nothing in the write function depends on whether the
// statement succeeded other than by returning its error.
func (t *Tx) ExecLater(wrap func(error) error, query string, args ...any) error {
	if t.conn == nil && t.gathering {
		t.held = append(t.held, laterStmt{query: query, args: args, wrap: wrap, owner: t.fn, gatherRow: t.gatherRow})
		return nil
	}
	if t.conn == nil {
		_, err := t.Exec(query, args...)
		if err != nil && wrap != nil {
			err = wrap(err)
		}
		return err
	}
	if t.failed != nil {
		return t.failed
	}
	later := laterStmt{query: query, args: args, wrap: wrap, owner: t.fn}
	if t.gathering {
		later.gatherRow = t.gatherRow
	}
	t.later = append(t.later, later)
	return nil
}

// Row runs a query expected to return one row, for a read that may follow
// writes queued by ExecLater: on PostgreSQL they go with it in one round
// trip, where QueryRow sends them first and waits. The query runs when
// Scan is called, which returns sql.ErrNoRows (as errors.Is tells) when
// there is no row. Values are converted as pgx scans them, which for the
// usual targets (strings, integers, bools, sql.Null types) is as
// database/sql does. On SQLite it is QueryRow.
func (t *Tx) Row(query string, args ...any) Scanner {
	if t.conn == nil {
		return t.QueryRow(query, args...)
	}
	return pipelinedRow{t, query, args}
}

type pipelinedRow struct {
	t     *Tx
	query string
	args  []any
}

func (r pipelinedRow) Scan(dest ...any) error {
	_, err := r.t.flush(&laterStmt{query: r.query, args: r.args, dest: dest})
	return err
}

// flush sends the queued statements and, when last is not nil, last after
// them, in one round trip, and returns last's result (or scans its row).
// The failure of a queued statement is kept in t.failed; last's own error
// (a row not found, a duplicate key the caller turns into a conflict) is
// returned to its caller only, as a plain Exec or QueryRow would.
func (t *Tx) flush(last *laterStmt) (sql.Result, error) {
	if t.failed != nil {
		return nil, t.failed
	}
	if len(t.later) == 0 && last == nil {
		return nil, nil
	}
	queue := merge(t.later, Postgres)
	t.later = nil
	if last != nil {
		queue = append(queue, *last)
	}
	var res sql.Result
	lastFailed := false // last's own error goes to its caller, as Exec's would
	err := t.conn.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("store: pipeline: unexpected driver connection %T", dc)
		}
		b := &pgx.Batch{}
		for _, s := range queue {
			b.Queue(s.query, s.args...)
		}
		br := pc.Conn().SendBatch(t.ctx, b)
		for i, s := range queue {
			lastFailed = last != nil && i == len(queue)-1
			if s.dest != nil {
				if err := br.QueryRow().Scan(s.dest...); err != nil {
					br.Close()
					return err
				}
				continue
			}
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				// Only the server's answer to this statement is its
				// function's doing. pgx reports a batch it could not send
				// (a statement that would not prepare or encode, a broken
				// connection) at the first statement, whoever queued it:
				// that is the transaction's failure.
				var pgErr *pgconn.PgError
				var unsent pgx.ErrPreprocessingBatch
				t.broken = !lastFailed && (s.ofTx || errors.As(err, &unsent) || !errors.As(err, &pgErr))
				t.failedBy = -1
				if !lastFailed && !t.broken {
					t.failedBy = s.owner
				}
				if s.wrap != nil {
					err = s.wrap(err)
				}
				return err
			}
			res = driver.RowsAffected(tag.RowsAffected())
		}
		return br.Close()
	})
	if err != nil && !lastFailed {
		t.failed = err
	}
	return res, err
}

// pending reports whether statements are waiting, and sends them first if
// so. It returns the error that ends the transaction, if any.
func (t *Tx) sendPending() error {
	if t.conn == nil {
		return t.sendHeld()
	}
	if len(t.later) == 0 && t.failed == nil {
		return nil
	}
	_, err := t.flush(nil)
	return err
}

// failedCtx is an ended context whose error is a pipeline's failure, so
// that QueryRow can hand that failure back in the *sql.Row it must return.
type failedCtx struct {
	context.Context
	err error
}

var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c failedCtx) Done() <-chan struct{}       { return closedDone }
func (c failedCtx) Err() error                  { return c.err }
func (c failedCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

// Prefix is a wrap for ExecLater that says what the statement was doing,
// as fmt.Errorf("doing: %w", err) does for Exec's error.
func Prefix(doing string) func(error) error {
	return func(err error) error { return fmt.Errorf("%s: %w", doing, err) }
}
