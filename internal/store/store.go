// Package store opens the database (embedded SQLite or PostgreSQL), applies the
// embedded migrations and hands domain packages a transaction to write in.
//
// Domain packages own their SQL; this package owns only what differs between
// the two databases and how writes are committed. SQL is written once with
// $N placeholders, which both drivers bind by number.
//
// Every state change goes through [DB.Write]. Writes from concurrent callers
// are grouped into one database transaction (group commit), so that many
// changes share one fsync while each change stays atomic with everything it
// causes. See [DB.Write] for the exact guarantees.
//
// Locking: there is one writer at a time, on both databases. SQLite has a
// single writer connection. On PostgreSQL, every write transaction of every
// instance takes one advisory lock first (pg_advisory_xact_lock, sent with
// its first statement, keyed by the schema), so writers take turns as
// SQLite's do. Nothing reads
// rows FOR UPDATE or claims with SKIP LOCKED: a write always sees the state
// the previous write committed, which is what the domain packages' checks
// (the opt-in rules, the ledger head, the outbox claim) rely on. Reads go to
// the read pool and never wait for a writer.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Dialect names the database engine behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is the handle domain packages use. Reads go straight to Read; writes go
// through Write.
type DB struct {
	Dialect Dialect
	// Read is a pool for queries outside a write. On SQLite it is a separate
	// pool of read-only connections, so readers never wait for the writer.
	Read *sql.DB

	write *sql.DB
	path  string        // SQLite only: the database file
	stmts *stmtCache    // SQLite only
	ckpt  *checkpointer // SQLite only
	// readStmts holds the statements ReadRow compiled, by query (SQLite).
	readStmts sync.Map
	batcher   *batcher
	schema    string
	signals   signals
	kept      sync.Map // see Keep
	// handovers are the fenced writes under way and the hand-overs open
	// in this process (see fence.go).
	handovers handovers
	// writeKey, fenceKey and migrateKey are the advisory locks of writes,
	// of the send fence and of migrations on PostgreSQL; (handOverClass,
	// instance) is this instance's hand-over lock there.
	writeKey, fenceKey, migrateKey int64
	handOverClass, instance        int32
}

// Options tunes Open. The zero value is what serve uses.
type Options struct {
	// Schema, on PostgreSQL, is created if missing and put first on the
	// search_path of every connection. Tests use it to isolate themselves.
	Schema string
	// MaxBatch caps how many concurrent writes share one transaction.
	MaxBatch int
	// Log receives what an SQLite database reports besides errors
	// returned: the warnings about its files that other users could
	// read (privateFiles) and a failed background checkpoint
	// (checkpointer); nil: slog.Default().
	Log *slog.Logger
}

// IsPostgresURL reports whether dsn names a PostgreSQL database rather than
// an SQLite file.
func IsPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open connects to the database named by dsn: a postgres:// URL, or the path
// of an SQLite file (created, with its directory, if missing). It does not
// migrate; call Migrate.
func Open(ctx context.Context, dsn string, opt Options) (*DB, error) {
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 256
	}
	var db *DB
	var err error
	if IsPostgresURL(dsn) {
		db, err = openPostgres(ctx, dsn, opt.Schema)
	} else {
		db, err = openSQLite(ctx, dsn, opt.Log)
	}
	if err != nil {
		return nil, err
	}
	if db.Dialect == SQLite {
		db.stmts = newStmtCache()
	}
	db.batcher = newBatcher(db, opt.MaxBatch)
	return db, nil
}

func openSQLite(ctx context.Context, path string, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.Default()
	}
	path = SQLitePath(path)
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create data directory: %w", err)
		}
	}
	if err := privateFiles(path, log); err != nil {
		return nil, err
	}
	// busy_timeout comes first so that the pragmas after it wait rather
	// than fail while another process holds a lock. synchronous=FULL makes
	// an acknowledged consent survive power loss, not only a crash.
	// secure_delete zeroes what is deleted or overwritten, so an erased
	// value does not linger in free pages of the file. temp_store keeps
	// statement journals (the pages a multi-row statement or a savepoint
	// would roll back) in memory: written to a temporary file they cost a
	// system call per page, and would hold copies of personal data on disk.
	others := "&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=secure_delete(1)" +
		"&_pragma=temp_store(MEMORY)"
	pragmas := "_pragma=busy_timeout(10000)" + others
	base := "file:" + (&url.URL{Path: path}).EscapedPath()
	// The writer leaves checkpoints to the checkpointer (checkpoint.go).
	w, err := sql.Open("sqlite", base+"?"+pragmas+"&_pragma=wal_autocheckpoint(0)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", base+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	c, err := sql.Open("sqlite", base+"?_pragma=busy_timeout("+truncateWait+")"+others)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	c.SetMaxOpenConns(1)
	c.SetMaxIdleConns(1)
	return &DB{Dialect: SQLite, Read: r, write: w, path: path, ckpt: newCheckpointer(c, log)}, nil
}

func openPostgres(ctx context.Context, dsn, schema string) (*DB, error) {
	if schema != "" {
		if !validIdent(schema) {
			return nil, fmt.Errorf("store: schema %q: use letters, digits and _", schema)
		}
		boot, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
		_, err = boot.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema)
		boot.Close()
		if err != nil {
			return nil, fmt.Errorf("store: create schema: %w", err)
		}
		u, err := url.Parse(dsn)
		if err != nil {
			return nil, fmt.Errorf("store: postgres url: %w", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to postgres: %w", err)
	}
	out := &DB{Dialect: Postgres, Read: db, write: db, schema: schema}
	// The write lock and the send fence are advisory locks, which hold
	// across a whole database: keyed by the schema, installations in
	// different schemas of one database do not wait for each other.
	var current string
	if err := db.QueryRowContext(pingCtx, "SELECT current_schema()").Scan(&current); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: read the schema: %w", err)
	}
	out.writeKey, out.fenceKey, out.migrateKey = lockKey("write", current), lockKey("fence", current), lockKey("migrate", current)
	// The hand-over locks of the instances on this schema share a class;
	// each instance has a number of its own, at random.
	out.handOverClass = int32(uint64(lockKey("hand-over", current)) >> 33)
	var n [4]byte
	rand.Read(n[:])
	out.instance = int32(binary.BigEndian.Uint32(n[:]) >> 1)
	return out, nil
}

// noJIT is the select-list item that turns PostgreSQL's JIT compilation
// off for the rest of the transaction, for the write transactions and the
// send fence's reads, which must stay short: a statement whose estimated
// cost passes jit_above_cost is compiled first, about 100 ms here, and an
// audience step over a range of ids the planner overestimated was, while
// every consent change waited behind it. Reads elsewhere keep the
// server's setting.
const noJIT = "set_config('jit', 'off', true)"

// lockKey is the advisory lock key of what ("write" or "fence") in schema.
func lockKey(what, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("consentry " + what + " " + schema))
	return int64(h.Sum64())
}

func validIdent(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		if r == '_' || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}

// Close stops accepting writes, waits for those under way and closes the pools.
func (db *DB) Close() error {
	db.batcher.close()
	if db.stmts != nil {
		db.stmts.close()
	}
	db.closeReadStmts()
	err := db.Read.Close()
	if db.ckpt != nil {
		err = errors.Join(err, db.ckpt.close())
	}
	if db.write != db.Read {
		err = errors.Join(err, db.write.Close())
	}
	return err
}

// DropSchema removes the PostgreSQL schema given to Open, with everything in
// it. Tests call it when done; it does nothing on SQLite.
func (db *DB) DropSchema(ctx context.Context) error {
	if db.Dialect != Postgres || db.schema == "" {
		return nil
	}
	_, err := db.Read.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+db.schema+" CASCADE")
	return err
}

// Analyze refreshes PostgreSQL's statistics of tables that a bulk write
// has grown many times over. PostgreSQL plans a statement it has run a few
// times once, for any values, from the statistics of that moment; a lookup
// planned while a table was nearly empty goes on scanning the whole table
// as it grows, until statistics change. The server's own autovacuum does
// this too, but only a minute or more later, and an import writes tens of
// thousands of rows in that time. On SQLite it does nothing: its planner
// uses an index where one serves without statistics.
func (db *DB) Analyze(ctx context.Context, tables ...string) error {
	if db.Dialect != Postgres || len(tables) == 0 {
		return nil
	}
	for _, t := range tables {
		if !validIdent(t) {
			return fmt.Errorf("store: analyze %q: not a table name", t)
		}
	}
	_, err := db.Read.ExecContext(ctx, "ANALYZE "+strings.Join(tables, ", "))
	return err
}

// IsUniqueViolation reports whether err is a unique-constraint failure on
// either database. It lets domain code turn a race on a unique column into a
// conflict error rather than a server error.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "SQLSTATE 23505")
}

// IsForeignKeyViolation reports whether err is a foreign-key failure on
// either database, for example a consent record for a contact that was
// deleted a moment earlier.
func IsForeignKeyViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "FOREIGN KEY constraint failed") || strings.Contains(s, "SQLSTATE 23503")
}

// Micros converts a time to the integer microseconds since the Unix epoch
// that every *_at column holds. Integers compare and index the same way on
// both databases, which the condition language relies on.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// Now reads clock as the database keeps times: in UTC, to the microsecond.
// A time read back from a row then equals the one written. Services take a
// clock (func() time.Time) so that tests can set the time.
func Now(clock func() time.Time) time.Time { return clock().UTC().Truncate(time.Microsecond) }

// FromMicros is the inverse of Micros, in UTC.
func FromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// Querier is what read functions need: a pool or a read transaction.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Snapshot runs fn in a read-only transaction that sees one consistent state
// of the database however long it runs, while writers go on: REPEATABLE
// READ on PostgreSQL, a WAL read transaction on SQLite.
func (db *DB) Snapshot(ctx context.Context, fn func(q Querier) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.Dialect == Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	} else {
		opts = nil // SQLite's snapshot starts with the first read
	}
	tx, err := db.Read.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("store: begin snapshot: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// Checkpoint, on SQLite, copies the write-ahead log into the database file
// and empties it, so that old versions of rows (a value just encrypted,
// say) do not linger in the log. It does nothing on PostgreSQL, where
// VACUUM does the like. It fails, having emptied nothing, while a reader
// still needs the log.
func (db *DB) Checkpoint(ctx context.Context) error {
	if db.Dialect != SQLite {
		return nil
	}
	return db.ckpt.truncate(ctx)
}

// Schema is the PostgreSQL schema given to Open, or "".
func (db *DB) Schema() string { return db.schema }

// Scanner is one row to read: *sql.Row or *sql.Rows.
type Scanner interface{ Scan(dest ...any) error }

// CountBy runs a query whose rows are a key and a count (a GROUP BY) and
// returns them as a map; a key with no rows is absent.
func CountBy(ctx context.Context, q Querier, query string, args ...any) (map[string]int64, error) {
	type pair struct {
		key string
		n   int64
	}
	rows, err := QueryAll(ctx, q, func(row Scanner) (pair, error) {
		var p pair
		return p, row.Scan(&p.key, &p.n)
	}, query, args...)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(rows))
	for _, p := range rows {
		out[p.key] = p.n
	}
	return out, nil
}

// QueryAll runs a query and reads every row with scan. It returns an empty,
// non-nil slice when there are no rows, so that lists encode as [] rather
// than null.
func QueryAll[T any](ctx context.Context, q Querier, scan func(Scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Placeholders returns n numbered placeholders from $first on, separated by
// commas, for an IN list: Placeholders(2, 3) is "$2, $3, $4".
func Placeholders(first, n int) string {
	ph := make([]string, n)
	for i := range ph {
		ph[i] = "$" + strconv.Itoa(first+i)
	}
	return strings.Join(ph, ", ")
}

// In returns the placeholders $first, $first+1, ... for values and the
// values as arguments, for a statement on a batch: "id IN (" + ph + ")".
func In(first int, values []string) (ph string, args []any) {
	args = make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	return Placeholders(first, len(values)), args
}

// Rows returns the VALUES list of a multi-row INSERT of n rows shaped as
// row, in which each ? is a parameter, "(?, ?, 'queued', ?)" say; the
// arguments go row after row. On PostgreSQL the parameters are numbered
// $1, $2, ...; on SQLite they stay ?, which it binds in order: SQLite
// looks a numbered parameter's name up in a list, which for the thousands
// of parameters of a big INSERT costs more than the INSERT itself.
func Rows(d Dialect, n int, row string) string {
	rows := strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
	if d != Postgres {
		return rows
	}
	var b strings.Builder
	k := 0
	for _, c := range rows {
		if c == '?' {
			k++
			b.WriteString("$" + strconv.Itoa(k))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// InList returns what goes between the parentheses of "x IN (...)" for
// values, as parameters numbered from first, and their arguments. On
// SQLite the values go as one JSON array read by json_each: SQLite looks
// each numbered parameter's name up in a list, which for hundreds of them
// costs more than the query. Values must be strings or integers.
func InList[T string | int64](d Dialect, first int, values []T) (string, []any) {
	if d == SQLite {
		b, _ := json.Marshal(values)
		return fmt.Sprintf("SELECT value FROM json_each($%d)", first), []any{string(b)}
	}
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	return Placeholders(first, len(values)), args
}
