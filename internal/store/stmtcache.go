package store

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps the SQLite writer connection's statements compiled. The
// SQLite driver compiles every statement anew, and for the short
// statements of a write, compiling costs more than running them. A
// statement seen twice in writes is prepared on the writer once the
// connection is free between transactions, and later transactions run it
// through database/sql's Tx.Stmt, which reuses what was prepared on that
// connection. PostgreSQL needs none of this: pgx caches prepared statements
// itself.
type stmtCache struct {
	mu      sync.Mutex
	ready   map[string]*sql.Stmt
	seen    map[string]bool // seen once; a second sighting queues it
	pending []string
}

// cacheLimits bound memory: dynamic statements (conditions, IN lists of
// varying length) may each be seen twice, but only so many are kept.
const (
	maxCachedStmts = 256
	maxSeenStmts   = 4096
)

func newStmtCache() *stmtCache {
	return &stmtCache{ready: map[string]*sql.Stmt{}, seen: map[string]bool{}}
}

// get returns the prepared statement for query, or nil after noting the
// sighting.
func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.ready[query]; st != nil {
		return st
	}
	if len(c.ready)+len(c.pending) >= maxCachedStmts {
		return nil
	}
	if !c.seen[query] {
		if len(c.seen) >= maxSeenStmts {
			clear(c.seen)
		}
		c.seen[query] = true
		return nil
	}
	delete(c.seen, query)
	c.pending = append(c.pending, query)
	return nil
}

// prepare compiles the queued statements on db, whose one connection must
// be free. A statement that fails to compile is dropped: it runs uncached,
// and its error surfaces there.
func (c *stmtCache) prepare(db *sql.DB) {
	c.mu.Lock()
	queue := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, q := range queue {
		st, err := db.PrepareContext(context.Background(), q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		c.ready[q] = st
		c.mu.Unlock()
	}
}

// close releases every prepared statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.ready {
		st.Close()
	}
	clear(c.ready)
}

// stmt returns the transaction's handle on the cached statement for query,
// or nil to run it uncached.
func (t *Tx) stmt(query string) *sql.Stmt {
	if t.db.stmts == nil {
		return nil
	}
	st := t.db.stmts.get(query)
	if st == nil {
		return nil
	}
	return t.tx.StmtContext(t.ctx, st)
}
