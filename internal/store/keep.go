package store

// Keep holds v under key for as long as db is open, for values that are
// read once and never change afterwards, such as an installation's keys:
// hot write paths then use them without a read. Packages use their own
// unexported key types, as with Tx.SetLocal.
func (db *DB) Keep(key, v any) { db.kept.Store(key, v) }

// Kept returns the value kept under key (Keep), or nil.
func (db *DB) Kept(key any) any {
	v, _ := db.kept.Load(key)
	return v
}

// Kept is DB.Kept for the transaction's database.
func (t *Tx) Kept(key any) any { return t.db.Kept(key) }

// KeepAfterCommit keeps v under key (DB.Keep) once the transaction has
// committed, so that a value written in a transaction that rolls back is
// never kept.
func (t *Tx) KeepAfterCommit(key, v any) { t.AfterCommit(func() { t.db.Keep(key, v) }) }
