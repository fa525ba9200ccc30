//go:build unix

package jobs_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/store/storetest"
)

// killedChild is the environment variable that makes TestJobRunnerProcess
// run jobs on the SQLite file it names, as a process the test kills.
const killedChild = "CONSENTRY_TEST_JOBS_CHILD"

// TestJobRunnerProcess is the child of
// TestJobOfAKilledProcessResumesAtOnce: it runs the jobs of the database
// its environment names, with a lease of an hour, says when the job
// "import" is running, and waits to be killed. Run on its own, it does
// nothing.
func TestJobRunnerProcess(t *testing.T) {
	db := storetest.ChildSQLite(t, killedChild)
	if db == nil {
		return
	}
	r := jobs.NewRunner(db, slog.New(slog.DiscardHandler))
	r.Lease = time.Hour
	r.Handle("import", func(context.Context, *jobs.Job) error {
		storetest.ChildReady()
		return nil
	})
	r.Run(context.Background())
}

// A job running when its process is killed with SIGKILL runs again as soon
// as the service starts again on the same SQLite file, not when its lease
// (an hour here) runs out: the restarted runner knows it is the only one.
func TestJobOfAKilledProcessResumesAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "consentry.db")
	db := storetest.OpenSQLiteAt(t, path)
	start := time.Now()
	enqueue(t, db, &clock{t: start}, jobs.Spec{Kind: "import"})
	kill := storetest.Child(t, "TestJobRunnerProcess", killedChild+"="+path)
	kill() // SIGKILL while the job runs: nothing is recorded
	if status, _, attempts := jobRow(t, db, "import"); status != "running" || attempts != 1 {
		t.Fatalf("the killed process left the job %s after %d attempts", status, attempts)
	}

	// The service starts again. Its clock stands at the kill, so no
	// lease can run out: only knowing it is alone lets it run the job.
	restarted := jobs.NewRunner(db, slog.New(slog.DiscardHandler))
	restarted.Now = func() time.Time { return start }
	ran := make(chan int, 1)
	restarted.Handle("import", func(ctx context.Context, j *jobs.Job) error {
		ran <- j.Attempt
		return nil
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); restarted.Run(ctx) }()
	defer func() { stop(); <-done }()
	// It waits for the job, or for the end of the test's time: with the
	// clock standing, a job not taken up would never run.
	wait := context.Background()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		wait, cancel = context.WithDeadline(wait, deadline.Add(-5*time.Second))
		defer cancel()
	}
	select {
	case attempt := <-ran:
		if attempt != 2 {
			t.Fatalf("the job ran again as attempt %d, want 2", attempt)
		}
	case <-wait.Done():
		t.Fatal("the job left running by the killed process never ran again")
	}
}
