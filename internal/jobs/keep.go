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

// keeper renews the leases of a claimed batch while its jobs run.
type keeper struct {
	r       *Runner
	mu      sync.Mutex
	running map[string]context.CancelCauseFunc
	ctxs    map[string]context.Context
	quit    chan struct{}
	done    chan struct{}
}

// keep starts renewing the leases of claimed, every third of the lease,
// until stop. Each job's context (job) ends with ErrLeaseLost when a
// renewal finds the job no longer this runner's.
func (r *Runner) keep(ctx context.Context, claimed []*Job) *keeper {
	k := &keeper{r: r, running: map[string]context.CancelCauseFunc{}, ctxs: map[string]context.Context{},
		quit: make(chan struct{}), done: make(chan struct{})}
	for _, j := range claimed {
		jctx, cancel := context.WithCancelCause(ctx)
		k.running[j.ID], k.ctxs[j.ID] = cancel, jctx
	}
	go k.loop(ctx)
	return k
}

// job returns the context job id runs in, and the release to call when
// its handler has returned: its lease is no longer renewed after that.
func (k *keeper) job(id string) (context.Context, func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ctx, cancel := k.ctxs[id], k.running[id]
	return ctx, func() {
		k.mu.Lock()
		delete(k.running, id)
		k.mu.Unlock()
		cancel(nil)
	}
}

// stop ends the renewals and waits for the last one.
func (k *keeper) stop() {
	close(k.quit)
	<-k.done
}

func (k *keeper) loop(ctx context.Context) {
	defer close(k.done)
	every := k.r.lease() / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-k.quit:
			return
		case <-t.C:
		}
		k.mu.Lock()
		ids := make([]string, 0, len(k.running))
		for id := range k.running {
			ids = append(ids, id)
		}
		k.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		// A renewal that waits longer than the time between two is of no
		// use: the next one tries again.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), every)
		kept, err := k.r.renew(rctx, ids)
		cancel()
		if err != nil {
			k.r.Log.Warn("jobs: could not renew the leases of running jobs", "jobs", len(ids), "err", err)
			continue
		}
		k.mu.Lock()
		for _, id := range ids {
			if cancel, ok := k.running[id]; ok && !kept[id] {
				k.r.Log.Warn("jobs: a running job's lease ran out; stopping it", "job", id)
				cancel(ErrLeaseLost)
			}
		}
		k.mu.Unlock()
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
