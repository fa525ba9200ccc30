package requests

import (
	"context"
	"fmt"

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

// ForgetAddressesManyTx is ForgetAddressesTx for each contact in ids, in
// one statement.
func ForgetAddressesManyTx(tx *store.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ph, args := store.In(1, ids)
	return tx.ExecLater(store.Prefix("requests: forget addresses"), `UPDATE subject_requests SET address = '', address_key = ''
		WHERE contact_id IN (`+ph+`) AND address <> ''`, args...)
}
