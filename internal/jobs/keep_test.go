package jobs_test

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// waitFor calls cond until it holds, failing the test with what when the
// test's time is nearly up.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited in vain for %s", what)
		}
		runtime.Gosched()
	}
}

func lockedUntil(t testing.TB, db *store.DB, kind string) (until int64, by string) {
	t.Helper()
	if err := db.Read.QueryRow(`SELECT locked_until, locked_by FROM jobs WHERE kind = $1`, kind).Scan(&until, &by); err != nil {
		t.Fatal(err)
	}
	return until, by
}

// A job that runs longer than its lease stays its runner's: the runner
// renews the lease while the job runs, so another runner, whose clock is
// past the lease the job was claimed with, finds nothing to take over.
func TestRunningJobKeepsItsLease(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		c := &clock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
		r := newRunner(db, c)
		r.Lease = 300 * time.Millisecond
		started, release := make(chan struct{}), make(chan struct{})
		r.Handle("long", func(ctx context.Context, _ *jobs.Job) error {
			close(started)
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		})
		enqueue(t, db, c, jobs.Spec{Kind: "long"})
		done := make(chan struct{})
		go func() { defer close(done); runDue(t, r) }()
		<-started

		// An hour passes on the clock, far past the lease it was claimed
		// with; the running runner's next renewal moves the lease past it.
		c.Add(time.Hour)
		waitFor(t, "the lease to be renewed", func() bool {
			until, _ := lockedUntil(t, db, "long")
			return until > store.Micros(c.Now())
		})
		other := newRunner(db, c)
		var took atomic.Int32
		other.Handle("long", func(context.Context, *jobs.Job) error { took.Add(1); return nil })
		if runDue(t, other); took.Load() != 0 {
			t.Fatal("another runner took over a job whose runner was alive and renewing its lease")
		}
		close(release)
		<-done
		if status, lastError, attempts := jobRow(t, db, "long"); status != jobs.StatusDone || attempts != 1 {
			t.Fatalf("the long job ended %s after %d attempts (%s), want done after 1", status, attempts, lastError)
		}
	})
}

// A runner that finds, renewing, that its job is no longer its own (its
// lease ran out and another runner took the job up) ends the job's
// context with ErrLeaseLost, and records no outcome over the other's.
func TestJobWhoseLeaseWasLostStops(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		c := &clock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
		r := newRunner(db, c)
		r.Lease = 300 * time.Millisecond
		started, ended := make(chan struct{}), make(chan error, 1)
		r.Handle("long", func(ctx context.Context, _ *jobs.Job) error {
			close(started)
			<-ctx.Done()
			ended <- context.Cause(ctx)
			return context.Cause(ctx)
		})
		enqueue(t, db, c, jobs.Spec{Kind: "long"})
		done := make(chan struct{})
		go func() { defer close(done); runDue(t, r) }()
		<-started
		// What another runner's claim writes once the lease has run out.
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			_, err := tx.Exec(`UPDATE jobs SET locked_by = 'another', locked_until = $1, attempts = attempts + 1 WHERE kind = 'long'`,
				store.Micros(c.Now().Add(time.Hour)))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := <-ended; !errors.Is(err, jobs.ErrLeaseLost) {
			t.Fatalf("the job's context ended with %v, want ErrLeaseLost", err)
		}
		<-done
		status, _, attempts := jobRow(t, db, "long")
		if _, by := lockedUntil(t, db, "long"); status != "running" || by != "another" || attempts != 2 {
			t.Fatalf("the first runner wrote over the job taken up by another: %s, held by %q, %d attempts", status, by, attempts)
		}
	})
}

// A running runner starts a job that comes due while a long one runs,
// without waiting for the long one to end: a contact's preferences link
// is not held up by an import beside it.
func TestAJobDueStartsWhileALongOneRuns(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		c := &clock{t: time.Now()}
		r := newRunner(db, c)
		r.Poll = 20 * time.Millisecond
		started, release := make(chan struct{}), make(chan struct{})
		r.Handle("long", func(ctx context.Context, _ *jobs.Job) error {
			close(started)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		})
		r.Handle("quick", func(context.Context, *jobs.Job) error { return nil })
		enqueue(t, db, c, jobs.Spec{Kind: "long"})
		ctx, stop := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() { defer close(ran); r.Run(ctx) }()
		defer func() { stop(); <-ran }()
		<-started

		enqueue(t, db, c, jobs.Spec{Kind: "quick"})
		waitFor(t, "the quick job to end while the long one runs", func() bool {
			status, _, _ := jobRow(t, db, "quick")
			return status == jobs.StatusDone
		})
		if status, _, _ := jobRow(t, db, "long"); status != "running" {
			t.Fatalf("the long job is %s, want still running", status)
		}
		close(release)
		waitFor(t, "the long job to end", func() bool {
			status, _, _ := jobRow(t, db, "long")
			return status == jobs.StatusDone
		})
	})
}
