package app

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/webform"
)

// keep is how long finished work is kept before housekeeping deletes it.
const keep = 30 * 24 * time.Hour

// housekeeping deletes what has served its purpose: finished jobs, link
// tokens that expired or were used, dev-mailbox messages, and webform posts
// held for confirmation that were applied, superseded or whose link
// expired, once they are older than keep. A link token's hash alone names
// nobody, but a used token has no reason to stay; a held post holds
// personal data.
func housekeeping(ctx context.Context, db *store.DB, now time.Time) error {
	before := store.Micros(now.Add(-keep))
	return db.Write(ctx, func(tx *store.Tx) error {
		for _, q := range []string{
			`DELETE FROM jobs WHERE status IN ('done', 'failed') AND finished_at < $1`,
			`DELETE FROM tokens WHERE expires_at < $1 OR used_at < $1`,
			`DELETE FROM mailbox WHERE delivered_at < $1`,
		} {
			if _, err := tx.Exec(q, before); err != nil {
				return fmt.Errorf("housekeeping: %w", err)
			}
		}
		_, err := webform.DeleteEndedTx(tx, now.Add(-keep))
		return err
	})
}
