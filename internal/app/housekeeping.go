package app

import (
	"context"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/idempotency"
	"github.com/consentry/consentry/internal/inbound"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/webform"
)

// keep is how long finished work is kept before housekeeping deletes it.
const keep = 30 * 24 * time.Hour

// housekeeping deletes what has served its purpose, once older than keep:
// finished jobs, link tokens that expired or were used, dev-mailbox
// messages, request confirmations sent to strangers' addresses, and
// webform posts held for confirmation that were applied, superseded or
// whose link expired (a held post holds personal data); and the daily
// limits of requests by email once their day is over, and idempotency keys
// once expired. Each package deletes its own.
func housekeeping(ctx context.Context, db *store.DB, now time.Time) error {
	before := now.Add(-keep)
	return db.Write(ctx, func(tx *store.Tx) error {
		for _, purge := range []func(*store.Tx, time.Time) error{jobs.PurgeTx, auth.PurgeContactTokensTx, auth.PurgeRequestTokensTx, mail.PurgeMailboxTx,
			mail.PurgeRequestConfirmationsTx} {
			if err := purge(tx, before); err != nil {
				return err
			}
		}
		if err := inbound.PurgeTx(tx, now); err != nil {
			return err
		}
		if err := idempotency.PurgeTx(tx, now); err != nil {
			return err
		}
		_, err := webform.DeleteEndedTx(tx, now.Add(-keep))
		return err
	})
}
