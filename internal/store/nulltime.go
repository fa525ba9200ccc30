package store

import (
	"database/sql"
	"time"
)

// FromNullMicros is FromMicros for a nullable column: nil for NULL, the
// time it holds otherwise.
func FromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := FromMicros(v.Int64)
	return &t
}

// Age is how long before now the time us (microseconds, as stored) was,
// 0 when us is NULL (the MIN of no rows) or not before now.
func Age(now time.Time, us sql.NullInt64) time.Duration {
	if !us.Valid {
		return 0
	}
	return max(now.Sub(FromMicros(us.Int64)), 0)
}
