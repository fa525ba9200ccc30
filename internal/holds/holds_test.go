package holds_test

import (
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/holds"
)

// TestActiveAndRefusal: a hold holds until lifted or until its end, and
// its refusal names it.
func TestActiveAndRefusal(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	later, earlier := now.Add(time.Hour), now.Add(-time.Hour)
	for _, c := range []struct {
		name string
		h    holds.Hold
		want bool
	}{
		{"open-ended", holds.Hold{}, true},
		{"ends later", holds.Hold{Until: &later}, true},
		{"ended", holds.Hold{Until: &earlier}, false},
		{"ends now", holds.Hold{Until: &now}, false},
		{"lifted", holds.Hold{LiftedAt: &earlier}, false},
	} {
		if got := c.h.ActiveAt(now); got != c.want {
			t.Errorf("%s: active %v, want %v", c.name, got, c.want)
		}
	}
	err := holds.ErrHeld(&holds.Hold{LegalBasis: holds.BasisLegalClaims, Reason: "dispute 12", Until: &later})
	e := errs.As(err)
	if e == nil || e.Kind != errs.KindRefused || e.Code != "legal_hold" || !strings.Contains(e.Message, "dispute 12") ||
		!strings.Contains(e.Message, "legal_claims") || !strings.Contains(e.Message, "2026-11-30") {
		t.Fatalf("refusal: %v", err)
	}
}
