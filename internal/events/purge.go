package events

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// PurgeTx deletes up to limit events that happened before before, that
// every consumer has read, and whose seq is below keepFrom when that is
// above 0 (a consumer still needing older events, such as a webhook
// delivery waiting to be sent, says so through it). It returns how many
// it deleted.
func PurgeTx(tx *store.Tx, before time.Time, keepFrom int64, limit int) (int64, error) {
	var read sql.NullInt64
	if err := tx.QueryRow(`SELECT MIN(position) FROM event_cursors`).Scan(&read); err != nil {
		return 0, fmt.Errorf("events: purge: %w", err)
	}
	upTo := int64(1<<63 - 1) // with no consumer, nothing is waiting to be read
	if read.Valid {
		upTo = read.Int64
	}
	if keepFrom > 0 {
		upTo = min(upTo, keepFrom-1)
	}
	res, err := tx.Exec(`DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE occurred_at < $1 AND seq <= $2 ORDER BY seq LIMIT $3)`,
		store.Micros(before), upTo, limit)
	if err != nil {
		return 0, fmt.Errorf("events: purge: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
