package store

// HandOverWaits is how many fenced writes of this process wait for a
// message being handed over to end before they run again.
func HandOverWaits(db *DB) int {
	db.handovers.mu.Lock()
	defer db.handovers.mu.Unlock()
	return db.handovers.waits
}

// HandOverClass is the class of the hand-over locks of db's schema on
// PostgreSQL.
func HandOverClass(db *DB) int32 { return db.handOverClass }

// MigrateKey is the advisory lock of migrations of db's schema on
// PostgreSQL.
func MigrateKey(db *DB) int64 { return db.migrateKey }
