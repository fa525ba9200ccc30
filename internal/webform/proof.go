package webform

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/consentry/consentry/internal/store"
)

// FormOfConfirmation returns the id and name of the webform a held post
// about a known address was made on, given the post's confirmation (the
// subject of its confirmation link's token), reading through q. The name
// is empty when the webform was deleted since; both are empty when the
// confirmation is gone with its contact.
//
// A post that created or updated a contact without a confirmation does
// not keep its webform: its consent records name the "Web form" source.
func FormOfConfirmation(ctx context.Context, q store.Querier, confirmationID string) (id, name string, err error) {
	var n sql.NullString
	err = q.QueryRowContext(ctx, `SELECT c.webform_id, f.name FROM webform_confirmations c
		LEFT JOIN webforms f ON f.id = c.webform_id WHERE c.id = $1`, confirmationID).Scan(&id, &n)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("webform: read confirmation: %w", err)
	}
	return id, n.String, nil
}
