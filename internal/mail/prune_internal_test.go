package mail

import (
	"slices"
	"testing"

	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// TestPruneNamesEveryColumn: on SQLite the pruner writes each emptied row
// again whole, so a column of outbox that it names neither as kept nor as
// content would lose its value.
func TestPruneNamesEveryColumn(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		q := `SELECT name FROM pragma_table_info('outbox')`
		if db.Dialect == store.Postgres {
			q = `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'outbox'`
		}
		cols, err := store.QueryAll(t.Context(), db.Read, func(sc store.Scanner) (string, error) {
			var c string
			return c, sc.Scan(&c)
		}, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			if _, blanked := pruneBlanked[c]; !blanked && !slices.Contains(pruneKept, c) {
				t.Errorf("outbox column %s is neither kept nor content for the pruner", c)
			}
		}
		if len(cols) != len(pruneKept)+len(pruneBlanked) {
			t.Errorf("the pruner names %d columns, outbox has %d: %v", len(pruneKept)+len(pruneBlanked), len(cols), cols)
		}
	})
}
