package optin

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/store"
)

// MaxInline is the most contacts invited in one transaction, while the
// request that asks waits: a request for more runs as a bulk run (StartBulk),
// a job that invites them a batch at a time.
const MaxInline = 1000

// BulkJob is the job kind of bulk runs; the app runs it with RunBulk.
const BulkJob = "optin.bulk"

// Bulk run statuses.
const (
	BulkQueued  = "queued"
	BulkRunning = "running"
	BulkDone    = "done"
	BulkFailed  = "failed"
)

// Bulk is a double opt-in run for many contacts and its progress.
type Bulk struct {
	ID         string         `json:"id"`
	Status     string         `json:"status" enum:"queued,running,done,failed"`
	Total      int            `json:"total" doc:"contacts in the run, each counted once"`
	Processed  int            `json:"processed" doc:"contacts handled so far, invited or skipped"`
	Invited    int            `json:"invited"`
	Skipped    map[string]int `json:"skipped" doc:"contacts not invited, by reason"`
	Error      string         `json:"error,omitempty" doc:"why a failed run stopped; the contacts processed before stay invited"`
	CreatedAt  time.Time      `json:"created_at"`
	StartedAt  *time.Time     `json:"started_at,omitempty"`
	FinishedAt *time.Time     `json:"finished_at,omitempty"`
}

// StartBulk records a run that invites the contacts in ids (a contact named
// twice is invited once) and queues the job that does it, in one
// transaction, in which then (when not nil) runs too with the run as
// queued, so that what the caller records about the request commits with
// the run or not at all. It returns at once; GetBulk follows the run.
func (s *Service) StartBulk(ctx context.Context, ids []string, trigger string, then func(*store.Tx, *Bulk) error) (*Bulk, error) {
	var b *Bulk
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		var err error
		if b, err = s.StartBulkTx(tx, ids, trigger); err != nil {
			return err
		}
		if then != nil {
			return then(tx, b)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// StartBulkTx is StartBulk inside the caller's transaction, for a caller
// who decides in that transaction whom the run invites.
func (s *Service) StartBulkTx(tx *store.Tx, ids []string, trigger string) (*Bulk, error) {
	ids = distinct(ids)
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("optin: encode run: %w", err)
	}
	now := s.now()
	b := &Bulk{ID: uuid.Must(uuid.NewV7()).String(), Status: BulkQueued, Total: len(ids), Skipped: map[string]int{}, CreatedAt: now}
	if err := tx.ExecLater(store.Prefix("optin: record run"), `INSERT INTO optin_bulk (id, status, trigger, contact_ids, total, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, b.ID, BulkQueued, trigger, string(list), b.Total, store.Micros(now)); err != nil {
		return nil, err
	}
	if err := jobs.Enqueue(tx, jobs.Spec{Kind: BulkJob, Payload: bulkPayload{ID: b.ID}, MaxAttempts: 5}, now); err != nil {
		return nil, err
	}
	return b, nil
}

type bulkPayload struct {
	ID string `json:"id"`
}

// GetBulk returns a run with its progress, or an errs.KindNotFound error
// when there is no such run.
func (s *Service) GetBulk(ctx context.Context, id string) (*Bulk, error) {
	b, _, _, err := readBulk(ctx, s.DB.Read, id, false)
	return b, err
}

// readBulk reads a run and, with work, its trigger and audience.
func readBulk(ctx context.Context, q store.Querier, id string, work bool) (*Bulk, string, []string, error) {
	b := &Bulk{ID: id}
	var trigger, list, skipped string
	var created int64
	var started, finished sql.NullInt64
	ids := "''"
	if work {
		ids = "contact_ids"
	}
	err := q.QueryRowContext(ctx, `SELECT status, trigger, `+ids+`, total, position, invited, skipped, error, created_at, started_at, finished_at
		FROM optin_bulk WHERE id = $1`, id).Scan(&b.Status, &trigger, &list, &b.Total, &b.Processed, &b.Invited, &skipped, &b.Error,
		&created, &started, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", nil, errs.NotFound("double opt-in run", "")
	}
	if err != nil {
		return nil, "", nil, fmt.Errorf("optin: read run: %w", err)
	}
	if err := json.Unmarshal([]byte(skipped), &b.Skipped); err != nil {
		return nil, "", nil, fmt.Errorf("optin: read run: %w", err)
	}
	b.CreatedAt = store.FromMicros(created)
	for _, t := range []struct {
		v   sql.NullInt64
		out **time.Time
	}{{started, &b.StartedAt}, {finished, &b.FinishedAt}} {
		if t.v.Valid {
			at := store.FromMicros(t.v.Int64)
			*t.out = &at
		}
	}
	var audience []string
	if work {
		if err := json.Unmarshal([]byte(list), &audience); err != nil {
			return nil, "", nil, fmt.Errorf("optin: read run: %w", err)
		}
	}
	return b, trigger, audience, nil
}

// Batch sizing of bulk runs: each batch is one write transaction, sized
// so that it holds the writer for about bulkBudget, so that a consent
// change waits behind it for no longer than that; the first is small, as
// it finds the caches cold. Each transaction costs a commit (a WAL flush)
// besides its contacts, so batches are as big as the budget allows.
const (
	bulkBudget    = 50 * time.Millisecond
	bulkFirst     = 50
	bulkSlice     = time.Minute // a job run stops after this and queues its continuation
	bulkMaxAtOnce = 4 * MaxInline
)

// RunBulk is the handler of BulkJob: it invites the run's contacts from
// where the committed batches left off, a batch to a transaction that
// also advances the run's position and counts, so a batch is done exactly
// once whatever stops the job. A run that takes longer than a job should
// hold its lease queues its own continuation. When the job's last attempt
// fails, the run is marked failed with the error.
func (s *Service) RunBulk(ctx context.Context, j *jobs.Job) error {
	var p bulkPayload
	if err := j.Decode(&p); err != nil {
		return fmt.Errorf("optin: run: %w", err)
	}
	err := s.runBulk(ctx, p.ID)
	if err != nil && j.Attempt >= j.MaxAttempts {
		s.Log.Error("double opt-in run failed", "run", p.ID, "err", err)
		if ferr := s.DB.Write(context.WithoutCancel(ctx), func(tx *store.Tx) error {
			now := s.now()
			res, ferr := tx.Exec(`UPDATE optin_bulk SET status = $2, error = $3, finished_at = $4 WHERE id = $1 AND status <> $5`,
				p.ID, BulkFailed, err.Error(), store.Micros(now), BulkDone)
			if ferr != nil {
				return ferr
			}
			if n, _ := res.RowsAffected(); n == 0 || s.AfterFailed == nil {
				return nil
			}
			return s.AfterFailed(tx, p.ID, now)
		}); ferr != nil {
			return errors.Join(err, ferr)
		}
	}
	return err
}

func (s *Service) runBulk(ctx context.Context, id string) error {
	b, trigger, ids, err := readBulk(ctx, s.DB.Read, id, true)
	if err != nil {
		return err
	}
	begun := time.Now()
	batch := bulkFirst
	emails := s.newBodies()
	for b.Status != BulkDone && b.Status != BulkFailed {
		if time.Since(begun) > bulkSlice {
			return s.DB.Write(ctx, func(tx *store.Tx) error {
				return jobs.Enqueue(tx, jobs.Spec{Kind: BulkJob, Payload: bulkPayload{ID: id}, MaxAttempts: 5}, s.now())
			})
		}
		part := ids[b.Processed:min(b.Processed+batch, len(ids))]
		// The next batch's emails are rendered while this one's
		// transaction runs, as many as the next batch can hold (at most
		// twice this one), while that finds emails not rendered yet;
		// what is not ready then is rendered in it.
		ahead := ids[b.Processed+len(part) : min(b.Processed+len(part)+min(2*batch, bulkMaxAtOnce), len(ids))]
		warmed := make(chan struct{})
		if emails.worthWarming() {
			go func() {
				defer close(warmed)
				emails.warm(ctx, ahead)
			}()
		} else {
			close(warmed)
		}
		start := time.Now()
		var next *Bulk
		err := s.DB.Write(ctx, func(tx *store.Tx) error {
			now := s.now()
			res, err := s.inviteAll(tx, part, trigger, now, emails)
			if err != nil {
				return err
			}
			next = b.advance(res, len(part), now)
			if s.AfterBatch != nil {
				if err := s.AfterBatch(tx, id, res.outcomes, next.Status == BulkDone, now); err != nil {
					return err
				}
			}
			skipped, _ := json.Marshal(next.Skipped)
			var finished any
			if next.FinishedAt != nil {
				finished = store.Micros(*next.FinishedAt)
			}
			// Guarded by the position read: a runner that took the job
			// over meanwhile has done this batch, and this one rolls back.
			r, err := tx.Exec(`UPDATE optin_bulk SET status = $2, position = $3, invited = $4, skipped = $5, started_at = $6, finished_at = $7
				WHERE id = $1 AND position = $8 AND status IN ($9, $10)`, id, next.Status, next.Processed, next.Invited, string(skipped),
				store.Micros(*next.StartedAt), finished, b.Processed, BulkQueued, BulkRunning)
			if err != nil {
				return fmt.Errorf("optin: record progress: %w", err)
			}
			if n, _ := r.RowsAffected(); n != 1 {
				return fmt.Errorf("optin: run %s moved on elsewhere", id)
			}
			return nil
		})
		<-warmed
		if err != nil {
			return err
		}
		b = next
		took := time.Since(start)
		if s.batchDone != nil {
			s.batchDone(len(part), took)
		}
		batch = resize(batch, len(part), took)
	}
	return nil
}

// advance returns the run after a batch of n contacts with result res.
func (b *Bulk) advance(res *Result, n int, now time.Time) *Bulk {
	next := *b
	next.Skipped = make(map[string]int, len(b.Skipped)+len(res.Skipped))
	for k, v := range b.Skipped {
		next.Skipped[k] = v
	}
	for k, v := range res.Skipped {
		next.Skipped[k] += v
	}
	next.Invited += res.Invited
	next.Processed += n
	next.Status = BulkRunning
	if next.StartedAt == nil {
		next.StartedAt = &now
	}
	if next.Processed >= next.Total {
		next.Status = BulkDone
		next.FinishedAt = &now
	}
	return &next
}

// resize returns the size of the next batch from how long the last one,
// of done contacts, took: the contacts that fit in bulkBudget at that
// pace, at most twice as many as before and at most bulkMaxAtOnce.
func resize(batch, done int, took time.Duration) int {
	if done < batch {
		return batch // the last, short batch says little
	}
	perContact := took / time.Duration(max(done, 1))
	fit := bulkMaxAtOnce
	if perContact > 0 {
		fit = int(bulkBudget / perContact)
	}
	return max(1, min(fit, 2*batch, bulkMaxAtOnce))
}
