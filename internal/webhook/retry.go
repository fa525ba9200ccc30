package webhook

import (
	"math/rand/v2"
	"time"
)

// GiveUpAfter is how long a delivery is tried from its first attempt
// before it is marked failed.
const GiveUpAfter = 72 * time.Hour

// schedule is the wait after the nth failed attempt (1-based); later ones
// wait as long as the last.
var schedule = []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour,
	3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// Backoff is the wait after n failed attempts, spread by up to a tenth
// either way so that deliveries that failed together do not all come back
// together.
func Backoff(n int) time.Duration {
	d := schedule[min(max(n, 1), len(schedule))-1]
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

// nextTry returns when to try a delivery again after its nth failure at
// now, its first attempt having been at first, or false once GiveUpAfter
// has passed. The last try is at first+GiveUpAfter, whatever the schedule.
func nextTry(n int, first, now time.Time, backoff func(int) time.Duration) (time.Time, bool) {
	end := first.Add(GiveUpAfter)
	if !now.Before(end) {
		return time.Time{}, false
	}
	next := now.Add(backoff(n))
	if next.After(end) {
		next = end
	}
	return next, true
}
