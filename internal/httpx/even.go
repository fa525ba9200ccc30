package httpx

import (
	"context"
	"time"
)

// EvenOut waits until the time since start is a whole number of quanta,
// at least one, and returns early only when ctx ends. A public endpoint
// whose work differs with whether an address is known (a webform post
// creates a lead for a new address and holds a post for a known one)
// calls it before answering, so that its answers do not tell the two
// apart by their time: both come after the same quantum unless the work
// itself took longer than one.
func EvenOut(ctx context.Context, start time.Time, quantum time.Duration) {
	if quantum <= 0 {
		return
	}
	took := time.Since(start)
	n := took / quantum
	if took%quantum != 0 || n == 0 {
		n++
	}
	t := time.NewTimer(n*quantum - took)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
