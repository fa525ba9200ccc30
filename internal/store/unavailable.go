package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/consentry/consentry/internal/errs"
)

// Unavailable returns err as an errs.KindUnavailable error when it says
// the database cannot take the request now, for a reason that passes by
// itself or by an operator's hand rather than by the caller's: PostgreSQL
// cannot be reached, is shutting down or starting, or has no connection
// left; SQLite's disk is full. Front ends answer it with 503 and a
// Retry-After, rather than an internal error. Nothing was written: a write
// that fails so is rolled back whole. Any other err is returned as it is.
func Unavailable(err error) error {
	if err == nil || errs.As(err) != nil {
		return err
	}
	switch {
	case diskFull(err):
		return errs.Unavailable("the database's disk is full; nothing was written. Try again once the operator has freed space.", err)
	case unreachable(err):
		return errs.Unavailable("the database cannot be reached; nothing was written. Try again shortly.", err)
	}
	return err
}

func diskFull(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "53100" // disk_full
}

func unreachable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// A request that ran out of time, or whose caller went away, is
		// not a database that is down (though a context error is a
		// net.Error): a slow query stays a failure to look into.
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) == 5 && pe.Code[:2] == "08": // connection exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", pe.Code == "53300":
			// admin_shutdown, crash_shutdown, cannot_connect_now,
			// too_many_connections
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		pgconn.SafeToRetry(err)
}
