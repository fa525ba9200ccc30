package workflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/optin"
	"github.com/consentry/consentry/internal/store"
)

// Consumer is the runner's name as an events consumer.
const Consumer = "workflows"

// DefaultMaxDepth is how many workflow actions in a row may lead to an
// event that still sets rules off: a change by a person (depth 0), a rule
// acting on it (1), a rule acting on that (2); an event of depth 3 sets
// nothing off, and each rule it would have set off logs a run with status
// depth_limit.
const DefaultMaxDepth = 3

// Runner runs the rules on events as they are committed, and the waiting
// runs when they are due. Several instances may run at once: each event
// is acted on by the one whose move past it commits (events.Advance), and
// each waiting run by the one that finishes it.
type Runner struct {
	DB       *store.DB
	Rules    *Service
	OptIn    *optin.Service
	Withdraw lists.Withdrawal // for list_remove of a list bound to a purpose
	// Webhook calls webhook endpoints; nil fails webhook actions.
	Webhook  WebhookCall
	BaseURL  string
	Log      *slog.Logger
	Now      func() time.Time
	Batch    int           // events or due runs read at a time; 0 means 500
	Poll     time.Duration // how often due runs are looked for without a wake
	MaxDepth int           // 0 means DefaultMaxDepth
	Settle   time.Duration // the wait after each pass; 0 means DefaultSettle
}

func (r *Runner) now() time.Time { return store.Now(r.Now) }

func (r *Runner) batch() int {
	if r.Batch > 0 {
		return r.Batch
	}
	return 500
}

func (r *Runner) maxDepth() int {
	if r.MaxDepth > 0 {
		return r.MaxDepth
	}
	return DefaultMaxDepth
}

// Run runs rules until ctx ends, woken by every commit of events and
// every Poll for due runs.
//
// After each pass it waits Settle before the next, so that
// a burst of changes (a thousand a second) is read in a few batches
// rather than one small batch per commit: each batch costs reads and a
// write of its own, which the changes share the writer with.
func (r *Runner) Run(ctx context.Context) {
	settle := r.Settle
	if settle == 0 {
		settle = DefaultSettle
	}
	jobs.Loop(ctx, events.Wakes(r.DB), r.Poll, r.Log, "running workflow rules", func(ctx context.Context) (int, error) {
		n, err := r.RunDue(ctx)
		t := time.NewTimer(settle)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		return n, err
	})
}

// DefaultSettle is how long the runner waits after a pass, when
// Runner.Settle is 0.
const DefaultSettle = 50 * time.Millisecond

// RunDue acts on every event committed since the last call and on every
// waiting run that is due, and returns how many runs it logged. The first
// call ever starts the consumer after the newest event: rules act on what
// happens from then on.
func (r *Runner) RunDue(ctx context.Context) (int, error) {
	total := 0
	for _, step := range []func(context.Context, int) (int, bool, error){r.events, r.sweep} {
		for {
			n, more, err := step(ctx, r.batch())
			total += n
			if err != nil {
				return total, err
			}
			if !more {
				break
			}
		}
	}
	return total, nil
}

// plan is what was decided for one rule and event: a run to log, and
// whether to act on it now.
type plan struct {
	rule *Rule
	run  *Run
	act  bool
}

// events reads up to limit events, decides outside the writer which rules
// they set off, and writes the move past them with every run in one
// transaction. It reports whether there may be more to read: a full
// batch, or actions that may have written events. If that
// transaction fails, the events are taken again one at a time, and one
// that fails alone is passed with its runs logged as failed, so that one
// bad event does not hold up the rest.
func (r *Runner) events(ctx context.Context, limit int) (int, bool, error) {
	if idle, err := r.skipWhileNoRule(ctx); err != nil || idle {
		return 0, false, err
	}
	pos, evs, err := events.Peek(ctx, r.DB.Read, Consumer, limit)
	if err != nil {
		return 0, false, err
	}
	if pos < 0 {
		return 0, true, r.DB.Write(ctx, func(tx *store.Tx) error { return events.Advance(tx, Consumer, pos, 0) })
	}
	if len(evs) == 0 {
		return 0, false, nil
	}
	plans, err := r.decide(ctx, evs)
	if err != nil {
		return 0, false, err
	}
	last := evs[len(evs)-1].Seq
	err = r.DB.Write(ctx, func(tx *store.Tx) error {
		if err := events.Advance(tx, Consumer, pos, last); err != nil {
			return err
		}
		now := r.now()
		for _, p := range plans {
			if p.act {
				p.run.Done = []Done{} // the function may run again (store.DB.Write)
				if err := r.act(tx, p.rule, p.run, now); err != nil {
					return err
				}
			}
			if err := p.run.insertTx(tx); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, events.ErrMoved):
		return 0, true, nil // another instance took them: read on from where it left
	case err != nil && ctx.Err() == nil && limit > 1:
		r.Log.Warn("workflow rules: a batch of events failed; taking them one at a time", "err", err)
		return r.events(ctx, 1)
	case err != nil && ctx.Err() == nil:
		return r.passFailed(ctx, pos, last, plans, err)
	case err != nil:
		return 0, false, err
	}
	// Actions write events of their own, which rules may act on next.
	return len(plans), len(evs) == limit || slices.ContainsFunc(plans, func(p plan) bool { return p.act }), nil
}

// skipWhileNoRule moves the consumer past every event, without reading
// one, while no rule is enabled, and reports whether it did: none of them
// could set off a run, and a rule turned on later acts on what happens
// from then on either way. A large import's millions of events would
// otherwise be read and decided on, a batch at a time, for nothing.
func (r *Runner) skipWhileNoRule(ctx context.Context) (bool, error) {
	var enabled int
	if err := r.DB.Read.QueryRowContext(ctx, `SELECT count(*) FROM workflow_rules WHERE enabled`).Scan(&enabled); err != nil {
		return false, fmt.Errorf("workflow: count enabled rules: %w", err)
	}
	if enabled > 0 {
		return false, nil
	}
	skipped := false
	err := r.DB.Write(ctx, func(tx *store.Tx) error {
		// Again in the writer's transaction: a rule enabled meanwhile
		// must see the events after its enabling.
		skipped = false
		if err := tx.QueryRow(`SELECT count(*) FROM workflow_rules WHERE enabled`).Scan(&enabled); err != nil {
			return fmt.Errorf("workflow: count enabled rules: %w", err)
		}
		if enabled > 0 {
			return nil
		}
		skipped = true
		return events.Skip(tx, Consumer)
	})
	return skipped, err
}

// passFailed moves past an event whose runs could not be carried out,
// logging each as failed with the error.
func (r *Runner) passFailed(ctx context.Context, pos, seq int64, plans []plan, cause error) (int, bool, error) {
	r.Log.Error("workflow rules: an event's runs failed", "seq", seq, "err", cause)
	err := r.DB.Write(ctx, func(tx *store.Tx) error {
		if err := events.Advance(tx, Consumer, pos, seq); err != nil {
			return err
		}
		for _, p := range plans {
			run := *p.run
			run.Done = []Done{}
			if p.act {
				run.Status, run.Outcome = StatusFailed, "could not be carried out: "+truncate(cause.Error())
			}
			if err := run.insertTx(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, events.ErrMoved) {
		return 0, true, nil
	}
	return len(plans), err == nil, err
}

func truncate(s string) string {
	if len(s) > 500 {
		return s[:500]
	}
	return s
}

// decide returns the runs the events set off: for each event about a
// contact, each enabled rule on its type whose condition holds on the
// contact as it is now, with the event's facts. An event about a contact
// that no longer exists sets nothing off.
func (r *Runner) decide(ctx context.Context, evs []events.Event) ([]plan, error) {
	rules, err := enabledRules(ctx, r.DB.Read)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range evs {
		if e.ContactID != "" && len(rules[e.Type]) > 0 {
			ids = append(ids, e.ContactID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	conds, err := r.conditions(ctx)
	if err != nil {
		return nil, err
	}
	var needs filter.Needs
	for _, e := range evs {
		for _, rule := range rules[e.Type] {
			needs = needs.Or(conds.needs(rule))
		}
	}
	subjects, err := r.subjects(ctx, ids, needs)
	if err != nil {
		return nil, err
	}
	now := r.now()
	var out []plan
	for _, e := range evs {
		s := subjects[e.ContactID]
		if s == nil || len(rules[e.Type]) == 0 {
			continue
		}
		s = withFacts(s, e) // once per event, for all its rules
		for _, rule := range rules[e.Type] {
			holds, why := conds.holds(rule, s)
			switch {
			case why != "":
				out = append(out, plan{rule: rule, run: newRun(rule, e, StatusFailed, why, now)})
			case !holds:
			case e.Depth >= r.maxDepth():
				out = append(out, plan{rule: rule, run: newRun(rule, e, StatusDepthLimit,
					fmt.Sprintf("depth limit reached: the event came of %d workflow actions in a row; at most %d set rules off", e.Depth, r.maxDepth()-1), now)})
			case rule.DelayMinutes > 0:
				run := newRun(rule, e, StatusWaiting, "", now)
				due := e.OccurredAt.Add(rule.Delay())
				run.DueAt = &due
				out = append(out, plan{rule: rule, run: run})
			default:
				out = append(out, plan{rule: rule, run: newRun(rule, e, StatusDone, "", now), act: true})
			}
		}
	}
	return out, nil
}

// subjects reads the contacts of ids as the condition language sees them,
// with their consents and lists, a few queries for them all. A contact
// that no longer exists is absent.
//
// Consent states, lists and the masked values of sensitive fields are read
// only when needs says a condition reads them: a batch of a thousand
// events costs a query less for each.
func (r *Runner) subjects(ctx context.Context, ids []string, needs filter.Needs) (map[string]*filter.Subject, error) {
	people := r.Rules.Contacts
	cs, err := people.Many(ctx, ids, needs.Sensitive)
	if err != nil {
		return nil, err
	}
	var states map[string]map[string]string
	if needs.Consents {
		if states, err = people.Consent.StatesOf(ctx, ids); err != nil {
			return nil, err
		}
	}
	var subs map[string]map[string]bool
	if needs.Lists {
		if subs, err = lists.SubscribedIDsOf(ctx, r.DB.Read, ids); err != nil {
			return nil, err
		}
	}
	out := make(map[string]*filter.Subject, len(cs))
	for id, c := range cs {
		st, in := states[id], subs[id]
		if st == nil {
			st = map[string]string{}
		}
		if in == nil {
			in = map[string]bool{}
		}
		out[id] = contact.Subject(c, st, in)
	}
	return out, nil
}

// conditionSet compiles each rule's condition once per batch, against
// the schema as it is now.
type conditionSet struct {
	schema *filter.Schema
	now    time.Time
	byRule map[string]*filter.Condition
	errs   map[string]string
}

func (r *Runner) conditions(ctx context.Context) (*conditionSet, error) {
	schema, err := r.Rules.Contacts.ConditionSchemaFor(ctx, false)
	if err != nil {
		return nil, err
	}
	return &conditionSet{schema: schema, now: r.now(), byRule: map[string]*filter.Condition{}, errs: map[string]string{}}, nil
}

// condition returns rule's condition compiled, once per set, or nil with
// why it no longer compiles; nil and "" for a rule without a condition.
func (cs *conditionSet) condition(rule *Rule) (*filter.Condition, string) {
	if rule.Condition == "" {
		return nil, ""
	}
	cond, seen := cs.byRule[rule.ID]
	if !seen {
		var err error
		cond, err = compileCondition(rule.Condition, rule.Trigger, cs.schema, cs.now)
		if err != nil {
			cs.errs[rule.ID] = "the condition no longer holds together: " + err.Error()
		}
		cs.byRule[rule.ID] = cond
	}
	return cond, cs.errs[rule.ID]
}

// needs says what rule's condition reads beyond the contact's fields.
func (cs *conditionSet) needs(rule *Rule) filter.Needs {
	if cond, _ := cs.condition(rule); cond != nil {
		return cond.Needs()
	}
	return filter.Needs{}
}

// holds reports whether rule's condition holds on s, a subject with its
// event's facts (withFacts). why is set when the condition no longer
// compiles (a field or purpose it names was deleted since the rule was
// saved).
func (cs *conditionSet) holds(rule *Rule, s *filter.Subject) (ok bool, why string) {
	if rule.Condition == "" {
		return true, ""
	}
	cond, why := cs.condition(rule)
	if cond == nil {
		return false, why
	}
	return cond.Match(s), ""
}

// withFacts returns s with the facts of e; s itself is left as it is, for
// the contact's other events.
func withFacts(s *filter.Subject, e events.Event) *filter.Subject {
	with := *s
	with.Facts = factValues(e.Type, e.Data)
	return &with
}
