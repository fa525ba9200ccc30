package requests

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/store"
)

// RefuseUnconfirmedTx refuses, with reason and as actor, the requests of
// channel that actor recorded and that are still received (never
// verified) though received before before: requests by email whose sender
// never followed the confirmation link, which may well have been forged
// (GDPR Art. 12(6): the controller cannot identify who asked). Each gets
// its ledger event. It returns how many it refused; none is not an error.
func RefuseUnconfirmedTx(tx *store.Tx, channel string, actor consent.Actor, before time.Time, reason string, now time.Time) (int, error) {
	open, err := store.QueryAll(context.Background(), tx, scan, `SELECT `+columns+` FROM subject_requests
		WHERE channel = $1 AND status = $2 AND received_at < $3 AND actor_kind = $4 AND actor_id = $5 AND closed_at IS NULL
		ORDER BY received_at, id LIMIT 500`, channel, StatusReceived, store.Micros(before), actor.Kind, actor.ID)
	if err != nil {
		return 0, fmt.Errorf("requests: read unconfirmed: %w", err)
	}
	for _, r := range open {
		r.Status, r.Reason = StatusRefused, reason
		if err := save(tx, r, now); err != nil {
			return 0, err
		}
		if err := appendEvent(tx, r, actor, now); err != nil {
			return 0, err
		}
	}
	return len(open), nil
}
