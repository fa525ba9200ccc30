package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// On SQLite every commit appends the pages it changed to the write-ahead
// log, and a checkpoint copies them back into the database file so that
// the log can start again from its beginning. SQLite's own automatic
// checkpoint runs inside the commit that takes the log past 1,000 pages:
// the writer copies a few megabytes and waits for their fsync while every
// other write waits behind it. An import spends about a fifth of its time
// there.
//
// The checkpointer moves that work off the writer. The writer's connection
// checkpoints nothing by itself (wal_autocheckpoint=0); after each commit
// the batcher wakes the checkpointer, which copies what the log holds from
// a connection of its own (a PASSIVE checkpoint, which never blocks the
// writer or a reader). The log can only start again when it has been
// copied whole and a write begins, and a writer that keeps writing while
// the copy runs always leaves a few frames behind; so once the log is past
// restartPages, the batcher copies that remainder itself, between two
// transactions, and the next transaction starts the log again. What it
// copies then is a commit or two rather than the whole log.
//
// A reader that holds an old snapshot keeps the log from starting again
// however it is checkpointed, as with SQLite's own checkpoint; the log
// grows meanwhile and starts again once the reader is done.
type checkpointer struct {
	conn *sql.DB
	kick chan struct{}
	// due is set when the log is long enough that the writer should copy
	// the rest itself (writerCheckpoint).
	due atomic.Bool
	// mu is held by whoever checkpoints, so that two checkpoints of this
	// process never meet: SQLite lets one run at a time, and a second
	// returns at once having copied nothing.
	mu   sync.Mutex
	quit chan struct{}
	once sync.Once
	wg   sync.WaitGroup
	log  *slog.Logger
}

// restartPages is the log's length, in pages, past which the writer
// finishes the copy so that the log starts again: 4,096 pages of 4 KiB,
// a log of 16 MiB at most between restarts under steady writing.
const restartPages = 4096

// truncateWait is how long an emptying of the log (truncate) waits for
// readers, holding back writes meanwhile: the connection's busy_timeout.
const truncateWait = "1000"

func newCheckpointer(conn *sql.DB, log *slog.Logger) *checkpointer {
	c := &checkpointer{conn: conn, kick: make(chan struct{}, 1), quit: make(chan struct{}), log: log}
	c.wg.Add(1)
	go c.loop()
	return c
}

// wake asks for a checkpoint after a commit; it never waits.
func (c *checkpointer) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) loop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.quit:
			return
		case <-c.kick:
		}
		c.mu.Lock()
		pages, err := passiveCheckpoint(context.Background(), c.conn)
		c.mu.Unlock()
		if err != nil {
			// Nothing is lost: the log keeps what was not copied, and the
			// next commit tries again.
			c.log.Warn("store: checkpoint the write-ahead log", "err", err)
			continue
		}
		if pages >= restartPages {
			c.due.Store(true)
		}
	}
}

// writerCheckpoint, run by the batcher on the writer's connection between
// two transactions, copies what the background checkpoint left when the
// log is long, so that the next transaction starts the log again. It
// never waits: while the background checkpoint runs it leaves the copy
// for after the next commit.
func (c *checkpointer) writerCheckpoint(w *sql.DB) {
	if !c.due.Load() || !c.mu.TryLock() {
		return
	}
	defer c.mu.Unlock()
	c.due.Store(false)
	if _, err := passiveCheckpoint(context.Background(), w); err != nil {
		c.log.Warn("store: checkpoint the write-ahead log", "err", err)
	}
}

// truncate copies the whole log into the database file and empties it,
// after a checkpoint under way in the background. It fails when a reader
// still needs the log after truncateWait: new writes wait meanwhile, as
// SQLite holds them back while it waits for readers to move on.
func (c *checkpointer) truncate(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var busy, pages, copied int
	if err := c.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &pages, &copied); err != nil {
		return err
	}
	if busy != 0 {
		return fmt.Errorf("store: the write-ahead log could not be emptied: a reader still needs %d of its %d pages", pages-copied, pages)
	}
	return nil
}

func (c *checkpointer) close() error {
	var err error
	c.once.Do(func() {
		close(c.quit)
		c.wg.Wait()
		err = c.conn.Close()
	})
	return err
}

// passiveCheckpoint copies into the database file the frames of the log
// that no reader still needs, without waiting for anyone, and returns the
// log's length in pages.
func passiveCheckpoint(ctx context.Context, q *sql.DB) (pages int, err error) {
	var busy, copied int
	err = q.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &pages, &copied)
	return pages, err
}
