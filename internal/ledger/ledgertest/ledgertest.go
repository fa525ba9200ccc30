// Package ledgertest fills a ledger for the tests of the packages that
// read it (the tree, its public endpoints).
package ledgertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
)

// Append appends n events that name no contact of the database, per to a
// write, so that a test decides how the ledger's batches fall.
func Append(t testing.TB, db *store.DB, n, per int) {
	t.Helper()
	for n > 0 {
		k := min(n, per)
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			for i := range k {
				if _, err := ledger.Append(tx, &ledger.Event{RecordedAt: time.Now().UnixMicro(), Kind: ledger.KindContactDeleted,
					ContactRef: fmt.Sprintf("ref-%d-%d", n, i)}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
}
