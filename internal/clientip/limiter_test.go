package clientip

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// clock is a Limiter's clock that moves only when told.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newTestLimiter(perMin, burst int) (*Limiter, *clock) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := NewLimiter(perMin, burst, time.Hour)
	l.Now = c.now
	return l, c
}

func TestLimiterBurstAndRefill(t *testing.T) {
	l, c := newTestLimiter(1, 10)
	for i := range 10 {
		if !l.Allow("ada") {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	if l.Allow("ada") {
		t.Fatal("the eleventh request was allowed")
	}
	if !l.Allow("bob") {
		t.Fatal("another key shares the bucket")
	}
	c.advance(59 * time.Second)
	if l.Allow("ada") {
		t.Fatal("allowed before a minute passed")
	}
	c.advance(time.Second)
	if !l.Allow("ada") || l.Allow("ada") {
		t.Fatal("a minute should give back exactly one")
	}
	c.advance(24 * time.Hour)
	for range 10 {
		if !l.Allow("ada") {
			t.Fatal("the bucket does not refill to its burst")
		}
	}
	if l.Allow("ada") {
		t.Fatal("the bucket refilled past its burst")
	}
}

// TestLimiterWait: a refused request is told how long until its key's
// bucket holds one request again, at the limit's rate, and a request
// that waits that long is allowed.
func TestLimiterWait(t *testing.T) {
	l, c := newTestLimiter(6, 2) // a request every 10 s
	for range 2 {
		if ok, wait := l.Take("ada"); !ok || wait != 0 {
			t.Fatalf("within the burst: %v %s", ok, wait)
		}
	}
	if ok, wait := l.Take("ada"); ok || wait != 10*time.Second {
		t.Fatalf("past the burst: %v, wait %s, want 10s", ok, wait)
	}
	c.advance(7500 * time.Millisecond)
	if ok, wait := l.Take("ada"); ok || wait != 2500*time.Millisecond {
		t.Fatalf("7.5 s later: %v, wait %s, want 2.5s", ok, wait)
	}
	if ok, wait, _ := l.Reserve("ada"); ok || wait != 2500*time.Millisecond {
		t.Fatalf("a reservation 7.5 s later: %v, wait %s, want 2.5s", ok, wait)
	}
	c.advance(2500 * time.Millisecond)
	if ok, _ := l.Take("ada"); !ok {
		t.Fatal("refused after waiting as long as told")
	}
}

// TestLimiterGiveBack: a reservation given back leaves the bucket as it
// was, however many follow one another, and only once each.
func TestLimiterGiveBack(t *testing.T) {
	l, _ := newTestLimiter(1, 10)
	for i := range 30 {
		ok, _, giveBack := l.Reserve("ada")
		if !ok {
			t.Fatalf("reservation %d refused though each was given back", i+1)
		}
		giveBack()
		giveBack() // a second call gives nothing more
	}
	for range 10 {
		if ok, _, _ := l.Reserve("ada"); !ok {
			t.Fatal("the burst is not whole after reservations given back")
		}
	}
	ok, _, giveBack := l.Reserve("ada")
	if ok {
		t.Fatal("past the burst")
	}
	giveBack() // a refused reservation gives nothing back
	if ok, _, _ := l.Reserve("ada"); ok {
		t.Fatal("a refused reservation gave a token back")
	}
}

// TestLimiterParallel: parallel reservations take the burst and no more.
func TestLimiterParallel(t *testing.T) {
	l, _ := newTestLimiter(1, 10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 100 {
		wg.Go(func() {
			if ok, _, _ := l.Reserve("ada"); ok {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != 10 {
		t.Fatalf("%d of 100 parallel reservations allowed, want 10", allowed)
	}
}

// TestLimiterHoldsBoundedKeys: however many keys are seen, at most the
// maximum are held, the least recently seen going first; idle keys go.
func TestLimiterHoldsBoundedKeys(t *testing.T) {
	l, c := newTestLimiter(1, 10)
	l.WithMaxKeys(100)
	l.Allow("kept")
	for i := range 10_000 {
		l.Allow(fmt.Sprintf("key-%d", i))
		if i%50 == 0 {
			l.Allow("kept") // seen often, so never the least recent
		}
		if n := l.Len(); n > 100 {
			t.Fatalf("%d keys held, at most 100 wanted", n)
		}
	}
	for range 9 {
		l.Allow("kept")
	}
	if l.Allow("kept") {
		t.Fatal("a key seen often was forgotten (its count reset)")
	}
	c.advance(2 * time.Hour)
	l.Allow("new")
	if n := l.Len(); n != 1 {
		t.Fatalf("%d keys held after everything went idle, want 1", n)
	}
}
