package store

import "sync"

// HoldPresence says, for as long as this process holds it, that a worker
// called name is alive on this database (package jobs: a job runner), in
// a way the operating system ends when the process ends, however it ends
// (kill -9 included). When no other holder is alive as it is taken, it
// first runs ifAlone, while no other can join, and reports alone: what an
// earlier holder left marked as in hand (a job it was running) was left
// by a process that is gone, and ifAlone may take it up at once rather
// than when a lease runs out. It returns the release of the presence.
//
// On SQLite the presence is a flock(2) on a file beside the database's,
// named after it ("consentry.db-jobs.lock" for name "jobs"): held shared
// by every holder, and exclusive while ifAlone runs; a second holder in
// the same process counts as another. On PostgreSQL, or where the system
// has no flock, alone is always false and ifAlone never runs: several
// instances share a PostgreSQL database, and a presence held through a
// connection would also end for a live instance that lost its connection
// for a while, whose work would then be taken from it.
//
// An error from ifAlone is returned, with alone false; the presence is
// held all the same. An error taking the presence returns a release that
// does nothing.
func (db *DB) HoldPresence(name string, ifAlone func() error) (release func(), alone bool, err error) {
	if db.Dialect != SQLite || db.path == "" {
		return func() {}, false, nil
	}
	unlock, alone, err := presence(db.path+"-"+name+".lock", ifAlone)
	if unlock == nil {
		return func() {}, false, err
	}
	var once sync.Once
	return func() { once.Do(unlock) }, alone, err
}
