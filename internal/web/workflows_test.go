package web

import (
	"net/url"
	"testing"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/workflow"
)

// Every action type has a label in the editor and the run log.
func TestEveryActionTypeHasALabel(t *testing.T) {
	for _, typ := range workflow.ActionTypes {
		if actionLabels[typ] == "" {
			t.Errorf("no label for action type %s", typ)
		}
	}
}

// A delay is shown in the largest unit that holds it whole, and read back
// to the same minutes; one past a year, or no number, is refused on the
// delay's input.
func TestDelayRoundTrips(t *testing.T) {
	for minutes, want := range map[int]string{0: "0 minutes", 45: "45 minutes", 120: "2 hours", 90: "90 minutes", 2880: "2 days",
		workflow.MaxDelayMinutes: "365 days"} {
		n, unit := delayIn(minutes)
		if n+" "+unit != want {
			t.Errorf("%d minutes shown as %s %s, want %s", minutes, n, unit, want)
		}
		rf := ruleForm{Delay: n, Unit: unit}
		if d, err := rf.definition(nil); err != nil || d.DelayMinutes != minutes {
			t.Errorf("%s %s read as %d minutes, %v", n, unit, d.DelayMinutes, err)
		}
	}
	for _, bad := range []ruleForm{{Delay: "366", Unit: "days"}, {Delay: "-1", Unit: "minutes"}, {Delay: "soon", Unit: "hours"}} {
		if _, err := bad.definition(nil); ruleInput(errs.As(err)) != "delay" {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

// The rows left out of a post (no type, or ticked to be removed) do not
// count: an error on the definition's second action is on the second row
// shown again.
func TestActionErrorsNameTheRowShown(t *testing.T) {
	rf := readRuleForm(url.Values{"a0-type": {"list_add"}, "a0-remove": {"on"}, "a1-type": {""}, "a2-type": {"list_add"}, "a2-list": {"L"},
		"a3-type": {"email_address"}, "a3-to": {"x"}, "a3-fields": {"email", "phone"}, "a5-type": {"webhook"}})
	if len(rf.Actions) != 2 || rf.Actions[0].List != "L" || rf.Actions[1].To != "x" || len(rf.Actions[1].Fields) != 2 {
		t.Fatalf("rows read: %+v", rf.Actions)
	}
	for field, input := range map[string]string{"actions[1].to": "a1-to", "actions[0].type": "a0-type", "actions[1].fields": "a1-fields",
		"actions[9].bogus": "form", "condition": "condition", "delay_minutes": "delay", "actions": "actions", "enabled": "form"} {
		if got := ruleInput(&errs.Error{Field: field}); got != input {
			t.Errorf("%s: on %s, want %s", field, got, input)
		}
	}
}
