package busy

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime/metrics"
	"testing"
	"testing/synctest"
	"time"
)

func TestP99OfWhatWasAdded(t *testing.T) {
	// Bucket i holds [buckets[i], buckets[i+1]).
	buckets := []float64{0, 1e-6, 1e-4, 1e-3, 1e-2, math.Inf(1)}
	before := &metrics.Float64Histogram{Buckets: buckets, Counts: []uint64{5, 1000, 7, 0, 0}}
	cases := []struct {
		name   string
		counts []uint64
		want   time.Duration
	}{
		{"nothing added", []uint64{5, 1000, 7, 0, 0}, 0},
		{"all fast", []uint64{5, 1100, 7, 0, 0}, 100 * time.Microsecond},
		// 98 fast and 2 slow: the 99th percentile is a slow one.
		{"a few slow", []uint64{5, 1098, 7, 2, 0}, 10 * time.Millisecond},
		// 99 fast and 1 slow: the 99th percentile is still fast.
		{"one in a hundred slow", []uint64{5, 1099, 7, 0, 1}, 100 * time.Microsecond},
		// In the last, open-ended bucket, its lower bound is the answer.
		{"beyond the last bound", []uint64{5, 1000, 7, 0, 10}, 10 * time.Millisecond},
	}
	for _, c := range cases {
		after := &metrics.Float64Histogram{Buckets: buckets, Counts: c.counts}
		if got := p99(before, after); got != c.want {
			t.Errorf("%s: p99 %v, want %v", c.name, got, c.want)
		}
	}
}

func TestPaceHalvesWhilePeopleWaitAndComesBack(t *testing.T) {
	g := NewGovernor(&Meter{}, 200)
	waiting := Sample{Requests: 500, Latency: 5 * time.Millisecond, Pace: 10_000}
	step := func(s Sample) float64 {
		g.set(g.next(s))
		return g.limit
	}
	// Requests with room on the CPU, or a busy CPU with no requests,
	// are no reason to slow down.
	if l := step(Sample{Requests: 500, Latency: 100 * time.Microsecond, Pace: 10_000}); !math.IsInf(l, 1) {
		t.Fatalf("slowed to %v with no one waiting", l)
	}
	if l := step(Sample{Requests: 3, Latency: 50 * time.Millisecond, Pace: 10_000}); !math.IsInf(l, 1) {
		t.Fatalf("slowed to %v with hardly any requests", l)
	}
	// People waiting: half of what was done, then half again, to the floor.
	if l := step(waiting); l != 5_000 {
		t.Fatalf("first interval with people waiting: %v a second, want 5000", l)
	}
	if l := step(waiting); l != 2_500 {
		t.Fatalf("second interval: %v a second, want 2500", l)
	}
	for range 10 {
		step(waiting)
	}
	if g.limit != 200 {
		t.Fatalf("after many intervals: %v a second, want the floor 200", g.limit)
	}
	if got := g.Limit(); got != 200 {
		t.Fatalf("the limiter's pace is %v, want 200", got)
	}
	// No one waiting: the pace grows by half each interval while the work
	// keeps up with it, and the limit goes once the work falls far behind.
	quiet := Sample{Requests: 0, Latency: 50 * time.Microsecond}
	quiet.Pace = 200
	if l := step(quiet); l != 300 {
		t.Fatalf("first quiet interval: %v a second, want 300", l)
	}
	quiet.Pace = 300
	if l := step(quiet); l != 450 {
		t.Fatalf("second quiet interval: %v a second, want 450", l)
	}
	quiet.Pace = 0 // the campaign ended
	if l := step(quiet); !math.IsInf(l, 1) {
		t.Fatalf("with no work left: %v a second, want no limit", l)
	}
	if got := g.Limit(); !math.IsInf(got, 1) {
		t.Fatalf("the limiter's pace is %v, want no limit", got)
	}
}

func TestWaitKeepsThePace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		g := NewGovernor(&Meter{}, 100)
		start := time.Now()
		if err := g.Wait(ctx, 1000); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 0 {
			t.Fatalf("waited %v with no limit", took)
		}
		g.set(100) // a burst of 10, an interval's worth
		start = time.Now()
		for range 3 {
			if err := g.Wait(ctx, 100); err != nil {
				t.Fatal(err)
			}
		}
		// 300 units at 100 a second, the first 10 from the burst.
		if took := time.Since(start); took < 2900*time.Millisecond || took > 3*time.Second {
			t.Fatalf("300 units at 100 a second took %v", took)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := g.Wait(cctx, 100); err == nil {
			t.Fatal("Wait returned no error with its context cancelled")
		}
	})
}

func TestRunSetsThePaceFromWhatItReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &Meter{}
		g := NewGovernor(m, 100)
		g.Latency = 0 // any scheduler latency counts, so the requests decide
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go g.Run(ctx)
		synctest.Wait() // Run has read where the counts start
		h := m.Count(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		for range 50 {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		}
		if m.Requests() != 50 {
			t.Fatalf("counted %d requests, want 50", m.Requests())
		}
		g.done.Add(1000) // work done in this interval
		time.Sleep(g.Every)
		synctest.Wait()
		if got := g.Limit(); math.IsInf(got, 1) || got < 100 {
			t.Fatalf("after an interval with 50 requests: pace %v, want a limit", got)
		}
		time.Sleep(g.Every) // no requests this time
		synctest.Wait()
		time.Sleep(g.Every)
		synctest.Wait()
		if got := g.Limit(); !math.IsInf(got, 1) {
			t.Fatalf("after quiet intervals with no work: pace %v, want no limit", got)
		}
	})
}
