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
	return t.tx.StmtContext(t.sctx, st)
}

// ReadRow runs query on the read pool and returns its one row, as
// Read.QueryRowContext does, for the few reads on the path of every change
// (a purpose or a source looked up by its name). On SQLite the statement
// is compiled once for each read connection and kept, rather than once
// for each call; compiling costs more than running a lookup this small.
// query must be a constant: every distinct query is kept until Close. An
// error preparing it is returned by the row's Scan.
func (db *DB) ReadRow(ctx context.Context, query string, args ...any) Scanner {
	if db.Dialect != SQLite {
		return db.Read.QueryRowContext(ctx, query, args...)
	}
	if st, ok := db.readStmts.Load(query); ok {
		return st.(*sql.Stmt).QueryRowContext(ctx, args...)
	}
	st, err := db.Read.PrepareContext(ctx, query)
	if err != nil {
		return errRow{err}
	}
	if kept, loaded := db.readStmts.LoadOrStore(query, st); loaded {
		st.Close()
		st = kept.(*sql.Stmt)
	}
	return st.QueryRowContext(ctx, args...)
}

// errRow is a row whose Scan returns err.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// closeReadStmts releases the statements ReadRow kept.
func (db *DB) closeReadStmts() {
	db.readStmts.Range(func(k, st any) bool {
		st.(*sql.Stmt).Close()
		db.readStmts.Delete(k)
		return true
	})
}
