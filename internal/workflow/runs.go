package workflow

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
)

// Run statuses.
const (
	StatusDone    = "done"    // the actions ran
	StatusWaiting = "waiting" // for its delay; the condition is checked again when due
	StatusSkipped = "skipped" // when due, the condition no longer held, the rule was off, or the contact was gone; or the consent of its consent event changed
	StatusFailed  = "failed"  // an action was refused; the outcome says which and why
	// StatusDepthLimit is an event caused by MaxDepth workflow actions in
	// a row: the rule did not act on it, so that rules cannot set each
	// other off without end.
	StatusDepthLimit = "depth_limit"
)

// RunStatuses lists the run statuses.
var RunStatuses = []string{StatusDone, StatusWaiting, StatusSkipped, StatusFailed, StatusDepthLimit}

// Run is one entry of the run log: a rule set off by an event about a
// contact, and what came of it.
type Run struct {
	ID        string `json:"id"`
	RuleID    string `json:"rule_id"`
	ContactID string `json:"contact_id"`
	EventSeq  int64  `json:"event_seq"`
	EventType string `json:"event_type"`
	Status    string `json:"status" enum:"done,waiting,skipped,failed,depth_limit"`
	// Outcome says in words what happened: why a run was skipped or
	// failed; never a field's value.
	Outcome string `json:"outcome"`
	// Done lists what the run did, in order.
	Done       []Done     `json:"done"`
	DueAt      *time.Time `json:"due_at,omitempty" doc:"for a waiting run: when it acts, if its condition still holds"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`

	depth int
	data  json.RawMessage
}

// Done is one action a run carried out.
type Done struct {
	Action int    `json:"action" doc:"the action's place in the rule, from 0"`
	Type   string `json:"type"`
	// EmailID is the outbox id of the email queued (email_contact,
	// email_address, notify_users, double_opt_in).
	EmailID string `json:"email_id,omitempty"`
	// EmailIDs are the outbox ids of the emails a notify_users action
	// with roles queued, one for each user.
	EmailIDs   []string `json:"email_ids,omitempty"`
	EndpointID string   `json:"endpoint_id,omitempty"`
	ListID     string   `json:"list_id,omitempty"`
	Field      string   `json:"field,omitempty"`
	// Note says why an action did nothing, or not yet: a double opt-in
	// the contact may not get, no privacy address to notify, a webhook
	// call that waits for its endpoint to be turned on again.
	Note string `json:"note,omitempty"`
}

// newRun is the run of rule r on event e, not yet written.
func newRun(r *Rule, e events.Event, status, outcome string, now time.Time) *Run {
	return &Run{ID: uuid.Must(uuid.NewV7()).String(), RuleID: r.ID, ContactID: e.ContactID, EventSeq: e.Seq, EventType: e.Type,
		Status: status, Outcome: outcome, Done: []Done{}, CreatedAt: now, depth: e.Depth, data: e.Data}
}

// event is the event the run was set off by, as far as the run keeps it.
func (r *Run) event() events.Event {
	return events.Event{Seq: r.EventSeq, Type: r.EventType, ContactID: r.ContactID, Depth: r.depth, Data: r.data}
}

// insertTx writes run inside tx; a finished one gets its finishing time.
func (r *Run) insertTx(tx *store.Tx) error {
	done, err := json.Marshal(r.Done)
	if err != nil {
		return err
	}
	var due, finished any
	if r.DueAt != nil {
		due = store.Micros(*r.DueAt)
	}
	if r.Status != StatusWaiting {
		finished = store.Micros(r.CreatedAt)
	}
	return tx.ExecLater(store.Prefix("workflow: log run"), `INSERT INTO workflow_runs (id, rule_id, contact_id, event_seq, event_type, event_depth,
		event_data, status, outcome, done, due_at, created_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		r.ID, r.RuleID, r.ContactID, r.EventSeq, r.EventType, r.depth, string(r.data), r.Status, r.Outcome, string(done), due,
		store.Micros(r.CreatedAt), finished)
}

// finishTx records how waiting run r ended, inside tx. It returns false,
// writing nothing, when the run is no longer waiting (another instance
// took it, or its rule was deleted).
func (r *Run) finishTx(tx *store.Tx, now time.Time) (bool, error) {
	done, err := json.Marshal(r.Done)
	if err != nil {
		return false, err
	}
	res, err := tx.Exec(`UPDATE workflow_runs SET status = $2, outcome = $3, done = $4, finished_at = $5 WHERE id = $1 AND status = 'waiting'`,
		r.ID, r.Status, r.Outcome, string(done), store.Micros(now))
	if err != nil {
		return false, fmt.Errorf("workflow: finish run: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

const runSelect = `SELECT id, rule_id, contact_id, event_seq, event_type, event_depth, event_data, status, outcome, done, due_at,
	created_at, finished_at FROM workflow_runs`

func scanRun(row store.Scanner) (*Run, error) {
	var r Run
	var data, done string
	var due, finished sql.NullInt64
	var created int64
	if err := row.Scan(&r.ID, &r.RuleID, &r.ContactID, &r.EventSeq, &r.EventType, &r.depth, &data, &r.Status, &r.Outcome, &done,
		&due, &created, &finished); err != nil {
		return nil, fmt.Errorf("workflow: read run: %w", err)
	}
	r.data = json.RawMessage(data)
	if err := json.Unmarshal([]byte(done), &r.Done); err != nil {
		return nil, fmt.Errorf("workflow: decode run %s: %w", r.ID, err)
	}
	r.CreatedAt, r.DueAt, r.FinishedAt = store.FromMicros(created), store.FromNullMicros(due), store.FromNullMicros(finished)
	return &r, nil
}

// RunQuery selects a page of the run log, newest first.
type RunQuery struct {
	RuleID    string // one rule's runs; empty: every rule's
	ContactID string // one contact's runs; empty: every contact's
	Status    string // one status; empty: all
	Limit     int    // 1 to 500; 0 means 50
	After     string // the id of the last run of the previous page
}

// Runs returns one page of the run log and the cursor of the next page,
// empty on the last. No runs is an empty slice.
func (s *Service) Runs(ctx context.Context, q RunQuery) ([]*Run, string, error) {
	switch {
	case q.Limit == 0:
		q.Limit = 50
	case q.Limit < 1 || q.Limit > 500:
		return nil, "", errs.Invalid("limit", "must be between 1 and 500")
	}
	if err := errs.IDCursor("after", q.After); err != nil {
		return nil, "", err
	}
	where, args := " WHERE 1 = 1", []any{}
	for _, c := range []struct{ col, v string }{{"rule_id", q.RuleID}, {"contact_id", q.ContactID}, {"status", q.Status}} {
		if c.v != "" {
			args = append(args, c.v)
			where += fmt.Sprintf(" AND %s = $%d", c.col, len(args))
		}
	}
	if q.After != "" {
		args = append(args, q.After)
		where += fmt.Sprintf(" AND id < $%d", len(args))
	}
	args = append(args, q.Limit+1)
	out, err := store.QueryAll(ctx, s.DB.Read, scanRun, runSelect+where+fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args)), args...)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > q.Limit {
		out = out[:q.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// Keep is how long the run log is kept.
const Keep = 90 * 24 * time.Hour

// PruneJob is the periodic job that deletes runs older than Keep, and
// PruneInterval how often it runs.
const (
	PruneJob      = "workflow.prune"
	PruneInterval = 24 * time.Hour
)

// prunePiece is how many runs Prune deletes in a transaction: a day's
// runs after an import of a million contacts are a million, too many to
// delete while every other change waits for the writer.
const prunePiece = 2000

// Prune deletes the runs that finished and were started more than Keep
// before now, prunePiece a transaction; waiting runs stay until they are
// due.
func (s *Service) Prune(ctx context.Context, now time.Time) error {
	before := store.Micros(now.Add(-Keep))
	for {
		var n int64
		if err := s.DB.Write(ctx, func(tx *store.Tx) error {
			res, err := tx.Exec(`DELETE FROM workflow_runs WHERE id IN
				(SELECT id FROM workflow_runs WHERE status <> 'waiting' AND created_at < $1 LIMIT $2)`, before, prunePiece)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		}); err != nil {
			return fmt.Errorf("workflow: prune runs: %w", err)
		}
		if n < prunePiece {
			return nil
		}
	}
}
