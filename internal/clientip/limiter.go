package clientip

import (
	"container/list"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultMaxKeys is how many keys a Limiter holds unless told otherwise
// (WithMaxKeys): some 10 MB at most, whatever clients send.
const DefaultMaxKeys = 50_000

// Limiter gives each key (a client address, an account) its own token
// bucket, and holds a bounded number of keys, so that memory stays bounded
// whatever clients send: keys idle for longer than idle are forgotten, and
// past the maximum the key seen least recently is. A forgotten key starts
// again with a full bucket, as a key idle that long would have.
//
// It is a bucket of its own rather than golang.org/x/time/rate because a
// sign-in must count before its password is checked (so that parallel
// guesses cannot slip through) and be given back when it succeeds; a
// rate.Reservation cancelled after the moment it acted at restores
// nothing.
type Limiter struct {
	mu     sync.Mutex
	perSec float64
	burst  float64
	idle   time.Duration
	max    int
	keys   map[string]*list.Element // of *bucket
	recent *list.List               // most recently seen first
	// Now is the clock, for tests; time.Now unless set before first use.
	Now func() time.Time
}

type bucket struct {
	key    string
	tokens float64
	at     time.Time // when tokens was last brought up to date; also when the key was last seen
}

// NewLimiter allows each key perMinute requests a minute on average, in
// bursts of up to burst, forgets keys idle for longer than idle, and holds
// at most DefaultMaxKeys keys.
func NewLimiter(perMinute, burst int, idle time.Duration) *Limiter {
	return &Limiter{perSec: float64(perMinute) / 60, burst: float64(burst), idle: idle, max: DefaultMaxKeys,
		keys: map[string]*list.Element{}, recent: list.New(), Now: time.Now}
}

// WithMaxKeys sets how many keys l holds at most, and returns l.
func (l *Limiter) WithMaxKeys(n int) *Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max = max(n, 1)
	return l
}

// Allow reports whether a request of key may go ahead now, and counts it.
func (l *Limiter) Allow(key string) bool {
	ok, _ := l.Take(key)
	return ok
}

// Take is Allow that also says, when the request may not go ahead, how
// long until one may: the time key's bucket takes to fill to one request
// at the limit's rate, which a refusal passes on as its Retry-After
// (httpx.SetRetryAfter). wait is 0 when ok.
func (l *Limiter) Take(key string) (ok bool, wait time.Duration) {
	ok, wait, _ = l.Reserve(key)
	return ok, wait
}

// Reserve counts a request of key now, if allowed, and returns a function
// that gives the count back, once: for limits that should count only
// failures but must count an attempt before its outcome is known (a
// sign-in that takes a while), so that parallel attempts cannot slip
// through. When the request is not allowed nothing is counted, wait is
// how long until one would be (as Take says), and the function does
// nothing.
func (l *Limiter) Reserve(key string) (ok bool, wait time.Duration, giveBack func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	b := l.bucket(key, now)
	if b.tokens < 1 {
		return false, l.untilOne(b), func() {}
	}
	b.tokens--
	var once sync.Once
	return true, 0, func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			// A bucket forgotten meanwhile was full or idle; giving back
			// to it changes nothing anyone sees.
			b.tokens = min(b.tokens+1, l.burst)
		})
	}
}

// untilOne is how long b, brought up to now, takes to fill to one
// request; l.mu is held. A rate of zero never fills: an hour is said.
func (l *Limiter) untilOne(b *bucket) time.Duration {
	if l.perSec <= 0 {
		return time.Hour
	}
	return time.Duration(math.Ceil((1 - b.tokens) / l.perSec * float64(time.Second)))
}

// Len is how many keys l holds now.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// bucket returns key's bucket brought up to now, forgetting idle keys and,
// to make room, the least recently seen; l.mu is held.
func (l *Limiter) bucket(key string, now time.Time) *bucket {
	for e := l.recent.Back(); e != nil && now.Sub(e.Value.(*bucket).at) > l.idle; e = l.recent.Back() {
		l.forget(e)
	}
	if e, ok := l.keys[key]; ok {
		b := e.Value.(*bucket)
		if elapsed := now.Sub(b.at); elapsed > 0 {
			b.tokens = min(b.tokens+elapsed.Seconds()*l.perSec, l.burst)
			b.at = now
		}
		l.recent.MoveToFront(e)
		return b
	}
	for len(l.keys) >= l.max {
		l.forget(l.recent.Back())
	}
	b := &bucket{key: key, tokens: l.burst, at: now}
	l.keys[key] = l.recent.PushFront(b)
	return b
}

func (l *Limiter) forget(e *list.Element) {
	l.recent.Remove(e)
	delete(l.keys, e.Value.(*bucket).key)
}

// Rate is a limit per key: PerMinute requests a minute on average, in
// bursts of up to Burst.
type Rate struct {
	PerMinute int
	Burst     int
}

// ParseRate reads a rate written "PER_MINUTE" or "PER_MINUTE:BURST" (a
// burst of PER_MINUTE when left out), each from 1 to 1,000,000.
func ParseRate(s string) (Rate, error) {
	per, burst, hasBurst := strings.Cut(strings.TrimSpace(s), ":")
	r := Rate{}
	var err error
	if r.PerMinute, err = strconv.Atoi(strings.TrimSpace(per)); err != nil || r.PerMinute < 1 || r.PerMinute > 1_000_000 {
		return Rate{}, fmt.Errorf("%q is not PER_MINUTE or PER_MINUTE:BURST with numbers from 1 to 1000000", s)
	}
	r.Burst = r.PerMinute
	if hasBurst {
		if r.Burst, err = strconv.Atoi(strings.TrimSpace(burst)); err != nil || r.Burst < 1 || r.Burst > 1_000_000 {
			return Rate{}, fmt.Errorf("%q is not PER_MINUTE or PER_MINUTE:BURST with numbers from 1 to 1000000", s)
		}
	}
	return r, nil
}

// String writes r as ParseRate reads it.
func (r Rate) String() string { return fmt.Sprintf("%d:%d", r.PerMinute, r.Burst) }

// Limiter returns a limiter of r for keys idle at most idle.
func (r Rate) Limiter(idle time.Duration) *Limiter { return NewLimiter(r.PerMinute, r.Burst, idle) }
