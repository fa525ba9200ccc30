package workflow_test

import (
	"testing"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
	"github.com/consentry/consentry/internal/workflow"
)

// While no rule is enabled the runner moves past every event without
// reading them; a rule made afterwards acts on what happens from then on
// only, as it would have had the events been read.
func TestARuleActsOnlyOnWhatHappensAfterIt(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		w := newWorld(t, db)
		for _, email := range []string{"before1@example.com", "before2@example.com", "before3@example.com"} {
			w.person(email, contactstate.SingleOptInUser, nil)
		}
		if n := w.runDue(); n != 0 {
			t.Fatalf("with no rule, %d runs were logged", n)
		}
		var pos, newest int64
		if err := db.Read.QueryRow(`SELECT (SELECT position FROM event_cursors WHERE consumer = $1), (SELECT MAX(seq) FROM events)`,
			workflow.Consumer).Scan(&pos, &newest); err != nil {
			t.Fatal(err)
		}
		if pos != newest {
			t.Fatalf("the runner is at event %d, want the newest, %d", pos, newest)
		}

		rule := w.rule(`{"name": "Welcome", "trigger": "contact.created", "actions": [{"type": "set_field", "field": "company", "value": "Acme"}]}`)
		after := w.person("after@example.com", contactstate.SingleOptInUser, nil)
		w.runDue()
		runs := w.runs(workflow.RunQuery{RuleID: rule.ID})
		if len(runs) != 1 || runs[0].ContactID != after {
			t.Fatalf("the rule made after three contacts logged %d runs (%+v), want one, for the contact made after it", len(runs), runs)
		}
	})
}
