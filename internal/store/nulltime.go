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
