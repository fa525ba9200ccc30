// Package busy lets background work give way to people. A campaign that
// sends as fast as the mail server takes it keeps the CPU busy; while it
// does, the contacts opening its email, following its links and changing
// their preferences, and the operators and integrators using the admin UI
// and the API, wait for the CPU too. A Governor sees when that happens and
// slows the background work down until it stops happening.
//
// "People are waiting" is two signals at once: requests are arriving (a
// Meter counts them), and goroutines wait to run (the Go scheduler's
// latency, from runtime/metrics, is high). Requests alone are no reason to
// slow down when the CPU has room; a busy CPU with no requests is the
// background work using what nobody else wants. The way the Governor slows
// down is additive increase, multiplicative decrease, as TCP and other
// admission controllers do: halve the pace while people wait, grow it by
// half again each interval they do not, down to a floor so that the work
// always goes on.
package busy

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"runtime/metrics"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Meter counts the requests people make.
type Meter struct{ n atomic.Int64 }

// Count counts every request h serves.
func (m *Meter) Count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.n.Add(1)
		h.ServeHTTP(w, r)
	})
}

// Requests is how many requests have been counted so far.
func (m *Meter) Requests() int64 { return m.n.Load() }

// Governor paces background work: Wait before each piece of it.
type Governor struct {
	Meter *Meter
	// Every is how often the signals are read and the pace set.
	Every time.Duration
	// People are waiting when at least Requests arrived in an interval
	// and a hundredth of the goroutines that became runnable waited
	// Latency or more to run.
	Requests int64
	Latency  time.Duration
	// Floor is the slowest pace, in units of work a second.
	Floor float64
	// Log, when set, hears when the work starts to give way and when it
	// goes at full speed again.
	Log *slog.Logger
	// What is to name the work in the log.
	What string

	limiter *rate.Limiter
	limit   float64 // units a second; +Inf when not slowed
	done    atomic.Int64
}

// NewGovernor returns a governor that reads the signals every 100 ms, sees
// people waiting when 20 requests arrived in that time (200 a second) and
// the scheduler's 99th percentile latency reached 1 ms, and never slows
// below floor units a second.
func NewGovernor(m *Meter, floor float64) *Governor {
	return &Governor{Meter: m, Every: 100 * time.Millisecond, Requests: 20, Latency: time.Millisecond, Floor: floor,
		limiter: rate.NewLimiter(rate.Inf, 0), limit: math.Inf(1)}
}

// Wait returns once n more units of work may run at the present pace, or
// with ctx's error. A nil Governor never waits.
func (g *Governor) Wait(ctx context.Context, n int) error {
	if g == nil {
		return nil
	}
	g.done.Add(int64(n))
	for n > 0 && g.limiter.Limit() != rate.Inf {
		part := min(n, max(g.limiter.Burst(), 1))
		if err := g.limiter.WaitN(ctx, part); err != nil {
			return err
		}
		n -= part
	}
	return ctx.Err()
}

// Limit is the present pace in units a second; +Inf when not slowed.
func (g *Governor) Limit() float64 {
	if l := g.limiter.Limit(); l != rate.Inf {
		return float64(l)
	}
	return math.Inf(1)
}

// Run reads the signals and sets the pace until ctx ends.
func (g *Governor) Run(ctx context.Context) {
	tick := time.NewTicker(g.Every)
	defer tick.Stop()
	hist := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(hist)
	prev := hist[0].Value.Float64Histogram()
	requests, done := g.Meter.Requests(), g.done.Load()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		metrics.Read(hist)
		now := hist[0].Value.Float64Histogram()
		r, d, at := g.Meter.Requests(), g.done.Load(), time.Now()
		s := Sample{Requests: r - requests, Latency: p99(prev, now), Pace: float64(d-done) / at.Sub(last).Seconds()}
		prev, requests, done, last = now, r, d, at
		g.set(g.next(s))
	}
}

// Sample is what the Governor read over one interval.
type Sample struct {
	Requests int64         // requests that arrived
	Latency  time.Duration // the scheduler's 99th percentile latency
	Pace     float64       // units of work done a second
}

// next is the pace after an interval with sample s: halved from what was
// done (or from the limit, if lower) while people wait; else grown by
// half, and no limit at all once the work no longer comes near it.
func (g *Governor) next(s Sample) float64 {
	waiting := s.Requests >= g.Requests && s.Latency >= g.Latency
	switch {
	case waiting:
		return max(g.Floor, min(g.limit, s.Pace)/2)
	case math.IsInf(g.limit, 1):
		return g.limit
	case g.limit > 2*s.Pace+g.Floor:
		return math.Inf(1) // the work no longer needs slowing
	default:
		return g.limit * 1.5
	}
}

func (g *Governor) set(limit float64) {
	if limit == g.limit {
		return
	}
	was := g.limit
	g.limit = limit
	if math.IsInf(limit, 1) {
		g.limiter.SetLimit(rate.Inf)
		if g.Log != nil {
			g.Log.Debug(g.What + " at full speed again")
		}
		return
	}
	if math.IsInf(was, 1) && g.Log != nil {
		g.Log.Debug(g.What+" gives way to requests waiting for the CPU", "per_second", int(limit))
	}
	// A burst of an interval's worth lets the work come in its own
	// pieces (a batch of messages) without waiting for each unit.
	g.limiter.SetBurst(max(1, int(limit*g.Every.Seconds())))
	g.limiter.SetLimit(rate.Limit(limit))
}

// p99 is the 99th percentile of what was added to a histogram between two
// readings of it: the upper bound of the bucket it falls in. It is 0 when
// nothing was added.
func p99(before, after *metrics.Float64Histogram) time.Duration {
	var total uint64
	for i, c := range after.Counts {
		total += c - before.Counts[i]
	}
	if total == 0 {
		return 0
	}
	want := total - total/100
	var seen uint64
	for i, c := range after.Counts {
		seen += c - before.Counts[i]
		if seen >= want {
			upper := after.Buckets[i+1]
			if math.IsInf(upper, 1) {
				upper = after.Buckets[i]
			}
			return time.Duration(upper * float64(time.Second))
		}
	}
	return 0
}
