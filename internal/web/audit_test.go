package web

import (
	"testing"

	"github.com/consentry/consentry/internal/audit"
)

// The audit log page says every kind of object and every action in
// words: one added to package audit without them would show blank.
func TestAuditLogPageHasWordsForEveryEntry(t *testing.T) {
	for _, k := range audit.Kinds {
		if auditKinds[k] == "" {
			t.Errorf("no words for the kind %q", k)
		}
	}
	for _, a := range audit.Actions {
		if auditActions[a] == "" {
			t.Errorf("no words for the action %q", a)
		}
	}
	if len(auditKinds) != len(audit.Kinds) || len(auditActions) != len(audit.Actions) {
		t.Errorf("words for kinds or actions that do not exist: %v %v", auditKinds, auditActions)
	}
}
