package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
)

// The send fence orders two things that must never cross: a change that
// can stop email to a contact (an opt-out, a withdrawal, a request to stop
// processing or to be erased, an unsubscribe, a bounce, a legal hold, a
// deletion) committing, and a campaign message to that contact being
// handed to the mail server. No message to a contact reaches the mail
// server after such a change has committed; yet neither a change nor the
// database writer ever waits for a mail server on behalf of another
// contact.
//
// A sender opens a hand-over (DB.StartHandOver) for a batch: it names the
// batch's contacts first, then reads their state, and then begins each
// message through the hand-over (HandOver.Begin) and ends it (End) once
// the mail server has answered. A write transaction that can stop email
// names its contacts (Tx.Fence). For each of them, in this process:
//
//   - a message not begun yet will not begin: Begin says no, and the
//     sender reads the contact's state again in a later batch, where the
//     change is committed (or rolled back);
//   - a message begun and not ended makes the change wait for it: the
//     change's write function fails with errHandingOver, Write waits,
//     outside the writer, for that message to end, then runs the function
//     again. Other writes, and changes for other contacts, go on
//     meanwhile;
//   - a hand-over that names the contact while the change is under way
//     (from its Fence to the end of its Write) will not begin its message
//     either; one that names it after the change committed reads the
//     change.
//
// On PostgreSQL several instances may send. A hand-over also holds its
// instance's hand-over lock (an advisory lock, shared, for as long as it
// is open), and reads its contacts' state under the fence lock (another
// advisory lock, shared, for the read only). A fenced transaction takes
// the fence lock exclusively just before COMMIT, so no instance reads
// state meanwhile, and then waits for every other instance's open
// hand-overs to close: a change made through one instance waits, in the
// writer, for the batches other instances are handing over (their own
// contacts are handled as above, in their process). Within an instance,
// and on SQLite (where this process is the only sender), no change waits
// for a message to another contact.

// Fence makes the transaction one that can stop email to the contacts in
// contactIDs: call it from every such change, in its write function (not
// a BeforeCommit hook), with the contacts it changes. Calling it again
// with the same contacts costs nothing more.
//
// A message to one of them that a hand-over of this process has begun and
// not ended makes the write function fail (whatever it returns) with an
// error that Write handles by waiting for that message, outside the
// writer, and running the function again; the caller never sees it.
func (t *Tx) Fence(contactIDs ...string) {
	t.fenced = true
	if t.req == nil || t.failed != nil {
		return
	}
	if err := t.db.handovers.want(t.req.wants, contactIDs); err != nil {
		t.failed, t.failedBy = err, t.fn
	}
}

// lockFence, on PostgreSQL, takes the fence lock for a fenced transaction
// about to commit and waits for the hand-overs other instances have open:
// both go in the round trip that sends the last queued statements, and
// COMMIT or ROLLBACK releases them. On SQLite there is nothing to take:
// the hand-overs of this process are ordered by Fence.
func (t *Tx) lockFence() {
	if !t.fenced || t.db.Dialect != Postgres {
		return
	}
	t.later = append(t.later,
		laterStmt{query: "SELECT pg_advisory_xact_lock($1)", args: []any{t.db.fenceKey}, wrap: Prefix("store: take send fence"), ofTx: true},
		laterStmt{query: `SELECT pg_advisory_xact_lock(l.classid::int4, l.objid::int4) FROM pg_locks l
			WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.granted AND l.classid::int4 = $1 AND l.objid::int4 <> $2
				AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
			args: []any{t.db.handOverClass, t.db.instance}, wrap: Prefix("store: wait for other instances' hand-overs"), ofTx: true})
}

// errHandingOver is a fenced write function's outcome while a message to
// one of its contacts is being handed over in this process: Write waits
// for those messages to end, then runs the function again.
type errHandingOver struct{ ended []<-chan struct{} }

func (e *errHandingOver) Error() string {
	return "store: a message to the contact is being handed to the mail server"
}

// wait returns once every message e waits for has ended, or with ctx's
// error.
func (e *errHandingOver) wait(ctx context.Context) error {
	for _, c := range e.ended {
		select {
		case <-c:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// handovers is this process's record of what fenced writes are under way
// and of the hand-overs open, by contact.
type handovers struct {
	mu     sync.Mutex
	wanted map[string]int // contacts fenced writes under way stop email to, with how many such writes
	open   map[*HandOver]struct{}
	// waits counts the fenced writes waiting for a message to end (tests
	// read it).
	waits int
}

// wants is what one Write has fenced: held from the first Fence until the
// Write returns, across its tries.
type wants map[string]bool

// want records that the Write of w stops email to ids, stops every
// message to them that an open hand-over has not begun, and returns
// errHandingOver with the messages to them that are begun and not ended.
func (h *handovers) want(w wants, ids []string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.wanted == nil {
		h.wanted = map[string]int{}
	}
	var busy *errHandingOver
	for _, id := range ids {
		if !w[id] {
			w[id] = true
			h.wanted[id]++
		}
		for ho := range h.open {
			m := ho.msgs[id]
			switch {
			case m == nil:
			case m.active > 0:
				if busy == nil {
					busy = &errHandingOver{}
				}
				busy.ended = append(busy.ended, m.ended)
			case !m.begun:
				m.stopped = true
			}
		}
	}
	if busy != nil {
		return busy
	}
	return nil
}

// release ends what w wanted, once its Write has returned.
func (h *handovers) release(w wants) {
	if len(w) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for id := range w {
		if h.wanted[id]--; h.wanted[id] <= 0 {
			delete(h.wanted, id)
		}
	}
}

func (h *handovers) waiting(delta int) {
	h.mu.Lock()
	h.waits += delta
	h.mu.Unlock()
}

// HandOver is a sender's batch being handed to the mail server: the
// contacts it read the state of, and the message to each. Begin and End
// may be called from several goroutines; Close when the batch is done.
type HandOver struct {
	db   *DB
	msgs map[string]*message
	// conn, on PostgreSQL, holds this instance's hand-over lock while the
	// hand-over is open.
	conn *sql.Conn
}

type message struct {
	stopped bool          // a fenced write wants the contact: it does not begin
	begun   bool          // begun at least once
	active  int           // begun and not ended
	ended   chan struct{} // closed when active drops to 0
}

// StartHandOver opens a hand-over for the contacts in contactIDs and reads
// their state with read, which reads through q and sees every fenced
// change committed before it, and none committed after that the
// hand-over would not stop (see Fence). read must not write, nor talk to
// a mail server: on PostgreSQL it runs under the fence lock, which fenced
// commits wait for. The hand-over is open once StartHandOver returns
// without error; Close it when its messages are done.
func (db *DB) StartHandOver(ctx context.Context, contactIDs []string, read func(q Querier) error) (*HandOver, error) {
	ho := &HandOver{db: db, msgs: make(map[string]*message, len(contactIDs))}
	h := &db.handovers
	h.mu.Lock()
	for _, id := range contactIDs {
		ho.msgs[id] = &message{stopped: h.wanted[id] > 0}
	}
	if h.open == nil {
		h.open = map[*HandOver]struct{}{}
	}
	h.open[ho] = struct{}{}
	h.mu.Unlock()
	if err := ho.read(ctx, read); err != nil {
		ho.Close()
		return nil, err
	}
	return ho, nil
}

func (ho *HandOver) read(ctx context.Context, read func(q Querier) error) error {
	db := ho.db
	if db.Dialect == SQLite {
		return read(db.Read)
	}
	conn, err := db.Read.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: start hand-over: %w", err)
	}
	ho.conn = conn
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("store: start hand-over: %w", err)
	}
	defer tx.Rollback()
	// The instance's lock is taken as the state is read, under the fence
	// lock: a fenced commit of another instance that comes after the read
	// waits for this hand-over to close.
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock_shared($1), pg_advisory_lock_shared($2, $3), "+noJIT,
		db.fenceKey, db.handOverClass, db.instance); err != nil {
		return fmt.Errorf("store: start hand-over: %w", err)
	}
	if err := read(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Begin reports whether the message to contactID may begin now: false
// when a fenced write wants the contact (the message is then not begun;
// read the contact's state again later), or when the contact is not one
// of the hand-over's. A message begun must be ended with End.
func (ho *HandOver) Begin(contactID string) bool {
	h := &ho.db.handovers
	h.mu.Lock()
	defer h.mu.Unlock()
	m := ho.msgs[contactID]
	if m == nil || m.stopped {
		return false
	}
	if m.active == 0 {
		m.ended = make(chan struct{})
	}
	m.begun = true
	m.active++
	return true
}

// End says the message to contactID that Begin let begin is over (the
// mail server took it, refused it, or the connection broke): a fenced
// write that waits for it goes on.
func (ho *HandOver) End(contactID string) {
	h := &ho.db.handovers
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := ho.msgs[contactID]; m != nil && m.active > 0 {
		if m.active--; m.active == 0 {
			close(m.ended)
		}
	}
}

// Close closes the hand-over: messages begun and not ended are taken as
// ended, and on PostgreSQL the instance's hand-over lock is let go.
func (ho *HandOver) Close() error {
	h := &ho.db.handovers
	h.mu.Lock()
	for _, m := range ho.msgs {
		if m.active > 0 {
			m.active = 0
			close(m.ended)
		}
	}
	delete(h.open, ho)
	h.mu.Unlock()
	if ho.conn == nil {
		return nil
	}
	conn := ho.conn
	ho.conn = nil
	_, err := conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock_shared($1, $2)", ho.db.handOverClass, ho.db.instance)
	if err != nil {
		// A session that may still hold the lock must not go back to
		// the pool: closing it lets the lock go.
		conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return errors.Join(err, conn.Close())
}
