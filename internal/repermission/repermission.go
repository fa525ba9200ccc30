// Package repermission asks contacts without a valid marketing consent for
// it again (SPEC R24, issue 17): after an import, or for the contacts a
// condition selects, each contact who may be asked is sent the double opt-in
// email (package optin, which quotes the current E-marketing consent text in
// the contact's language), and a run records who confirmed and who let the
// run's days pass without confirming.
//
// A contact who lapses is flagged (contacts.repermission_lapsed_at, the
// condition field repermission_lapsed), and retention counts their
// marketing consent as ended from then (package retention): unless another
// purpose keeps them, they become due for retention. A later double opt-in
// confirmation takes the flag off again.
//
// Every change is one transaction with what it causes: a run starts with
// its contacts and the double opt-in run that invites them
// (optin.Service.StartBulk); each batch of invitations records who was
// invited or skipped (BatchTx, run by optin inside the batch's
// transaction); a confirmation marks the contact confirmed inside the
// confirmation's own transaction (ConfirmedTx, a consent.ConfirmHook); and
// the sweep lapses a batch of contacts with their flags.
package repermission

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/imports"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store"
)

// Run statuses: a run invites (its double opt-in run is sending), then
// waits for the invited contacts to confirm or lapse, then is done. failed
// is shown when its double opt-in run failed; the contacts it invited
// before stay invited and still confirm or lapse.
const (
	StatusInviting = "inviting"
	StatusWaiting  = "waiting"
	StatusDone     = "done"
	StatusFailed   = "failed"
)

// Statuses lists the run statuses.
var Statuses = []string{StatusInviting, StatusWaiting, StatusDone, StatusFailed}

// Reasons a contact of the audience is not asked, besides optin's
// (erased, processing stopped, opted out, bounced, blocklisted, already
// confirmed by double opt-in) for contacts whose state forbids it.
const (
	// SkipValidConsent: the contact has a granted, unexpired E-marketing
	// consent; there is nothing to ask again.
	SkipValidConsent = "valid_consent"
	// SkipWithdrew: the contact's E-marketing consent stands withdrawn (they
	// said no, in a form, a file or on the phone); asking again someone who
	// refused marketing is itself marketing, which they refused.
	SkipWithdrew = "withdrew"
	// SkipAlreadyAsked: another run asked the contact and waits for their
	// answer; a second email would supersede the first's link.
	SkipAlreadyAsked = "already_asked"
	// SkipRunFailed: the run's double opt-in run failed before it reached
	// the contact, who was not asked and may be asked by a later run.
	SkipRunFailed = "run_failed"
)

// Days bounds and default: how long a contact has to confirm.
const (
	DefaultDays = 30
	MinDays     = 1
	MaxDays     = 365
)

// SweepJob is the name of the scheduled job that lapses the contacts whose
// days ran out; SweepInterval how often it runs.
const (
	SweepJob      = "repermission.sweep"
	SweepInterval = 10 * time.Minute
)

// Service starts runs, reports on them and lapses contacts.
type Service struct {
	DB    *store.DB
	OptIn *optin.Service
	// Imports gives an import and the contacts it wrote.
	Imports *imports.Service
	// Condition compiles a condition on contacts (contact.Service.Condition
	// for a caller who may not reveal sensitive values).
	Condition func(ctx context.Context, src string) (*filter.Condition, error)
	Log       *slog.Logger
	Now       func() time.Time
	// StartChunk is how many contacts one transaction of Start records;
	// 0 is startChunk.
	StartChunk int
}

func (s *Service) now() time.Time { return store.Now(s.Now) }

// Input asks for a run: exactly one of ImportID and Condition.
type Input struct {
	ImportID  string `json:"import_id,omitempty" doc:"the contacts this import created or changed"`
	Condition string `json:"condition,omitempty" doc:"the contacts this condition selects (docs/conditions.md)"`
	Days      *int   `json:"days,omitempty" doc:"days a contact has to confirm before they lapse, 1 to 365 (default 30)"`
}

// Run is a re-permission run with its counts.
type Run struct {
	ID        string `json:"id"`
	ImportID  string `json:"import_id,omitempty"`
	Condition string `json:"condition,omitempty"`
	Days      int    `json:"days"`
	Status    string `json:"status" enum:"inviting,waiting,done,failed"`
	Total     int64  `json:"total" doc:"contacts in the audience, each counted once"`
	Invited   int64  `json:"invited" doc:"contacts sent the double opt-in email"`
	// Skipped holds the contacts not asked, by reason: optin's reasons
	// and SkipValidConsent, SkipWithdrew, SkipAlreadyAsked.
	Skipped   map[string]int64 `json:"skipped" doc:"contacts not asked, by reason"`
	Confirmed int64            `json:"confirmed" doc:"invited contacts who confirmed"`
	Lapsed    int64            `json:"lapsed" doc:"invited contacts whose days ran out without confirming, and who have not confirmed since"`
	Waiting   int64            `json:"waiting" doc:"invited contacts whose days are still running"`
	// Error says why the double opt-in run of a failed run stopped.
	Error      string        `json:"error,omitempty"`
	CreatedBy  consent.Actor `json:"created_by"`
	CreatedAt  time.Time     `json:"created_at"`
	InvitedAt  *time.Time    `json:"invited_at,omitempty" doc:"when the last invitation was sent"`
	FinishedAt *time.Time    `json:"finished_at,omitempty" doc:"when every invited contact had confirmed or lapsed"`

	bulkID string
}

// audienceMember is a contact of the audience with what decides whether it
// is asked.
type audienceMember struct {
	id, optIn, deliverability string
	stopped, erased, valid    bool
	withdrew, asked           bool
}

// skip returns why m is not asked, or "".
func (m audienceMember) skip() string {
	// What the audience's query does not read (erasure requested, a
	// legal hold, a withdrawal of another marketing purpose) is found
	// when the contact's batch of invitations goes out.
	r := optin.WhyNot(optin.Standing{OptIn: m.optIn, Deliverability: m.deliverability, Stopped: m.stopped, Erased: m.erased})
	switch {
	case r != "":
		return r
	case m.valid:
		return SkipValidConsent
	case m.withdrew:
		return SkipWithdrew
	case m.asked:
		return SkipAlreadyAsked
	}
	return ""
}

// memberColumns read an audienceMember from contacts c; $1 is now.
const memberColumns = `SELECT c.id, c.opt_in_status, c.deliverability, c.processing_stopped_at IS NOT NULL, c.erased_at IS NOT NULL,
	EXISTS (SELECT 1 FROM consent_current cc WHERE cc.contact_id = c.id AND cc.purpose_id = '` + optin.EMarketing + `'
		AND cc.state = '` + consent.StateGranted + `' AND (cc.expires_at IS NULL OR cc.expires_at > $1)),
	EXISTS (SELECT 1 FROM consent_current cc WHERE cc.contact_id = c.id AND cc.purpose_id = '` + optin.EMarketing + `'
		AND cc.state = '` + consent.StateWithdrawn + `'),
	EXISTS (SELECT 1 FROM repermission_contacts rc WHERE rc.contact_id = c.id AND rc.skip_reason = ''
		AND rc.confirmed_at IS NULL AND rc.lapsed_at IS NULL)
	FROM contacts c WHERE `

func scanMember(row store.Scanner) (audienceMember, error) {
	var m audienceMember
	return m, row.Scan(&m.id, &m.optIn, &m.deliverability, &m.stopped, &m.erased, &m.valid, &m.withdrew, &m.asked)
}

// check validates in on its own and returns the days.
func (in *Input) check() (int, error) {
	in.ImportID, in.Condition = strings.TrimSpace(in.ImportID), strings.TrimSpace(in.Condition)
	switch {
	case in.ImportID == "" && in.Condition == "":
		return 0, errs.Invalid("condition", "give the contacts to ask: an import_id or a condition")
	case in.ImportID != "" && in.Condition != "":
		return 0, errs.Invalid("condition", "give an import_id or a condition, not both")
	case len(in.Condition) > 4000:
		return 0, errs.Invalid("condition", "must be at most 4000 characters")
	}
	days := DefaultDays
	if in.Days != nil {
		days = *in.Days
	}
	if days < MinDays || days > MaxDays {
		return 0, errs.Invalid("days", "must be %d to %d", MinDays, MaxDays)
	}
	return days, nil
}

// audience reads the contacts in's audience, in id order, with their state
// at now. A bad condition is an error on the field "condition"; an unknown
// import, or one that has not ended, on "import_id".
func (s *Service) audience(ctx context.Context, in Input, now time.Time) ([]audienceMember, error) {
	if in.Condition != "" {
		cond, err := s.Condition(ctx, in.Condition)
		if err != nil {
			return nil, errs.WithField(err, errs.Field("condition"))
		}
		where, args := cond.SQL(s.DB.Dialect, 2)
		out, err := store.QueryAll(ctx, s.DB.Read, scanMember, memberColumns+where+` ORDER BY c.id`, append([]any{store.Micros(now)}, args...)...)
		if err != nil {
			return nil, fmt.Errorf("repermission: read the audience: %w", err)
		}
		return out, nil
	}
	imp, ids, err := s.Imports.Written(ctx, in.ImportID)
	if errs.Is(err, errs.KindNotFound) {
		return nil, errs.Invalid("import_id", "there is no such import; it may have been removed 30 days after it ended")
	}
	if err != nil {
		return nil, err
	}
	switch {
	case imp.DryRun:
		return nil, errs.Refused("import_dry_run", "import_id", "the import was a dry run: it wrote no contact")
	case imp.Status == imports.StatusUndone || imp.Status == imports.StatusUndoing:
		return nil, errs.Refused("import_undone", "import_id", "the import was undone: the contacts it created are removed")
	case imp.Status != imports.StatusDone && imp.Status != imports.StatusCancelled && imp.Status != imports.StatusFailed:
		return nil, errs.Refused("import_not_ended", "import_id", "the import is %s; ask once it has ended", imp.Status)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	cond, args := store.Among(s.DB.Dialect, 2, ids)
	out, err := store.QueryAll(ctx, s.DB.Read, scanMember, memberColumns+`c.id `+cond+` ORDER BY c.id`, append([]any{store.Micros(now)}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("repermission: read the audience: %w", err)
	}
	return out, nil
}

// contactColumns are the columns Start writes, and contactTypes their
// types.
const contactColumns = `INSERT INTO repermission_contacts (run_id, contact_id, skip_reason)`

var contactTypes = []string{"text", "text", "text"}

// Start checks in, reads its audience and starts a run: the contacts who
// may be asked are invited by a double opt-in run (a job), the others are
// counted as skipped by reason.
//
// Whether another run already awaits a contact's answer is decided again
// as the contact is recorded, inside the transaction that records it:
// writes take turns (package store), so of runs started at the same time
// for the same contacts, each contact is asked by the first to record
// them and counted as SkipAlreadyAsked by the others.
//
// An audience of up to startChunk (StartChunk) contacts is recorded in one transaction
// with the run and its double opt-in run; on any error nothing is
// written. A larger one is recorded startChunk contacts to a transaction,
// so that no transaction holds the writer long (other changes wait behind
// it), under a run that is preparing and shown nowhere; the last
// transaction starts the double opt-in run and shows the run. A start
// that fails midway removes what it recorded, and one cut off (the
// process ended) is removed by Sweep.
func (s *Service) Start(ctx context.Context, in Input, by consent.Actor) (*Run, error) {
	days, err := in.check()
	if err != nil {
		return nil, err
	}
	now := s.now()
	members, err := s.audience(ctx, in, now)
	if err != nil {
		return nil, err
	}
	actor, _ := json.Marshal(by)
	newRun := func() *Run {
		return &Run{ID: uuid.Must(uuid.NewV7()).String(), ImportID: in.ImportID, Condition: in.Condition, Days: days, Status: statusPreparing,
			Total: int64(len(members)), Skipped: map[string]int64{}, CreatedBy: by, CreatedAt: now}
	}
	insertRun := func(tx *store.Tx, run *Run) error {
		if _, err := tx.Exec(`INSERT INTO repermission_runs (id, import_id, condition, days, bulk_id, status, total, skipped, created_by,
			created_at) VALUES ($1, $2, $3, $4, '', $5, $6, '{}', $7, $8)`, run.ID, run.ImportID, run.Condition, run.Days,
			statusPreparing, run.Total, string(actor), store.Micros(now)); err != nil {
			return fmt.Errorf("repermission: record run: %w", err)
		}
		return nil
	}
	if len(members) <= s.chunk() {
		var run *Run
		err := s.DB.Write(ctx, func(tx *store.Tx) error {
			run = newRun()
			if err := insertRun(tx, run); err != nil {
				return err
			}
			ask, err := recordTx(tx, run, members)
			if err != nil {
				return err
			}
			return s.launchTx(tx, run, ask, now)
		})
		if err != nil {
			return nil, err
		}
		s.Log.Info("re-permission run started", "run", run.ID, "contacts", run.Total, "skipped", run.SkippedCount())
		return run, nil
	}
	run := newRun()
	if err := s.DB.Write(ctx, func(tx *store.Tx) error { return insertRun(tx, run) }); err != nil {
		return nil, err
	}
	err = func() error {
		var ask []string
		for from := 0; from < len(members); from += s.chunk() {
			part := members[from:min(from+s.chunk(), len(members))]
			var got []string
			before := maps.Clone(run.Skipped)
			if err := s.DB.Write(ctx, func(tx *store.Tx) error {
				run.Skipped = maps.Clone(before) // a transaction run again starts over
				var err error
				got, err = recordTx(tx, run, part)
				return err
			}); err != nil {
				return err
			}
			ask = append(ask, got...)
		}
		return s.DB.Write(ctx, func(tx *store.Tx) error { return s.launchTx(tx, run, ask, now) })
	}()
	if err != nil {
		if derr := s.DB.Write(context.WithoutCancel(ctx), func(tx *store.Tx) error {
			_, err := tx.Exec(`DELETE FROM repermission_runs WHERE id = $1 AND status = $2`, run.ID, statusPreparing)
			return err
		}); derr != nil {
			s.Log.Error("repermission: remove a run that failed to start", "run", run.ID, "err", derr)
		}
		return nil, err
	}
	s.Log.Info("re-permission run started", "run", run.ID, "contacts", run.Total, "skipped", run.SkippedCount())
	return run, nil
}

// startChunk is how many contacts of a run one transaction of Start
// records (unless Service.StartChunk says otherwise): some tens of
// milliseconds of the writer.
const startChunk = 2000

func (s *Service) chunk() int {
	if s.StartChunk > 0 {
		return s.StartChunk
	}
	return startChunk
}

// statusPreparing is a run whose contacts Start is still recording; it is
// shown nowhere, and one left so (its start cut off) is removed by Sweep
// after preparingFor.
const (
	statusPreparing = "preparing"
	preparingFor    = time.Hour
)

// recordTx records members as contacts of run, each with why it is not
// asked (its state, or another run awaiting its answer), counts the
// skipped in run.Skipped, and returns the ids of those to ask.
func recordTx(tx *store.Tx, run *Run, members []audienceMember) ([]string, error) {
	var ask []string
	for _, m := range members {
		if m.skip() == "" {
			ask = append(ask, m.id)
		}
	}
	asked, err := awaited(tx, ask)
	if err != nil {
		return nil, err
	}
	rows := make([][]any, len(members))
	ask = ask[:0]
	for i, m := range members {
		reason := m.skip()
		if reason == "" && asked[m.id] {
			reason = SkipAlreadyAsked
		}
		rows[i] = []any{run.ID, m.id, reason}
		if reason != "" {
			run.Skipped[reason]++
			continue
		}
		ask = append(ask, m.id)
	}
	return ask, tx.InsertRows(store.Prefix("repermission: record contacts"), contactColumns, contactTypes, rows)
}

// launchTx ends run's preparing: it starts the double opt-in run that
// invites ask, or, with no one to ask, ends the run at once; and shows
// the run with its counts.
func (s *Service) launchTx(tx *store.Tx, run *Run, ask []string, now time.Time) error {
	var finished any
	run.Status = StatusInviting
	if len(ask) == 0 {
		run.Status, run.FinishedAt, finished = StatusDone, &now, store.Micros(now)
	} else {
		b, err := s.OptIn.StartBulkTx(tx, ask, optin.TriggerRepermission)
		if err != nil {
			return err
		}
		run.bulkID = b.ID
	}
	skipped, _ := json.Marshal(run.Skipped)
	if _, err := tx.Exec(`UPDATE repermission_runs SET bulk_id = $2, status = $3, skipped = $4, finished_at = $5 WHERE id = $1`,
		run.ID, run.bulkID, run.Status, string(skipped), finished); err != nil {
		return fmt.Errorf("repermission: start run: %w", err)
	}
	return nil
}

// awaited returns which of ids a run has asked and still awaits the
// answer of (neither confirmed nor lapsed); none is an empty map.
func awaited(tx *store.Tx, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	cond, args := store.Among(tx.Dialect(), 1, ids)
	list, err := store.QueryAll(context.Background(), tx, func(row store.Scanner) (string, error) {
		var id string
		return id, row.Scan(&id)
	}, `SELECT DISTINCT contact_id FROM repermission_contacts WHERE contact_id `+cond+`
		AND skip_reason = '' AND confirmed_at IS NULL AND lapsed_at IS NULL`, args...)
	if err != nil {
		return nil, fmt.Errorf("repermission: read contacts already asked: %w", err)
	}
	for _, id := range list {
		out[id] = true
	}
	return out, nil
}

const runSelect = `SELECT id, import_id, condition, days, bulk_id, status, total, invited, skipped, confirmed, lapsed, created_by,
	created_at, invited_at, finished_at FROM repermission_runs`

func scanRun(row store.Scanner) (*Run, error) {
	r := &Run{}
	var skipped, by string
	var created int64
	var invited, finished sql.NullInt64
	err := row.Scan(&r.ID, &r.ImportID, &r.Condition, &r.Days, &r.bulkID, &r.Status, &r.Total, &r.Invited, &skipped, &r.Confirmed,
		&r.Lapsed, &by, &created, &invited, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("re-permission run", "")
	}
	if err != nil {
		return nil, fmt.Errorf("repermission: read run: %w", err)
	}
	if err := json.Unmarshal([]byte(skipped), &r.Skipped); err != nil {
		return nil, fmt.Errorf("repermission: read run: %w", err)
	}
	_ = json.Unmarshal([]byte(by), &r.CreatedBy)
	r.CreatedAt = store.FromMicros(created)
	r.InvitedAt, r.FinishedAt = store.FromNullMicros(invited), store.FromNullMicros(finished)
	r.Waiting = r.Invited - r.Confirmed - r.Lapsed
	return r, nil
}

// Get returns a run with its counts, or a not-found error. A run whose
// double opt-in run failed is shown failed, with the reason.
func (s *Service) Get(ctx context.Context, id string) (*Run, error) {
	r, err := scanRun(s.DB.Read.QueryRowContext(ctx, runSelect+` WHERE id = $1 AND status <> '`+statusPreparing+`'`, id))
	if err != nil {
		return nil, err
	}
	return r, s.withBulk(ctx, r)
}

// withBulk marks r failed when it is inviting and its double opt-in run
// failed.
func (s *Service) withBulk(ctx context.Context, r *Run) error {
	if r.Status != StatusInviting || r.bulkID == "" {
		return nil
	}
	b, err := s.OptIn.GetBulk(ctx, r.bulkID)
	if err != nil {
		return err
	}
	if b.Status == optin.BulkFailed {
		r.Status, r.Error = StatusFailed, b.Error
	}
	return nil
}

// List returns the runs, newest first, at most limit (1 to 200); none is
// an empty slice.
func (s *Service) List(ctx context.Context, limit int) ([]*Run, error) {
	if limit < 1 || limit > 200 {
		limit = 50
	}
	out, err := store.QueryAll(ctx, s.DB.Read, scanRun, runSelect+` WHERE status <> '`+statusPreparing+`' ORDER BY created_at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("repermission: list runs: %w", err)
	}
	for _, r := range out {
		if err := s.withBulk(ctx, r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ForImport returns the runs started from the import, newest first; none
// is an empty slice.
func (s *Service) ForImport(ctx context.Context, importID string) ([]*Run, error) {
	out, err := store.QueryAll(ctx, s.DB.Read, scanRun, runSelect+` WHERE import_id = $1 AND status <> '`+statusPreparing+`'
		ORDER BY created_at DESC, id DESC LIMIT 20`, importID)
	if err != nil {
		return nil, fmt.Errorf("repermission: list runs: %w", err)
	}
	return out, nil
}

// SkippedCount is how many contacts of the run were not asked, for every
// reason.
func (r *Run) SkippedCount() int64 {
	var n int64
	for _, v := range r.Skipped {
		n += v
	}
	return n
}
