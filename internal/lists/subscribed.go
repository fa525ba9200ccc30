package lists

import (
	"context"
	"fmt"

	"github.com/consentry/consentry/internal/store"
)

// SourceWorkflow is the source of a subscription changed by a workflow
// rule's action.
const SourceWorkflow = "workflow"

// SubscribedIDsOf returns, for each of the contacts in ids, the ids of the
// lists it is subscribed to, as a set (SubscribedIDs), read through q in
// one query for them all. A contact subscribed to none is absent.
func SubscribedIDsOf(ctx context.Context, q store.Querier, ids []string) (map[string]map[string]bool, error) {
	out := map[string]map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	ph, args := store.In(1, ids)
	rows, err := q.QueryContext(ctx, `SELECT contact_id, list_id FROM list_subscriptions WHERE status = '`+Subscribed+`'
		AND contact_id IN (`+ph+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("lists: read subscriptions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c, l string
		if err := rows.Scan(&c, &l); err != nil {
			return nil, fmt.Errorf("lists: read subscriptions: %w", err)
		}
		if out[c] == nil {
			out[c] = map[string]bool{}
		}
		out[c][l] = true
	}
	return out, rows.Err()
}
