package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// The send fence orders two things that must never cross: a change that
// can stop email to a contact (an opt-out, a withdrawal, a request to stop
// processing or to be erased, an unsubscribe, a bounce) committing, and a
// campaign message to that contact being handed to the mail server.
//
// A sender holds the fence shared while it reads its recipients' state and
// hands their messages over; a write transaction that calls Tx.Fence takes
// it exclusively just before COMMIT and lets go once committed. So a
// change that commits first is seen by the sender's read, and a change
// that comes while messages are being handed over commits only after
// they are. The wait is bounded by a sender's batch, which senders keep
// short. Everything else, reads and other writes, ignores the fence.
//
// On SQLite every writer is this process, so the fence is a read-write
// lock. On PostgreSQL it is an advisory lock (keyed by the schema), so it
// holds across instances.

// Fence makes the transaction take the send fence before it commits: call
// it from every change that can stop email to a contact. Calling it more
// than once costs nothing more.
func (t *Tx) Fence() {
	if t.fenced {
		return
	}
	t.fenced = true
}

// lockFence takes the fence for a fenced transaction about to commit. On
// PostgreSQL the lock goes in the round trip that sends the last queued
// statements, and COMMIT or ROLLBACK releases it; on SQLite unlockFence
// does, once COMMIT has returned.
func (t *Tx) lockFence() {
	if !t.fenced {
		return
	}
	t.db.fenceWant.want()
	if t.db.Dialect == Postgres {
		t.later = append(t.later, laterStmt{query: "SELECT pg_advisory_xact_lock($1)", args: []any{t.db.fenceKey},
			wrap: Prefix("store: take send fence"), ofTx: true})
		return
	}
	t.db.fence.Lock()
}

func (t *Tx) unlockFence() {
	if !t.fenced {
		return
	}
	if t.db.Dialect == SQLite {
		t.db.fence.Unlock()
	}
	t.db.fenceWant.done()
}

// ErrFenceWanted is the cause of HoldFence's wanted context once a fenced
// change is waiting for the fence.
var ErrFenceWanted = errors.New("store: a change is waiting for the send fence")

// fenceWant tells this instance's fence holders that a fenced change is
// waiting, so that they let go early: the change then waits for the
// messages already begun, not for a sender's whole batch. A holder coming
// while a change waits lets it go first.
type fenceWant struct {
	mu      sync.Mutex
	waiting int           // fenced changes taking or holding the fence
	idle    chan struct{} // closed when waiting drops to 0
	next    int
	holders map[int]context.CancelCauseFunc
}

// want tells every holder that a fenced change is about to wait.
func (f *fenceWant) want() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.waiting == 0 {
		f.idle = make(chan struct{})
	}
	f.waiting++
	for _, cancel := range f.holders {
		cancel(ErrFenceWanted)
	}
}

// done is the end of a change that called want.
func (f *fenceWant) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waiting--
	if f.waiting == 0 {
		close(f.idle)
	}
}

// settled returns once no fenced change of this instance is waiting, or
// with ctx's error.
func (f *fenceWant) settled(ctx context.Context) error {
	f.mu.Lock()
	idle, waiting := f.idle, f.waiting
	f.mu.Unlock()
	if waiting == 0 {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hold registers a holder; its context is done at once if a fenced
// change is already waiting (the holder may have got the fence first).
// The returned function unregisters it.
func (f *fenceWant) hold(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	f.mu.Lock()
	if f.holders == nil {
		f.holders = map[int]context.CancelCauseFunc{}
	}
	id := f.next
	f.next++
	f.holders[id] = cancel
	waiting := f.waiting > 0
	f.mu.Unlock()
	if waiting {
		cancel(ErrFenceWanted)
	}
	return ctx, func() {
		f.mu.Lock()
		delete(f.holders, id)
		f.mu.Unlock()
		cancel(nil)
	}
}

// HoldFence runs fn while holding the send fence shared. fn reads through
// q, which sees every fenced change committed before the fence was taken;
// no fenced change commits until fn returns. fn must not write: writers
// wait for it.
//
// wanted is done (with cause ErrFenceWanted) once a fenced change of this
// instance is waiting for the fence: fn should then begin nothing more
// and return, so that the change waits only for what was begun. Reads
// through q use ctx, not wanted. A change made by another instance on
// PostgreSQL is not signalled; it waits for fn to return, which senders
// keep short.
func (db *DB) HoldFence(ctx context.Context, fn func(q Querier, wanted context.Context) error) error {
	if err := db.fenceWant.settled(ctx); err != nil {
		return err
	}
	if db.Dialect == SQLite {
		db.fence.RLock()
		defer db.fence.RUnlock()
		wanted, done := db.fenceWant.hold(ctx)
		defer done()
		return fn(db.Read, wanted)
	}
	tx, err := db.Read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("store: hold send fence: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock_shared($1), "+noJIT, db.fenceKey); err != nil {
		return fmt.Errorf("store: hold send fence: %w", err)
	}
	wanted, done := db.fenceWant.hold(ctx)
	defer done()
	if err := fn(tx, wanted); err != nil {
		return err
	}
	return tx.Commit()
}
