package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// clock is a settable time for runners: tests move it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newRunner(db *store.DB, c *clock) *jobs.Runner {
	r := jobs.NewRunner(db, slog.New(slog.DiscardHandler))
	r.Now = c.Now
	return r
}

func enqueue(t testing.TB, db *store.DB, c *clock, specs ...jobs.Spec) {
	t.Helper()
	if err := db.Write(context.Background(), func(tx *store.Tx) error {
		for _, s := range specs {
			if err := jobs.Enqueue(tx, s, c.Now()); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func runDue(t testing.TB, r *jobs.Runner) int {
	t.Helper()
	n, err := r.RunDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func jobRow(t testing.TB, db *store.DB, kind string) (status, lastError string, attempts int) {
	t.Helper()
	if err := db.Read.QueryRow(`SELECT status, last_error, attempts FROM jobs WHERE kind = $1`, kind).Scan(&status, &lastError, &attempts); err != nil {
		t.Fatal(err)
	}
	return
}

func TestRetriesWithBackoffThenFails(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		c := &clock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
		r := newRunner(db, c)
		var calls atomic.Int32
		r.Handle("flaky", func(ctx context.Context, j *jobs.Job) error {
			var p struct{ N int }
			if err := j.Decode(&p); err != nil || p.N != 7 {
				t.Errorf("payload: %v %+v", err, p)
			}
			calls.Add(1)
			return errors.New("smtp: connection refused")
		})
		enqueue(t, db, c, jobs.Spec{Kind: "flaky", Payload: map[string]int{"N": 7}, MaxAttempts: 3})

		if n := runDue(t, r); n != 1 {
			t.Fatalf("first run: %d jobs", n)
		}
		status, lastErr, attempts := jobRow(t, db, "flaky")
		if status != jobs.StatusPending || lastErr != "smtp: connection refused" || attempts != 1 {
			t.Fatalf("after a failure: %s %q %d", status, lastErr, attempts)
		}
		c.Add(7 * time.Second) // before the first backoff (10 s ± 20%) is over
		if n := runDue(t, r); n != 0 {
			t.Fatalf("ran %d jobs before the backoff was over", n)
		}
		c.Add(6 * time.Second)
		if n := runDue(t, r); n != 1 {
			t.Fatalf("second attempt: %d jobs", n)
		}
		c.Add(25 * time.Second) // the second backoff is 20 s ± 20%
		if n := runDue(t, r); n != 1 {
			t.Fatalf("third attempt: %d jobs", n)
		}
		status, lastErr, attempts = jobRow(t, db, "flaky")
		if status != jobs.StatusFailed || lastErr == "" || attempts != 3 || calls.Load() != 3 {
			t.Fatalf("after the last attempt: %s %q %d, %d calls", status, lastErr, attempts, calls.Load())
		}
		c.Add(24 * time.Hour)
		if n := runDue(t, r); n != 0 {
			t.Fatal("a failed job ran again")
		}
	})
}

// TestPersonalPayloadIsForgotten: a job of a kind registered as personal
// keeps its payload while it may run again, and loses it once done or
// failed for good; other kinds keep theirs.
func TestPersonalPayloadIsForgotten(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		c := &clock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
		r := newRunner(db, c)
		var failing atomic.Bool
		failing.Store(true)
		r.HandlePersonal("send", func(ctx context.Context, j *jobs.Job) error {
			var p struct{ Email string }
			if err := j.Decode(&p); err != nil || p.Email != "kim@example.com" {
				t.Errorf("payload: %v %+v", err, p)
			}
			if failing.Load() {
				return errors.New("database busy")
			}
			return nil
		})
		r.HandlePersonal("doomed", func(context.Context, *jobs.Job) error { return errors.New("never") })
		r.Handle("plain", func(context.Context, *jobs.Job) error { return nil })
		enqueue(t, db, c, jobs.Spec{Kind: "send", Payload: map[string]string{"Email": "kim@example.com"}, MaxAttempts: 3},
			jobs.Spec{Kind: "doomed", Payload: map[string]string{"Email": "kim@example.com"}, MaxAttempts: 1},
			jobs.Spec{Kind: "plain", Payload: map[string]string{"Email": "kim@example.com"}})
		payload := func(kind string) string {
			var p string
			if err := db.Read.QueryRow(`SELECT payload FROM jobs WHERE kind = $1`, kind).Scan(&p); err != nil {
				t.Fatal(err)
			}
			return p
		}
		if n := runDue(t, r); n != 3 {
			t.Fatalf("ran %d jobs", n)
		}
		if p := payload("send"); p != `{"Email":"kim@example.com"}` {
			t.Fatalf("a job to retry lost its payload: %s", p)
		}
		failing.Store(false)
		c.Add(time.Minute)
		if n := runDue(t, r); n != 1 {
			t.Fatalf("retry: ran %d jobs", n)
		}
		for kind, want := range map[string]string{"send": "{}", "doomed": "{}", "plain": `{"Email":"kim@example.com"}`} {
			if p := payload(kind); p != want {
				t.Errorf("%s: payload %s, want %s", kind, p, want)
			}
		}
		if status, _, _ := jobRow(t, db, "doomed"); status != jobs.StatusFailed {
			t.Fatalf("doomed: %s", status)
		}
	})
}

func TestScheduledAndUniqueJobs(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		c := &clock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
		r := newRunner(db, c)
		var ran atomic.Int32
		r.Handle("remind", func(context.Context, *jobs.Job) error { ran.Add(1); return nil })
		at := c.Now().Add(72 * time.Hour)
		enqueue(t, db, c, jobs.Spec{Kind: "remind", RunAt: at, UniqueKey: "remind:1"},
			jobs.Spec{Kind: "remind", RunAt: at, UniqueKey: "remind:1"}) // the second is a no-op
		if runDue(t, r) != 0 {
			t.Fatal("a scheduled job ran early")
		}
		c.Add(72 * time.Hour)
		if runDue(t, r) != 1 || ran.Load() != 1 {
			t.Fatalf("scheduled job: ran %d times", ran.Load())
		}
		enqueue(t, db, c, jobs.Spec{Kind: "remind", UniqueKey: "remind:1"}) // the key is free again once done
		if runDue(t, r) != 1 {
			t.Fatal("a finished job's key was not freed")
		}
	})
}

func TestPeriodicSweep(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		c := &clock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
		r := newRunner(db, c)
		var ran atomic.Int32
		r.Every("sweep", time.Hour, func(context.Context, *jobs.Job) error { ran.Add(1); return nil })
		if err := r.SchedulePeriodic(context.Background()); err != nil {
			t.Fatal(err)
		}
		runDue(t, r)
		runDue(t, r)
		c.Add(59 * time.Minute)
		runDue(t, r)
		if ran.Load() != 1 {
			t.Fatalf("within the first hour the sweep ran %d times", ran.Load())
		}
		c.Add(time.Minute)
		runDue(t, r)
		if ran.Load() != 2 {
			t.Fatalf("after an hour the sweep ran %d times", ran.Load())
		}
	})
}

// leftRunning enqueues a job of kind and has a runner claim it and die
// mid-job, as a killed process would: the job stays claimed, running,
// until its lease runs out.
func leftRunning(t testing.TB, db *store.DB, c *clock, kind string) {
	t.Helper()
	crashed := newRunner(db, c)
	crashed.Handle(kind, func(ctx context.Context, j *jobs.Job) error {
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(`UPDATE jobs SET locked_by = 'gone' WHERE id = $1`, j.ID)
			return err
		}); err != nil {
			t.Error(err)
		}
		return nil
	})
	enqueue(t, db, c, jobs.Spec{Kind: kind})
	runDue(t, crashed)
}

func TestExpiredLeaseIsTakenOver(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		c := &clock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
		leftRunning(t, db, c, "work")
		other := newRunner(db, c)
		var ran atomic.Int32
		other.Handle("work", func(context.Context, *jobs.Job) error { ran.Add(1); return nil })
		if runDue(t, other); ran.Load() != 0 {
			t.Fatal("a job was taken over while its lease lasted")
		}
		c.Add(6 * time.Minute)
		if runDue(t, other); ran.Load() != 1 {
			t.Fatal("a job whose lease ran out was not taken over")
		}
		if status, _, attempts := jobRow(t, db, "work"); status != jobs.StatusDone || attempts != 2 {
			t.Fatalf("after take-over: %s, %d attempts", status, attempts)
		}
	})
}

// TestTwoInstancesRunEachJobOnce runs two runners on two handles to one
// PostgreSQL database, as two consentry serve processes would, and counts
// that every job ran exactly once.
func TestTwoInstancesRunEachJobOnce(t *testing.T) {
	a, b := storetest.OpenPostgresTwice(t)
	c := &clock{t: time.Now()}
	const n = 400
	var specs []jobs.Spec
	for i := range n {
		specs = append(specs, jobs.Spec{Kind: "count", Payload: i})
	}
	enqueue(t, a, c, specs...)
	var mu sync.Mutex
	runs := map[int]int{}
	count := func(ctx context.Context, j *jobs.Job) error {
		var i int
		j.Decode(&i)
		mu.Lock()
		runs[i]++
		mu.Unlock()
		return nil
	}
	var wg sync.WaitGroup
	for _, db := range []*store.DB{a, b} {
		r := newRunner(db, c)
		r.Batch = 7
		r.Handle("count", count)
		wg.Add(1)
		go func() { defer wg.Done(); runDue(t, r) }()
	}
	wg.Wait()
	for i := range n {
		if runs[i] != 1 {
			t.Fatalf("job %d ran %d times", i, runs[i])
		}
	}
	if got := fmt.Sprint(len(runs)); got != fmt.Sprint(n) {
		t.Fatalf("%s jobs ran, want %d", got, n)
	}
}

// TestIdleRunnerSleeps: with nothing to do, a running runner is not woken
// again and again (a periodic job already scheduled must not wake it).
func TestIdleRunnerSleeps(t *testing.T) {
	db := storetest.OpenSQLite(t)
	c := &clock{t: time.Now()}
	r := newRunner(db, c)
	r.Every("sweep", time.Hour, func(context.Context, *jobs.Job) error { return nil })
	if err := r.SchedulePeriodic(context.Background()); err != nil {
		t.Fatal(err)
	}
	runDue(t, r)
	select { // the first scheduling woke it, rightly
	case <-db.Wakes("jobs"):
	default:
	}
	enqueue(t, db, c, jobs.Spec{Kind: "sweep", UniqueKey: "every:sweep"}) // a no-op: one is waiting
	select {
	case <-db.Wakes("jobs"):
		t.Fatal("an enqueue that inserted nothing woke the runner")
	default:
	}
	enqueue(t, db, c, jobs.Spec{Kind: "later", RunAt: c.Now().Add(time.Hour)})
	select {
	case <-db.Wakes("jobs"):
		t.Fatal("a job due later woke the runner now")
	default:
	}
}

// TestQuickJobIsNotHeldBySlowOne claims a quick and a slow job together and
// checks the quick one's outcome is recorded before the slow one ends.
func TestQuickJobIsNotHeldBySlowOne(t *testing.T) {
	db := storetest.OpenSQLite(t)
	c := &clock{t: time.Now()}
	r := newRunner(db, c)
	release := make(chan struct{})
	r.Handle("quick", func(context.Context, *jobs.Job) error { return nil })
	r.Handle("slow", func(ctx context.Context, _ *jobs.Job) error { <-release; return nil })
	enqueue(t, db, c, jobs.Spec{Kind: "quick"}, jobs.Spec{Kind: "slow"})
	done := make(chan struct{})
	go func() { defer close(done); runDue(t, r) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if status, _, _ := jobRow(t, db, "quick"); status == jobs.StatusDone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the quick job's outcome waited for the slow job")
		}
		runtime.Gosched()
	}
	close(release)
	<-done
}
