package webhook

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
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
	// Client sends the requests; nil means NewClient(Policy, Timeout).
	Client *http.Client
	// Lease is how long a claimed delivery stays this worker's.
	Lease time.Duration
	// Timeout bounds one attempt, connection to last byte read.
	Timeout time.Duration
	// Concurrency bounds the deliveries this worker holds at once.
	// PerEndpoint bounds its requests under way to one endpoint; every
	// instance holds at most heldPerSlot times that many deliveries to
	// one endpoint, counted in the database.
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

// claimed is a delivery this worker holds, with what sending it needs.
type claimed struct {
	id         int64
	endpointID string
	url        string
	secrets    []string // the current secret, then the previous while it still signs
	attempts   int
	first      sql.NullInt64
	event      events.Event
}

// claim takes up to want due deliveries: pending, due, not held by a live
// lease, to an enabled endpoint to which fewer than its held() deliveries
// are held, and with no earlier delivery to the same endpoint about the same
// contact still pending.
func (w *Worker) claim(ctx context.Context, want int) ([]claimed, error) {
	var out []claimed
	err := w.DB.Write(ctx, func(tx *store.Tx) error {
		out = out[:0]
		now := store.Micros(w.now())
		// Read row by row, so that the index on locked_until finds the
		// few held ones (a GROUP BY would walk the index by endpoint).
		held, err := store.QueryAll(ctx, tx, func(row store.Scanner) (string, error) {
			var id string
			return id, row.Scan(&id)
		}, `SELECT endpoint_id FROM webhook_deliveries WHERE locked_until >= $1`, now) // only pending ones are held
		if err != nil {
			return fmt.Errorf("webhook: count deliveries held: %w", err)
		}
		busy := map[string]int{}
		for _, id := range held {
			busy[id]++
		}
		rows, err := tx.Query(`SELECT d.id, d.endpoint_id, d.attempts, d.first_attempt_at, e.url, e.secret, e.previous_secret, e.previous_until,
				v.seq, v.type, v.version, COALESCE(v.contact_id, ''), v.occurred_at, v.data
			FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id JOIN events v ON v.seq = d.event_seq
			WHERE d.status = 'pending' AND d.next_at <= $1 AND d.locked_until < $1 AND e.enabled
			AND (d.contact_id = '' OR NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id
				AND p.contact_id = d.contact_id AND p.event_seq < d.event_seq AND p.status = 'pending'))
			ORDER BY d.next_at, d.id LIMIT $2`, now, min(want, 256))
		if err != nil {
			return fmt.Errorf("webhook: claim: %w", err)
		}
		defer rows.Close()
		var ids []int64
		for rows.Next() {
			var c claimed
			var secret, previous, data string
			var until, at int64
			if err := rows.Scan(&c.id, &c.endpointID, &c.attempts, &c.first, &c.url, &secret, &previous, &until,
				&c.event.Seq, &c.event.Type, &c.event.Version, &c.event.ContactID, &at, &data); err != nil {
				return fmt.Errorf("webhook: claim: %w", err)
			}
			if len(out) == want || busy[c.endpointID] >= w.endpoint(c.endpointID).held(w) {
				continue
			}
			busy[c.endpointID]++
			c.secrets = []string{secret}
			if previous != "" && until > now {
				c.secrets = append(c.secrets, previous)
			}
			c.event.OccurredAt, c.event.Data = store.FromMicros(at), json.RawMessage(data)
			out = append(out, c)
			ids = append(ids, c.id)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("webhook: claim: %w", err)
		}

		rows.Close()
		if len(ids) == 0 {
			return nil
		}
		in, args := store.InList(tx.Dialect(), 3, ids)
		if _, err := tx.Exec(`UPDATE webhook_deliveries SET locked_by = $1, locked_until = $2 WHERE id IN (`+in+`)`,
			append([]any{w.id, now + w.Lease.Microseconds()}, args...)...); err != nil {
			return fmt.Errorf("webhook: claim: %w", err)
		}
		return nil
	})
	return out, err
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
			if err := w.record(ctx, batch); err != nil {
				w.log().Error("webhook: record attempts; they will be made again when their lease runs out", "attempts", len(batch), "err", err)
			}
			cancel()
		}
		done <- n
	}
}
