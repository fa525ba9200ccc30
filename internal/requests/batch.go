package requests

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// WithOpenTx returns which of the contacts in ids have an open request of
// kind, inside tx, so that a batch (an erasure of many contacts) moves on
// only theirs; none is an empty map.
func WithOpenTx(tx *store.Tx, ids []string, kind string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	ph, args := store.In(2, ids)
	found, err := store.QueryAll(context.Background(), tx, func(row store.Scanner) (string, error) {
		var id string
		return id, row.Scan(&id)
	}, `SELECT DISTINCT contact_id FROM subject_requests WHERE kind = $1 AND closed_at IS NULL AND contact_id IN (`+ph+`)`,
		append([]any{kind}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("requests: read open: %w", err)
	}
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

// ForgetAddressesTx erases, inside tx, the addresses kept on requests
// when the personal data of the contacts in ids, whose addresses were
// addresses, is erased: on every request of theirs that still holds one
// (an open request received from the address before it was linked to the
// contact), and on every request from one of addresses that is about no
// contact (received while the address was no contact's, or never linked
// to the contact who had it). Each keeps its id, kind, status, note and
// ledger events, and records when its address went (address_erased_at),
// so that the operator can still answer and close it. Requests that hold
// no address are left as they are.
func ForgetAddressesTx(tx *store.Tx, ids, addresses []string, now time.Time) error {
	at := store.Micros(now)
	if len(ids) > 0 {
		ph, args := store.In(2, ids)
		if err := tx.ExecLater(store.Prefix("requests: forget addresses"), `UPDATE subject_requests
			SET address = '', address_key = '', address_erased_at = $1 WHERE contact_id IN (`+ph+`) AND address <> ''`,
			append([]any{at}, args...)...); err != nil {
			return err
		}
	}
	keys := make([]string, 0, len(addresses))
	for _, a := range addresses {
		if k := strings.ToLower(strings.TrimSpace(a)); k != "" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	ph, args := store.In(2, keys)
	return tx.ExecLater(store.Prefix("requests: forget addresses"), `UPDATE subject_requests
		SET address = '', address_key = '', address_erased_at = $1 WHERE contact_id = '' AND address_key IN (`+ph+`) AND address <> ''`,
		append([]any{at}, args...)...)
}
