package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/store"
)

// Worker defaults.
const (
	DefaultLease       = 2 * time.Minute
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 1024
	DefaultPerEndpoint = 8
	claimGap           = 2 * time.Millisecond
)

// Worker makes deliveries from events and sends them. Several may run,
// in one process or in several sharing a database: a delivery is claimed
// with a lease in a write, and writes take turns (package store), so two
// workers never hold one delivery at once. One whose instance dies is
// taken over when the lease runs out, and sent again with the same id.
type Worker struct {
	*Service
	// Client sends the requests: NewClient(Policy, Timeout) as NewWorker
	// makes it, so one that changes either makes the client again.
	Client *http.Client
	// Lease is how long a claimed delivery stays this worker's.
	Lease time.Duration
	// Timeout bounds one attempt, connection to last byte read.
	Timeout time.Duration
	// Concurrency bounds the deliveries this worker holds at once.
	// PerEndpoint bounds its requests under way to one endpoint; how many
	// deliveries to one endpoint all workers hold at once is bounded too,
	// in the database, by what those requests can send (held).
	Concurrency int
	PerEndpoint int
	// Poll is how often to look for work that other instances wrote or
	// that came due.
	Poll time.Duration
	// Backoff is the wait after a delivery's nth failure (Backoff, the
	// function, unless a test wants retries sooner).
	Backoff func(failures int) time.Duration

	id  string
	mu  sync.Mutex
	eps map[string]*endpointState
}

// NewWorker returns a worker for s with the defaults.
func NewWorker(s *Service) *Worker {
	b := make([]byte, 6)
	rand.Read(b)
	w := &Worker{Service: s, Lease: DefaultLease, Timeout: DefaultTimeout, Concurrency: DefaultConcurrency,
		PerEndpoint: DefaultPerEndpoint, Poll: time.Second, Backoff: Backoff, id: hex.EncodeToString(b)}
	w.Client = NewClient(s.Policy, w.Timeout)
	return w
}

// endpointState is what a worker knows of an endpoint between claims.
type endpointState struct {
	slots   chan struct{} // PerEndpoint requests at a time
	latency atomic.Int64  // of recent attempts, smoothed, in ns
	// idleUntil (unix ns) passes the endpoint over in claims: its last
	// claim found nothing to take (all due deliveries waiting behind
	// earlier ones, say), and looking again at every claim would read
	// them all each time.
	idleUntil atomic.Int64
}

func (e *endpointState) idle() bool              { return time.Now().UnixNano() < e.idleUntil.Load() }
func (e *endpointState) setIdle(until time.Time) { e.idleUntil.Store(until.UnixNano()) }

// busyAgain ends the idle time of the endpoints ids, or of all of them
// when none is given: they may have something to take.
func (w *Worker) busyAgain(ids ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, e := range w.eps {
		if len(ids) == 0 || slices.Contains(ids, id) {
			e.idleUntil.Store(0)
		}
	}
}

func (w *Worker) endpoint(id string) *endpointState {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.eps == nil {
		w.eps = map[string]*endpointState{}
	}
	e, ok := w.eps[id]
	if !ok {
		e = &endpointState{slots: make(chan struct{}, w.PerEndpoint)}
		e.latency.Store(int64(100 * time.Millisecond)) // a guess, soon replaced by what it measures
		w.eps[id] = e
	}
	return e
}

// held is how many deliveries to the endpoint may be held at once (by
// all workers, as counted in the database): as many as its PerEndpoint
// requests can send, at its recent latency, within half a lease, and at
// least four for each request. A fast receiver then has hundreds on
// their way, each write claiming or finishing many, and a slow one few,
// so that none waits past its lease (deliver lets go of one that would).
func (e *endpointState) held(w *Worker) int {
	per := int(w.Lease / 2 / time.Duration(max(e.latency.Load(), 1)))
	return w.PerEndpoint * min(max(per, 4), 64)
}

// observe folds an attempt's latency into the endpoint's.
func (e *endpointState) observe(d time.Duration) {
	old := e.latency.Load()
	e.latency.Store(old + (int64(d)-old)/8)
}

// deliver attempts c, once one of its endpoint's PerEndpoint requests is
// free, and returns the outcome to record; or nil when it let c go
// without an attempt: because the worker is stopping, or because c waited
// so long that its attempt might outlast the lease. An attempt under way
// when the worker stops is carried to its end (Timeout at most), so that
// a restart repeats nothing.
func (w *Worker) deliver(ctx context.Context, c claimed) *outcome {
	claimedAt := time.Now()
	ep := w.endpoint(c.endpointID)
	select {
	case ep.slots <- struct{}{}:
	case <-ctx.Done():
		w.letGo(c.id)
		return nil
	}
	if time.Since(claimedAt) > w.Lease/2 {
		<-ep.slots
		w.letGo(c.id)
		return nil
	}
	at := w.now()
	r := w.attempt(context.WithoutCancel(ctx), c, at)
	<-ep.slots
	ep.observe(r.latency)
	return &outcome{c: c, at: at, r: r}
}

// letGo releases a delivery, logging a failure to (its lease then runs
// out instead).
func (w *Worker) letGo(id int64) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.release(ctx, id); err != nil {
		w.log().Error("webhook: let a delivery go", "delivery", id, "err", err)
	}
}

// release lets go of a claimed delivery without counting an attempt.
func (w *Worker) release(ctx context.Context, id int64) error {
	return w.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`UPDATE webhook_deliveries SET locked_by = '', locked_until = 0 WHERE id = $1 AND locked_by = $2`, id, w.id)
		return err
	})
}

// SendDue claims and sends every delivery due now, in turns, until none
// is left, and returns how many attempts it made. Run does the same as
// work comes; tests call it after moving the clock.
func (w *Worker) SendDue(ctx context.Context) (int, error) {
	total := 0
	for {
		w.busyAgain()
		cs, err := w.claim(ctx, w.Concurrency)
		if err != nil || len(cs) == 0 {
			return total, err
		}
		outs := make(chan *outcome, len(cs))
		for _, c := range cs {
			go func() { outs <- w.deliver(ctx, c) }()
		}
		var batch []outcome
		for range cs {
			if o := <-outs; o != nil {
				batch = append(batch, *o)
			}
		}
		if err := w.record(context.WithoutCancel(ctx), batch); err != nil {
			return total, err
		}
		total += len(batch)
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// Run makes deliveries from events (at once when this process commits
// one, and every Poll for those of other instances) and sends them, up to
// Concurrency at a time, until ctx ends; then it waits for the attempts
// under way and records them. Outcomes are recorded as they come, those
// that came meanwhile together, in one write.
func (w *Worker) Run(ctx context.Context) {
	dispatcher := make(chan struct{})
	go func() {
		defer close(dispatcher)
		jobs.Loop(ctx, events.Wakes(w.DB), w.Poll, w.log(), "webhook: make deliveries", w.DispatchAll)
	}()
	outs := make(chan *outcome, w.Concurrency)
	done := make(chan int, w.Concurrency)
	go w.recordAll(outs, done)
	wakes := w.DB.Wakes(wakeTopic)
	poll := time.NewTimer(0)
	defer poll.Stop()
	inflight, look := 0, false
	var last time.Time
	for {
		// At most one claim every claimGap: each claim is a write, and
		// one per delivery ended would be most of the work.
		if wait := claimGap - time.Since(last); look && inflight < w.Concurrency && wait > 0 {
			poll.Reset(wait)
		} else if look && inflight < w.Concurrency {
			last = time.Now()
			cs, err := w.claim(ctx, w.Concurrency-inflight)
			if err != nil && ctx.Err() == nil {
				w.log().Error("webhook: claim deliveries", "err", err)
			}
			for _, c := range cs {
				inflight++
				go func() { outs <- w.deliver(ctx, c) }()
			}
			look = false
			poll.Reset(w.Poll)
		}
		select {
		case <-ctx.Done():
			for inflight > 0 {
				inflight -= <-done
			}
			close(outs)
			<-dispatcher
			return
		case n := <-done:
			inflight -= n
		case <-wakes:
			w.busyAgain()
		case <-poll.C:
		}
		look = true
	}
}

// recordAll records the outcomes that come on outs, all those waiting in
// one write, and says on done how many deliveries each write ended, until
// outs is closed.
func (w *Worker) recordAll(outs <-chan *outcome, done chan<- int) {
	for o := range outs {
		n, batch := 1, []outcome{}
		if o != nil {
			batch = append(batch, *o)
		}
		for more := true; more && n < 1000; {
			select {
			case o, ok := <-outs:
				if !ok {
					more = false
					break
				}
				n++
				if o != nil {
					batch = append(batch, *o)
				}
			default:
				more = false
			}
		}
		if len(batch) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := w.record(ctx, batch); err == nil {
				w.busyAgain(endpointsOf(batch)...) // the next delivery about a contact may go
			} else {
				w.log().Error("webhook: record attempts; they will be made again when their lease runs out", "attempts", len(batch), "err", err)
			}
			cancel()
		}
		done <- n
	}
}

// endpointsOf lists the endpoints of the outcomes, once each.
func endpointsOf(batch []outcome) []string {
	var ids []string
	for _, o := range batch {
		if !slices.Contains(ids, o.c.endpointID) {
			ids = append(ids, o.c.endpointID)
		}
	}
	return ids
}
