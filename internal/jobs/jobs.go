// Package jobs runs background work that must survive a restart: each job is
// a row, written in the same transaction as the change that needs it, and
// run by in-process workers that coordinate through the database, so that
// several instances can share one. A job that fails is retried with
// exponential backoff until its attempts run out; its last error is kept.
// Periodic sweeps are jobs that schedule their own next run.
package jobs

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/store"
)

// Job statuses. A job is "running" while a runner holds its lease; the
// claim sets that in SQL.
const (
	StatusPending = "pending"
	StatusDone    = "done"
	StatusFailed  = "failed"
)

// wakeTopic is the store signal that new jobs are waiting.
const wakeTopic = "jobs"

// Spec describes a job to enqueue.
type Spec struct {
	Kind    string
	Payload any       // encoded as JSON
	RunAt   time.Time // zero: now
	// UniqueKey, when set, allows one unfinished job with that key at a
	// time; enqueueing another while one waits does nothing.
	UniqueKey   string
	MaxAttempts int // 0: 10
}

// Enqueue adds a job inside tx, so it exists exactly when the change that
// needs it commits. Workers in this process are woken after the commit.
func Enqueue(tx *store.Tx, s Spec, now time.Time) error {
	payload, err := json.Marshal(s.Payload)
	if err != nil {
		return fmt.Errorf("jobs: encode payload of %s: %w", s.Kind, err)
	}
	if s.RunAt.IsZero() {
		s.RunAt = now
	}
	if s.MaxAttempts <= 0 {
		s.MaxAttempts = 10
	}
	var unique any
	if s.UniqueKey != "" {
		unique = s.UniqueKey
	}
	res, err := tx.Exec(`INSERT INTO jobs (id, kind, payload, unique_key, status, run_at, max_attempts, created_at)
		VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7) ON CONFLICT (unique_key) DO NOTHING`,
		uuid.Must(uuid.NewV7()).String(), s.Kind, string(payload), unique, store.Micros(s.RunAt), s.MaxAttempts, store.Micros(now))
	if err != nil {
		return fmt.Errorf("jobs: enqueue %s: %w", s.Kind, err)
	}
	if n, _ := res.RowsAffected(); n > 0 && !s.RunAt.After(now) {
		tx.WakeAfterCommit(wakeTopic) // only for new work due now: a wake-up with nothing to do would spin
	}
	return nil
}

// Job is a claimed job, handed to its handler.
type Job struct {
	ID          string
	Kind        string
	Payload     json.RawMessage
	Attempt     int // 1 on the first run
	MaxAttempts int
}

// Decode reads the payload into v.
func (j *Job) Decode(v any) error { return json.Unmarshal(j.Payload, v) }

// Handler does a job's work. An error makes the job run again later, until
// its attempts run out.
type Handler func(ctx context.Context, j *Job) error

// Runner claims due jobs and runs them.
type Runner struct {
	DB  *store.DB
	Log *slog.Logger
	// Now is the clock; tests set it to move time without sleeping.
	Now func() time.Time
	// Lease is how long a claimed job stays this runner's without word
	// from it. While a job runs the runner renews its lease every third
	// of Lease (keeper), so a live runner keeps its job however long it
	// runs, and the job of a runner that died (an instance killed, on
	// PostgreSQL where no other can tell) is taken up by another within
	// Lease rather than after the job's whole Timeout.
	Lease time.Duration
	// Timeout is how long one run of a handler may take: its context ends
	// then, and the job is retried later.
	Timeout time.Duration
	// Batch is how many jobs one claim takes.
	Batch int
	// Poll is how often to look for jobs that other instances wrote.
	Poll time.Duration

	id       string
	handlers map[string]Handler
	every    map[string]time.Duration
	personal map[string]bool // kinds whose payload is emptied when they finish
	kinds    []string
}

// The lease and time limit of a runner from NewRunner.
const (
	DefaultLease   = 30 * time.Second
	DefaultTimeout = 150 * time.Second
)

// NewRunner returns a runner with a random worker id and the wall clock.
func NewRunner(db *store.DB, log *slog.Logger) *Runner {
	b := make([]byte, 6)
	rand.Read(b)
	return &Runner{DB: db, Log: log, Now: time.Now, Lease: DefaultLease, Timeout: DefaultTimeout, Batch: 32, Poll: time.Second,
		id: hex.EncodeToString(b), handlers: map[string]Handler{}, every: map[string]time.Duration{}, personal: map[string]bool{}}
}

// Handle registers the handler of a job kind.
func (r *Runner) Handle(kind string, h Handler) {
	r.handlers[kind] = h
	r.kinds = append(r.kinds, kind)
}

// HandlePersonal registers the handler of a job kind whose payload holds
// personal data that is nowhere else (an address typed into a public
// form, which may be no contact's): the payload is emptied when the job
// finishes, done or failed for good, so that it is kept only while the
// work needs it, not as long as finished jobs are.
func (r *Runner) HandlePersonal(kind string, h Handler) {
	r.Handle(kind, h)
	r.personal[kind] = true
}

// Every registers a periodic sweep: h runs about every interval, on one
// instance at a time.
func (r *Runner) Every(kind string, interval time.Duration, h Handler) {
	r.Handle(kind, h)
	r.every[kind] = interval
}

func (r *Runner) now() time.Time { return store.Now(r.Now) }

// SchedulePeriodic makes sure each sweep has a waiting job. Run calls it
// once at start; after that each sweep schedules its own next run.
func (r *Runner) SchedulePeriodic(ctx context.Context) error {
	if len(r.every) == 0 {
		return nil
	}
	return r.DB.Write(ctx, func(tx *store.Tx) error {
		for kind := range r.every {
			if err := Enqueue(tx, Spec{Kind: kind, UniqueKey: "every:" + kind, Payload: struct{}{}}, r.now()); err != nil {
				return err
			}
		}
		return nil
	})
}

// RunDue claims the jobs due now and runs them, and returns how many ran,
// once every one it claimed has ended. Tests call it after moving the
// clock; Run does not wait so (see there). Each job's outcome is recorded
// as soon as it is known, so a quick job is never held, past its lease,
// by a slow one claimed with it.
func (r *Runner) RunDue(ctx context.Context) (int, error) {
	p := r.newPool(ctx)
	defer p.close()
	total := 0
	for {
		if due, err := r.anyDue(ctx); err != nil || !due {
			return total, err
		}
		claimed, err := r.claim(ctx, r.batch())
		if err != nil || len(claimed) == 0 {
			return total, err
		}
		for _, j := range claimed {
			p.start(ctx, j)
		}
		if err := p.wait(); err != nil {
			return total, err
		}
		total += len(claimed)
		if ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
}

// anyDue looks, without writing, whether a claim would find anything, so
// that an idle runner does not take the write lock.
func (r *Runner) anyDue(ctx context.Context) (bool, error) {
	now := store.Micros(r.now())
	var n int
	err := r.DB.Read.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM jobs
		WHERE (status = 'pending' AND run_at <= $1) OR (status = 'running' AND locked_until < $1) LIMIT 1) AS due`, now).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("jobs: look for due jobs: %w", err)
	}
	return n > 0, nil
}

// claim takes up to limit due jobs of the kinds this runner handles:
// pending ones whose time has come, and running ones whose lease has run
// out.
func (r *Runner) claim(ctx context.Context, limit int) ([]*Job, error) {
	if len(r.kinds) == 0 {
		return nil, nil
	}
	var out []*Job
	err := r.DB.Write(ctx, func(tx *store.Tx) error {
		now := store.Micros(r.now())
		args := []any{r.id, now + r.lease().Microseconds(), now, limit}
		ph := make([]string, len(r.kinds))
		for i, k := range r.kinds {
			args = append(args, k)
			ph[i] = "$" + strconv.Itoa(len(args))
		}
		// No SKIP LOCKED: the store's write lock makes claims take turns
		// (see package store), so each sees the one before it committed.
		rows, err := tx.Query(`UPDATE jobs SET status = 'running', locked_by = $1, locked_until = $2, attempts = attempts + 1
			WHERE id IN (SELECT id FROM jobs
				WHERE ((status = 'pending' AND run_at <= $3) OR (status = 'running' AND locked_until < $3))
				AND kind IN (`+strings.Join(ph, ", ")+`) ORDER BY run_at LIMIT $4)
			RETURNING id, kind, payload, attempts, max_attempts`, args...)
		if err != nil {
			return fmt.Errorf("jobs: claim: %w", err)
		}
		defer rows.Close()
		out = out[:0]
		for rows.Next() {
			var j Job
			var payload string
			if err := rows.Scan(&j.ID, &j.Kind, &payload, &j.Attempt, &j.MaxAttempts); err != nil {
				return fmt.Errorf("jobs: claim: %w", err)
			}
			j.Payload = json.RawMessage(payload)
			out = append(out, &j)
		}
		return rows.Err()
	})
	return out, err
}

// runOne runs a job's handler, turning a panic into the job's error.
func (r *Runner) runOne(ctx context.Context, j *Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	return r.handlers[j.Kind](ctx, j)
}

// Backoff is the wait before attempt n+1 after n failed attempts: 10 s,
// doubling, at most an hour, spread by up to a fifth either way so that
// jobs that failed together do not retry together.
func Backoff(n int) time.Duration {
	d := 10 * time.Second * time.Duration(math.Pow(2, float64(min(n, 20)-1)))
	d = min(d, time.Hour)
	return d + time.Duration((mrand.Float64()*0.4-0.2)*float64(d))
}

// finish records each job's outcome in one transaction, and schedules the
// next run of each periodic sweep that ran.
func (r *Runner) finish(ctx context.Context, claimed []*Job, results []error) error {
	return r.DB.Write(ctx, func(tx *store.Tx) error {
		now := r.now()
		for i, j := range claimed {
			err := results[i]
			var q string
			var args []any
			switch {
			case err == nil:
				q, args = `UPDATE jobs SET status = 'done', unique_key = NULL, last_error = '', locked_by = '', finished_at = $2
					WHERE id = $1 AND locked_by = $3`, []any{j.ID, store.Micros(now), r.id}
			case j.Attempt >= j.MaxAttempts && r.every[j.Kind] == 0:
				q, args = `UPDATE jobs SET status = 'failed', unique_key = NULL, last_error = $2, locked_by = '', finished_at = $3
					WHERE id = $1 AND locked_by = $4`, []any{j.ID, truncate(err.Error()), store.Micros(now), r.id}
				r.Log.Error("job failed for good", "kind", j.Kind, "job", j.ID, "attempts", j.Attempt, "err", err)
			default:
				q, args = `UPDATE jobs SET status = 'pending', last_error = $2, locked_by = '', run_at = $3
					WHERE id = $1 AND locked_by = $4`, []any{j.ID, truncate(err.Error()), store.Micros(now.Add(Backoff(j.Attempt))), r.id}
				r.Log.Warn("job failed; will retry", "kind", j.Kind, "job", j.ID, "attempt", j.Attempt, "err", err)
			}
			if _, err := tx.Exec(q, args...); err != nil {
				return fmt.Errorf("jobs: finish %s: %w", j.ID, err)
			}
			if r.personal[j.Kind] {
				if _, err := tx.Exec(`UPDATE jobs SET payload = '{}' WHERE id = $1 AND status IN ($2, $3)`, j.ID, StatusDone, StatusFailed); err != nil {
					return fmt.Errorf("jobs: forget the payload of %s: %w", j.ID, err)
				}
			}
			if every := r.every[j.Kind]; every > 0 && err == nil {
				if err := Enqueue(tx, Spec{Kind: j.Kind, UniqueKey: "every:" + j.Kind, RunAt: now.Add(every), Payload: struct{}{}}, now); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func truncate(s string) string {
	if len(s) > 2000 {
		return s[:2000]
	}
	return s
}

// Run runs due jobs until ctx ends: at once when this process enqueues one,
// and every Poll for jobs that come due or that other instances wrote. Up
// to Batch jobs run at a time, and a job due is claimed as soon as there is
// room, without waiting for the others to end: a contact's preferences
// link is sent while a long import goes on beside it. First it takes up
// the jobs a runner before it left running, where it can tell that runner
// is gone (takeOver). When ctx ends it waits for the running jobs to
// record their outcomes.
func (r *Runner) Run(ctx context.Context) {
	n, release, err := r.takeOver(ctx)
	defer release()
	switch {
	case err != nil:
		r.Log.Warn("jobs: could not tell whether jobs were left running by a stopped process; they wait for their lease", "err", err)
	case n > 0:
		r.Log.Info("jobs: taken up the jobs a stopped process left running", "jobs", n)
	}
	if err := r.SchedulePeriodic(ctx); err != nil {
		r.Log.Error("scheduling periodic jobs", "err", err)
	}
	p := r.newPool(ctx)
	defer p.close()
	defer p.wait()
	// A job that ends wakes the loop too (pool.start): there is room.
	Loop(ctx, r.DB.Wakes(wakeTopic), r.Poll, r.Log, "running jobs", func(ctx context.Context) (int, error) { return r.startDue(ctx, p) })
}

// startDue claims as many due jobs as p has room for and starts them,
// again while it fills the room, and returns how many it started.
func (r *Runner) startDue(ctx context.Context, p *pool) (int, error) {
	total := 0
	for {
		room := p.room()
		if room == 0 {
			return total, nil
		}
		if due, err := r.anyDue(ctx); err != nil || !due {
			return total, err
		}
		claimed, err := r.claim(ctx, room)
		for _, j := range claimed {
			p.start(ctx, j)
		}
		total += len(claimed)
		if err != nil || len(claimed) < room {
			return total, err
		}
	}
}

func (r *Runner) batch() int {
	if r.Batch <= 0 {
		return 32
	}
	return r.Batch
}

// presenceName names the presence a runner holds on the database while it
// runs (store.DB.HoldPresence).
const presenceName = "jobs"

// takeOver holds this runner's presence on the database until release. A
// runner that finds no other present knows that none is alive on the
// database (on SQLite, where the system ends the presence of a process
// that ends, killed or not), so a job still marked running was claimed by
// a runner whose process ended before it could record the outcome, and
// its lease would keep it waiting for up to Lease for nothing: it is made
// due at once, as if its lease had run out (the attempt it was in
// counts). It returns how many jobs it took up.
//
// Where others are present, or presence cannot be told, nothing is taken
// up: on PostgreSQL, where several instances share the database and a
// job's runner may be alive on another, or when another process runs
// jobs on the same SQLite file. A job whose runner died then waits for
// its lease to run out, as it always could: a live runner's job is never
// taken from it.
func (r *Runner) takeOver(ctx context.Context) (int64, func(), error) {
	var n int64
	release, _, err := r.DB.HoldPresence(presenceName, func() error {
		return r.DB.Write(ctx, func(tx *store.Tx) error {
			res, err := tx.Exec(`UPDATE jobs SET locked_until = 0 WHERE status = 'running'`)
			if err != nil {
				return fmt.Errorf("jobs: take up jobs left running: %w", err)
			}
			n, _ = res.RowsAffected()
			return nil
		})
	})
	if err != nil {
		n = 0
	}
	return n, release, err
}

// Loop calls run at once, then whenever wakes signals and at least every
// poll, until ctx ends; errors are logged under what. The job runner and
// the email deliverer both run this way.
func Loop(ctx context.Context, wakes <-chan struct{}, poll time.Duration, log *slog.Logger, what string, run func(context.Context) (int, error)) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wakes:
		}
		if _, err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error(what, "err", err)
		}
		t.Reset(poll)
	}
}

// PurgeTx deletes the jobs that finished (done or failed) before before.
func PurgeTx(tx *store.Tx, before time.Time) error {
	if _, err := tx.Exec(`DELETE FROM jobs WHERE status IN ($1, $2) AND finished_at < $3`, StatusDone, StatusFailed, store.Micros(before)); err != nil {
		return fmt.Errorf("jobs: purge: %w", err)
	}
	return nil
}

// Lag returns how many pending jobs are due at now, and how long the one
// due longest has waited (0 when none is due): a runner that keeps up
// keeps it near its poll interval. It reads the jobs_due index only.
func Lag(ctx context.Context, q store.Querier, now time.Time) (due int64, lag time.Duration, err error) {
	var oldest sql.NullInt64
	err = q.QueryRowContext(ctx, `SELECT count(*), min(run_at) FROM jobs WHERE status = 'pending' AND run_at <= $1`,
		store.Micros(now)).Scan(&due, &oldest)
	if err != nil {
		return 0, 0, fmt.Errorf("jobs: read lag: %w", err)
	}
	return due, store.Age(now, oldest), nil
}
