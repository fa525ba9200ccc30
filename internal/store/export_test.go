package store

import "context"

// FenceWaited reports whether a fenced write is waiting for the send fence
// to commit: on SQLite a waiting writer keeps new shared holders out, on
// PostgreSQL its advisory lock shows in pg_locks as not granted.
func FenceWaited(ctx context.Context, db *DB) (bool, error) {
	if db.Dialect == SQLite {
		if db.fence.TryRLock() {
			db.fence.RUnlock()
			return false, nil
		}
		return true, nil
	}
	var waiting bool
	err := db.Read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
		AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1)`, db.fenceKey).Scan(&waiting)
	return waiting, err
}
