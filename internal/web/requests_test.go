package web

import (
	"testing"
	"time"

	"github.com/consentry/consentry/internal/requests"
)

// TestEveryRequestValueHasALabel: each kind, status and channel of a
// request is named on the pages, and each kind has its action on the
// record.
func TestEveryRequestValueHasALabel(t *testing.T) {
	for name, c := range map[string]struct {
		values []string
		labels map[string]string
	}{
		"kind": {requests.Kinds, requestKindLabels}, "status": {requests.Statuses, requestStatusLabels},
		"channel": {requests.Channels, requestChannelLabels},
	} {
		for _, v := range c.values {
			if c.labels[v] == "" {
				t.Errorf("request %s %q has no label", name, v)
			}
		}
		if len(c.labels) != len(c.values) {
			t.Errorf("request %s: %d labels for %d values", name, len(c.labels), len(c.values))
		}
	}
	for _, k := range requests.Kinds {
		if fulfilments[k].Label == "" {
			t.Errorf("kind %q has no action that fulfils it", k)
		}
	}
}

// TestDaysLeft: the time a request has, in words.
func TestDaysLeft(t *testing.T) {
	closed := time.Now()
	for want, r := range map[string]*requests.Request{
		"12 days left":      {DaysLeft: 12},
		"1 day left":        {DaysLeft: 1},
		"due within a day":  {DaysLeft: 0},
		"overdue by 1 day":  {DaysLeft: -1, Overdue: true},
		"overdue by 9 days": {DaysLeft: -9, Overdue: true},
		"closed":            {ClosedAt: &closed},
	} {
		if got := daysLeft(r); got != want {
			t.Errorf("daysLeft(%+v) = %q, want %q", r, got, want)
		}
	}
}
