package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/consentry/consentry/internal/store"
)

// ErrLeaseLost ends the context of a job that is no longer its runner's:
// its lease ran out while the runner could not renew it (the database
// unreachable for longer than Lease), and another runner may have taken
// it up. The handler should stop; its outcome is not recorded.
var ErrLeaseLost = errors.New("jobs: the job's lease ran out and it may run elsewhere")

// pool runs claimed jobs, each in a goroutine of its own, renews their
// leases while they run, and records each one's outcome as soon as it is
// known.
type pool struct {
	r    *Runner
	wg   sync.WaitGroup
	mu   sync.Mutex
	busy int
	err  error                              // the first outcome that could not be recorded since wait
	held map[string]context.CancelCauseFunc // the running jobs, by id
	quit chan struct{}
	done chan struct{}
}

// newPool starts a pool, with its lease renewal, until close.
func (r *Runner) newPool(ctx context.Context) *pool {
	p := &pool{r: r, held: map[string]context.CancelCauseFunc{}, quit: make(chan struct{}), done: make(chan struct{})}
	go p.keep(ctx)
	return p
}

// room returns how many more jobs may start.
func (p *pool) room() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(p.r.batch()-p.busy, 0)
}

// start runs j in a goroutine of its own: its handler in a context that
// ends with ErrLeaseLost when a renewal finds the job no longer this
// runner's, then the recording of its outcome.
func (p *pool) start(ctx context.Context, j *Job) {
	jctx, cancel := context.WithCancelCause(ctx)
	p.mu.Lock()
	p.busy++
	p.held[j.ID] = cancel
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		res := p.r.runOne(jctx, j)
		p.mu.Lock()
		delete(p.held, j.ID) // its lease is no longer renewed
		p.mu.Unlock()
		cancel(nil)
		// The outcome is recorded even while shutting down, or the job
		// would run again for nothing.
		fctx, stop := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		err := p.r.finish(fctx, []*Job{j}, []error{res})
		stop()
		p.mu.Lock()
		p.busy--
		if err != nil && p.err == nil {
			p.err = err
		}
		p.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			p.r.Log.Error("jobs: record an outcome", "kind", j.Kind, "job", j.ID, "err", err)
		}
		p.r.DB.Wake(wakeTopic) // there is room for another (Run)
	}()
}

// wait waits until every job started has ended, and returns the first
// error recording an outcome since the last wait.
func (p *pool) wait() error {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.err
	p.err = nil
	return err
}

// close ends the lease renewal; the jobs must have ended (wait).
func (p *pool) close() {
	close(p.quit)
	<-p.done
}

// keep renews the leases of the running jobs every third of the lease,
// until close, and ends the context of a job that is no longer this
// runner's.
func (p *pool) keep(ctx context.Context) {
	defer close(p.done)
	every := p.r.lease() / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
		}
		p.mu.Lock()
		ids := make([]string, 0, len(p.held))
		for id := range p.held {
			ids = append(ids, id)
		}
		p.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		// A renewal that waits longer than the time between two is of no
		// use: the next one tries again.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), every)
		kept, err := p.r.renew(rctx, ids)
		cancel()
		if err != nil {
			p.r.Log.Warn("jobs: could not renew the leases of running jobs", "jobs", len(ids), "err", err)
			continue
		}
		p.mu.Lock()
		for _, id := range ids {
			if cancel, ok := p.held[id]; ok && !kept[id] {
				p.r.Log.Warn("jobs: a running job's lease ran out; stopping it", "job", id)
				cancel(ErrLeaseLost)
			}
		}
		p.mu.Unlock()
	}
}

// renew moves the leases of ids, where they are still this runner's and
// running, a whole Lease ahead, and returns those it moved.
func (r *Runner) renew(ctx context.Context, ids []string) (map[string]bool, error) {
	kept := map[string]bool{}
	err := r.DB.Write(ctx, func(tx *store.Tx) error {
		clear(kept)
		now := r.now()
		args := []any{r.id, store.Micros(now.Add(r.lease()))}
		ph := make([]string, len(ids))
		for i, id := range ids {
			args = append(args, id)
			ph[i] = "$" + strconv.Itoa(len(args))
		}
		rows, err := tx.Query(`UPDATE jobs SET locked_until = $2 WHERE locked_by = $1 AND status = 'running'
			AND id IN (`+strings.Join(ph, ", ")+`) RETURNING id`, args...)
		if err != nil {
			return fmt.Errorf("jobs: renew leases: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return fmt.Errorf("jobs: renew leases: %w", err)
			}
			kept[id] = true
		}
		return rows.Err()
	})
	return kept, err
}

func (r *Runner) lease() time.Duration {
	if r.Lease <= 0 {
		return DefaultLease
	}
	return r.Lease
}

func (r *Runner) timeout() time.Duration {
	if r.Timeout <= 0 {
		return DefaultTimeout
	}
	return r.Timeout
}
