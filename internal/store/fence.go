package store

import (
	"context"
	"database/sql"
	"fmt"
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
	if t.db.Dialect == Postgres {
		t.later = append(t.later, laterStmt{query: "SELECT pg_advisory_xact_lock($1)", args: []any{t.db.fenceKey},
			wrap: Prefix("store: take send fence"), ofTx: true})
		return
	}
	t.db.fence.Lock()
}

func (t *Tx) unlockFence() {
	if t.fenced && t.db.Dialect == SQLite {
		t.db.fence.Unlock()
	}
}

// HoldFence runs fn while holding the send fence shared. fn reads through
// q, which sees every fenced change committed before the fence was taken;
// no fenced change commits until fn returns. fn must not write: writers
// wait for it.
func (db *DB) HoldFence(ctx context.Context, fn func(q Querier) error) error {
	if db.Dialect == SQLite {
		db.fence.RLock()
		defer db.fence.RUnlock()
		return fn(db.Read)
	}
	tx, err := db.Read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("store: hold send fence: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock_shared($1)", db.fenceKey); err != nil {
		return fmt.Errorf("store: hold send fence: %w", err)
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
