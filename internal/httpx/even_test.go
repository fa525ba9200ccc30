package httpx_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consentry/consentry/internal/httpx"
)

// TestEvenOutAnswersOnTheQuantum: whatever the work took, the answer
// comes at a whole number of quanta from the start, at least one.
func TestEvenOutAnswersOnTheQuantum(t *testing.T) {
	for _, tc := range []struct{ work, want time.Duration }{
		{0, 100 * time.Millisecond},
		{3 * time.Millisecond, 100 * time.Millisecond},
		{99 * time.Millisecond, 100 * time.Millisecond},
		{100 * time.Millisecond, 100 * time.Millisecond},
		{130 * time.Millisecond, 200 * time.Millisecond},
	} {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			time.Sleep(tc.work) // the request's work, in the bubble's time
			httpx.EvenOut(context.Background(), start, 100*time.Millisecond)
			if got := time.Since(start); got != tc.want {
				t.Errorf("work %v: answered after %v, want %v", tc.work, got, tc.want)
			}
		})
	}
}

// TestEvenOutStopsWithTheRequest: a client that goes away does not keep
// the handler waiting.
func TestEvenOutStopsWithTheRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		start := time.Now()
		go func() {
			time.Sleep(10 * time.Millisecond)
			cancel()
		}()
		httpx.EvenOut(ctx, start, time.Second)
		if got := time.Since(start); got != 10*time.Millisecond {
			t.Errorf("returned after %v, want 10ms", got)
		}
	})
}
