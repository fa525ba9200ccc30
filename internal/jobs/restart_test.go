package jobs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/store"
	"github.com/consentry/consentry/internal/store/storetest"
)

// A runner that starts while no other is alive on the database (SQLite,
// after the process before it died) takes up at once the jobs the dead
// one left running, without waiting for their lease; once it runs, a
// runner starting beside it takes nothing, as a live runner's jobs are
// its own. On PostgreSQL, where another instance may be running them, a
// starting runner takes nothing: the lease decides.
func TestRestartTakesUpJobsLeftRunning(t *testing.T) {
	storetest.Each(t, func(t testing.TB, db *store.DB) {
		ctx := context.Background()
		c := &clock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
		leftRunning(t, db, c, "work")

		restarted := newRunner(db, c)
		var ran atomic.Int32
		restarted.Handle("work", func(context.Context, *jobs.Job) error { ran.Add(1); return nil })
		n, release, err := restarted.TakeOver(ctx)
		defer release()
		if err != nil {
			t.Fatal(err)
		}
		runDue(t, restarted) // the clock stands still: no lease runs out
		status, _, attempts := jobRow(t, db, "work")
		if db.Dialect == store.Postgres {
			if n != 0 || ran.Load() != 0 || status != "running" {
				t.Fatalf("took up %d jobs on PostgreSQL, ran %d; the job is %s", n, ran.Load(), status)
			}
			return
		}
		if n != 1 || ran.Load() != 1 || status != jobs.StatusDone || attempts != 2 {
			t.Fatalf("took up %d jobs, ran %d; the job is %s after %d attempts", n, ran.Load(), status, attempts)
		}

		// A job claimed while the restarted runner runs stays claimed when
		// another runner starts beside it: its runner may be alive.
		leftRunning(t, db, c, "busy")
		late := newRunner(db, c)
		var stolen atomic.Int32
		late.Handle("busy", func(context.Context, *jobs.Job) error { stolen.Add(1); return nil })
		n, releaseLate, err := late.TakeOver(ctx)
		defer releaseLate()
		if err != nil {
			t.Fatal(err)
		}
		runDue(t, late)
		if status, _, _ := jobRow(t, db, "busy"); n != 0 || stolen.Load() != 0 || status != "running" {
			t.Fatalf("a runner starting beside a live one took up %d jobs and ran %d; the job is %s", n, stolen.Load(), status)
		}
	})
}
