package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("store: closed")

// Tx is the transaction a write function runs in. Its methods use the
// transaction's own context: one caller giving up must not abort the other
// changes committed with it.
type Tx struct {
	db     *DB
	tx     *sql.Tx
	ctx    context.Context
	cancel context.CancelFunc
	// sctx is the context statements run with: on SQLite, ctx without
	// its deadline, as the driver watches a context that can end with a
	// goroutine per statement, which costs more than many statements; the
	// deadline is checked before each one instead (checkDeadline).
	sctx   context.Context
	locals map[any]any
	before []func(*Tx) error
	after  []func()
	fenced bool      // see Fence
	req    *writeReq // the write function running's request; nil outside them

	fn int // the write function running, by its place in the group; -1 outside them

	// PostgreSQL only: the connection the transaction runs on, the
	// statements queued by ExecLater and the error that aborted the
	// transaction while sending them (see pipeline.go).
	conn     *sql.Conn
	later    []laterStmt
	failed   error
	broken   bool // failed is the transaction's, not a function's
	failedBy int  // the function whose statement failed, or -1

	// Gather (gather.go): whether a write function is gathering, and on
	// SQLite the statements it holds.
	gathering bool
	gatherRow int // counts the rows gathered in the transaction
	held      []laterStmt
}

// Dialect is the database engine the transaction runs on.
func (t *Tx) Dialect() Dialect { return t.db.Dialect }

// Exec runs a statement in the transaction.
func (t *Tx) Exec(query string, args ...any) (sql.Result, error) {
	if len(t.later) > 0 || t.failed != nil {
		return t.flush(&laterStmt{query: query, args: args}) // in the same round trip
	}
	if err := t.sendHeld(); err != nil {
		return nil, err
	}
	return t.exec(query, args)
}

// exec runs a statement now.
func (t *Tx) exec(query string, args []any) (sql.Result, error) {
	if err := t.ctx.Err(); err != nil {
		return nil, err
	}
	if st := t.stmt(query); st != nil {
		return st.ExecContext(t.sctx, args...)
	}
	return t.tx.ExecContext(t.sctx, query, args...)
}

// Query runs a query in the transaction.
func (t *Tx) Query(query string, args ...any) (*sql.Rows, error) {
	if err := t.sendPending(); err != nil {
		return nil, err
	}
	if err := t.ctx.Err(); err != nil {
		return nil, err
	}
	if st := t.stmt(query); st != nil {
		return st.QueryContext(t.sctx, args...)
	}
	return t.tx.QueryContext(t.sctx, query, args...)
}

// QueryContext and QueryRowContext make a Tx a Querier, so read helpers
// such as QueryAll work inside a write. They use the transaction's context.
func (t *Tx) QueryContext(_ context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.Query(query, args...)
}

// QueryRowContext is QueryRow; see QueryContext.
func (t *Tx) QueryRowContext(_ context.Context, query string, args ...any) *sql.Row {
	return t.QueryRow(query, args...)
}

// QueryRow runs a query expected to return at most one row.
func (t *Tx) QueryRow(query string, args ...any) *sql.Row {
	err := t.sendPending()
	if err == nil {
		err = t.ctx.Err()
	}
	if err != nil {
		return t.tx.QueryRowContext(failedCtx{t.ctx, err}, query, args...) // a Row holding err
	}
	if st := t.stmt(query); st != nil {
		return st.QueryRowContext(t.sctx, args...)
	}
	return t.tx.QueryRowContext(t.sctx, query, args...)
}

// Local returns the value a package stored under key in this transaction,
// or nil. Packages use it for state that lives as long as the transaction,
// such as the ledger's chain head and its events waiting to be written.
func (t *Tx) Local(key any) any { return t.locals[key] }

// SetLocal stores a transaction-scoped value under key.
func (t *Tx) SetLocal(key, v any) {
	if t.locals == nil {
		t.locals = map[any]any{}
	}
	t.locals[key] = v
}

// BeforeCommit registers fn to run once, after every write function of the
// transaction and before COMMIT. An error from fn aborts the whole
// transaction.
func (t *Tx) BeforeCommit(fn func(*Tx) error) { t.before = append(t.before, fn) }

// AfterCommit registers fn to run once the transaction has committed, for
// example to wake a worker. It does not run if the transaction rolls back.
func (t *Tx) AfterCommit(fn func()) { t.after = append(t.after, fn) }

// Write runs fn in a transaction and returns once that transaction has
// committed durably, or with the error that stopped it.
//
// Concurrent calls are grouped: one writer takes every call waiting, runs
// their functions one after another in one transaction and commits once, so
// a burst of changes shares a single fsync. Each change is still all or
// nothing. When a change fails (its function returns an error, or, on
// PostgreSQL, a statement it queued with ExecLater fails, perhaps while a
// later function runs), the transaction is rolled back, that caller gets
// its error, and the others run again once, each inside its own savepoint,
// so that further failures cost one ROLLBACK TO each rather than another
// run of the whole group. So fn may run more than once, and must have no
// effects outside tx beyond setting its own results; it must return every
// SQL error it gets, since on PostgreSQL a swallowed error leaves the
// transaction unusable.
//
// A function that fences a contact (Tx.Fence) whose campaign message is
// being handed to the mail server in this process runs again once that
// message has ended: Write waits for it without holding the writer.
//
// If ctx ends before fn has started, fn never runs and Write returns ctx's
// error. Once fn has started, Write waits for the real outcome, so that what
// it returns is always true.
func (db *DB) Write(ctx context.Context, fn func(*Tx) error) error {
	w := wants{}
	defer db.handovers.release(w)
	for {
		err := db.write1(ctx, &writeReq{fn: fn, done: make(chan error, 1), wants: w})
		var busy *errHandingOver
		if !errors.As(err, &busy) {
			return err
		}
		// A message to a contact the change stops is being handed over
		// (see Fence): the change commits once it is, outside the writer.
		db.handovers.waiting(1)
		err = busy.wait(ctx)
		db.handovers.waiting(-1)
		if err != nil {
			return err
		}
	}
}

// write1 is one try of Write.
func (db *DB) write1(ctx context.Context, r *writeReq) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case db.batcher.in <- r:
	case <-db.batcher.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return ctx.Err()
		}
		return <-r.done // already running: its outcome is the truth
	}
}

// Request states: a queued request is either taken to run by the writer or
// abandoned by its caller, never both.
const (
	reqQueued int32 = iota
	reqRunning
	reqAbandoned
)

type writeReq struct {
	fn    func(*Tx) error
	done  chan error
	state atomic.Int32
	wants wants // the contacts its Write has fenced (see Fence)
}

type batcher struct {
	db   *DB
	max  int
	in   chan *writeReq
	quit chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func newBatcher(db *DB, max int) *batcher {
	b := &batcher{db: db, max: max, in: make(chan *writeReq), quit: make(chan struct{})}
	b.wg.Add(1)
	go b.loop()
	return b
}

func (b *batcher) close() {
	b.once.Do(func() { close(b.quit) })
	b.wg.Wait()
}

func (b *batcher) loop() {
	defer b.wg.Done()
	batch := make([]*writeReq, 0, b.max)
	for {
		select {
		case r := <-b.in:
			batch = append(batch[:0], r)
		case <-b.quit:
			return
		}
	drain:
		for len(batch) < b.max {
			select {
			case r := <-b.in:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		b.run(batch)
		if b.db.stmts != nil {
			b.db.stmts.prepare(b.db.write) // the connection is free now
		}
		if c := b.db.ckpt; c != nil {
			c.writerCheckpoint(b.db.write)
			c.wake()
		}
	}
}

// run commits batch. A first attempt runs every function plainly; if one
// fails, its caller is answered and the rest run again, each inside its own
// savepoint, and commit together.
func (b *batcher) run(batch []*writeReq) {
	live := batch[:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(reqQueued, reqRunning) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	failed, fnErr, err := b.attempt(live)
	if err == nil && failed >= 0 {
		live[failed].done <- fnErr
		live = append(live[:failed], live[failed+1:]...)
		var errs []error
		errs, err = b.attemptIsolated(live)
		if err == nil {
			for i, r := range live {
				r.done <- errs[i]
			}
			return
		}
	}
	for _, r := range live {
		r.done <- err
	}
}

// attempt runs reqs in one transaction. It returns the index of the first
// function that failed and its error, or err for a failure of the
// transaction itself, or (-1, nil, nil) once committed.
//
// On PostgreSQL the statements a function queued with ExecLater may still
// be waiting when it returns: they go with the next function's first read,
// or with COMMIT, so that a group of writes costs few round trips, not a
// few per write. A queued statement knows which function queued it, so its
// failure, whenever it comes to light, is that function's outcome.
func (b *batcher) attempt(reqs []*writeReq) (failed int, fnErr, err error) {
	tx, err := b.begin()
	if err != nil {
		return -1, nil, err
	}
	defer tx.end()
	for i, r := range reqs {
		tx.fn, tx.req = i, r
		if err := runFn(r.fn, tx, false); err != nil {
			tx.tx.Rollback()
			switch {
			case tx.broken:
				return -1, nil, err // not the function's doing
			case tx.failedBy >= 0:
				return tx.failedBy, tx.failed, nil // perhaps queued by an earlier function
			}
			return i, err, nil
		}
	}
	tx.fn, tx.req = -1, nil
	if err := tx.commit(); err != nil {
		if tx.failedBy >= 0 && !tx.broken {
			return tx.failedBy, tx.failed, nil // commit sent the statement, and rolled back
		}
		return -1, nil, err
	}
	return -1, nil, nil
}

// attemptIsolated runs each request inside a savepoint, rolling back to it
// when the function fails, and commits the rest. It returns each request's
// own error (nil for those committed), or err for a failure of the
// transaction itself.
func (b *batcher) attemptIsolated(reqs []*writeReq) ([]error, error) {
	tx, err := b.begin()
	if err != nil {
		return nil, err
	}
	defer tx.end()
	errs := make([]error, len(reqs))
	for i, r := range reqs {
		if _, err := tx.Exec("SAVEPOINT write_fn"); err != nil {
			tx.tx.Rollback()
			return nil, fmt.Errorf("store: savepoint: %w", err)
		}
		m := tx.mark()
		tx.fn, tx.req = i, r
		if errs[i] = runFn(r.fn, tx, true); errs[i] != nil {
			if tx.broken {
				tx.tx.Rollback()
				return nil, errs[i]
			}
			tx.rewind(m)
			if _, err := tx.Exec("ROLLBACK TO SAVEPOINT write_fn"); err != nil {
				tx.tx.Rollback()
				return nil, fmt.Errorf("store: roll back to savepoint: %w", err)
			}
		}
		if _, err := tx.Exec("RELEASE SAVEPOINT write_fn"); err != nil {
			tx.tx.Rollback()
			return nil, fmt.Errorf("store: release savepoint: %w", err)
		}
	}
	tx.fn, tx.req = -1, nil
	return errs, tx.commit()
}

func (b *batcher) begin() (*Tx, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t := &Tx{db: b.db, ctx: ctx, sctx: ctx, cancel: cancel, fn: -1, failedBy: -1}
	if b.db.Dialect == SQLite {
		t.sctx = context.WithoutCancel(ctx)
	}
	var err error
	if b.db.Dialect == Postgres {
		// A connection of our own, so that ExecLater can reach pgx's
		// batches on the session the transaction runs in.
		if t.conn, err = b.db.write.Conn(ctx); err != nil {
			cancel()
			return nil, fmt.Errorf("store: begin: %w", err)
		}
		t.tx, err = t.conn.BeginTx(ctx, nil)
	} else {
		t.tx, err = b.db.write.BeginTx(ctx, nil)
	}
	if err != nil {
		t.end()
		return nil, fmt.Errorf("store: begin: %w", err)
	}
	if b.db.Dialect == Postgres {
		// One writer at a time per database, as SQLite has by design: every
		// write transaction of every instance takes this lock first, so
		// writers never hold row locks in different orders (no deadlocks),
		// and the ledger chain has one order. Group commit keeps throughput.
		// The lock is queued to go ahead of the transaction's first
		// statement, in its round trip; its failure is the transaction's,
		// not that statement's function's.
		//
		// The same statement turns JIT compilation off for the
		// transaction (see noJIT).
		t.later = append(t.later, laterStmt{query: "SELECT pg_advisory_xact_lock($1), " + noJIT, args: []any{b.db.writeKey},
			wrap: Prefix("store: take write lock"), ofTx: true})
	}
	return t, nil
}

// end releases what begin took, once the transaction is over.
func (t *Tx) end() {
	if t.conn != nil {
		t.conn.Close() // back to the pool
	}
	t.cancel()
}

// commit runs the before-commit hooks, commits, then runs the after-commit
// hooks.
func (t *Tx) commit() error {
	for _, fn := range t.before {
		if err := fn(t); err != nil {
			t.tx.Rollback()
			return err
		}
	}
	t.lockFence()
	if err := t.sendPending(); err != nil {
		t.tx.Rollback()
		return err
	}
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	for _, fn := range t.after {
		fn()
	}
	return nil
}

// Rewinder is a transaction-local value (see Tx.SetLocal) that can go back
// to an earlier state when a savepoint is rolled back: Mark returns the
// state, Rewind restores it.
type Rewinder interface {
	Mark() any
	Rewind(mark any)
}

type txMark struct {
	locals        map[any]any
	marks         map[any]any
	before, after int
}

func (t *Tx) mark() txMark {
	m := txMark{locals: map[any]any{}, marks: map[any]any{}, before: len(t.before), after: len(t.after)}
	for k, v := range t.locals {
		m.locals[k] = v
		if r, ok := v.(Rewinder); ok {
			m.marks[k] = r.Mark()
		}
	}
	return m
}

func (t *Tx) rewind(m txMark) {
	for k := range t.locals {
		if _, kept := m.locals[k]; !kept {
			delete(t.locals, k)
		}
	}
	for k, v := range m.locals {
		t.locals[k] = v // a value replaced since, such as a cached read
	}
	for k, mark := range m.marks {
		t.locals[k].(Rewinder).Rewind(mark)
	}
	t.before, t.after = t.before[:m.before], t.after[:m.after]
	t.later, t.held, t.failed, t.failedBy = nil, nil, nil, -1 // the savepoint's rollback undoes what was sent
}

// runFn runs a write function and, with send, the statements it queued, so
// that their errors are known before the next function starts (inside a
// savepoint, which must be released or rolled back). It turns a panic into
// that caller's error, so one bad change cannot take the writer, and every
// other caller, down with it.
func runFn(fn func(*Tx) error, tx *Tx, send bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: write function panicked: %v", p)
		}
		if tx.failed != nil {
			err = tx.failed // whatever fn made of it
		}
	}()
	if err = fn(tx); err != nil {
		tx.later, tx.held = nil, nil // the transaction rolls back: what was queued goes with it
		return err
	}
	if !send {
		return nil
	}
	return tx.sendPending()
}
