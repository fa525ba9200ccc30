package clientip

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter gives each client address its own token bucket, and forgets the
// addresses it has not seen for a while so that memory stays bounded.
type Limiter struct {
	mu      sync.Mutex
	perMin  rate.Limit
	burst   int
	idle    time.Duration
	clients map[string]*client
	swept   time.Time
}

type client struct {
	l    *rate.Limiter
	seen time.Time
}

// NewLimiter allows each key perMinute requests a minute on average, in
// bursts of up to burst, and forgets keys idle for longer than idle.
func NewLimiter(perMinute, burst int, idle time.Duration) *Limiter {
	return &Limiter{perMin: rate.Limit(float64(perMinute) / 60), burst: burst, idle: idle, clients: map[string]*client{}}
}

// Allow reports whether a request of key may go ahead now, and counts it.
func (l *Limiter) Allow(key string) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bucket(key, now).AllowN(now, 1)
}

// Reserve counts a request of key now, if allowed, and returns a function
// that takes the count back: for limits that should count only failures
// but must count an attempt before its outcome is known (a sign-in that
// takes a while), so that parallel attempts cannot slip through.
func (l *Limiter) Reserve(key string) (ok bool, undo func()) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.bucket(key, now).ReserveN(now, 1)
	if !r.OK() || r.DelayFrom(now) > 0 {
		r.CancelAt(now)
		return false, func() {}
	}
	return true, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		r.CancelAt(time.Now())
	}
}

// bucket returns key's bucket, forgetting idle keys now and then; l.mu is
// held.
func (l *Limiter) bucket(key string, now time.Time) *rate.Limiter {
	if now.Sub(l.swept) > l.idle {
		for k, c := range l.clients {
			if now.Sub(c.seen) > l.idle {
				delete(l.clients, k)
			}
		}
		l.swept = now
	}
	c := l.clients[key]
	if c == nil {
		c = &client{l: rate.NewLimiter(l.perMin, l.burst)}
		l.clients[key] = c
	}
	c.seen = now
	return c.l
}
