package workflow

import (
	"context"
	"errors"
	"github.com/consentry/consentry/internal/filter"

	"github.com/consentry/consentry/internal/store"
)

// errTaken rolls back a sweep in which a run was no longer waiting when it
// was to be finished: another instance finished it first.
var errTaken = errors.New("workflow: a waiting run was taken by another instance")

// sweep finishes up to limit waiting runs that are due: each whose rule
// is still on and whose condition still holds on the contact as it is
// now, with the facts of the event that started it, acts; the others are
// skipped with the reason. It reports whether there may be more.
func (r *Runner) sweep(ctx context.Context, limit int) (int, bool, error) {
	now := r.now()
	due, err := store.QueryAll(ctx, r.DB.Read, scanRun, runSelect+` WHERE status = 'waiting' AND due_at <= $1 ORDER BY due_at, id LIMIT $2`,
		store.Micros(now), limit)
	if err != nil || len(due) == 0 {
		return 0, false, err
	}
	rules := map[string]*Rule{}
	var ids []string
	for _, run := range due {
		ids = append(ids, run.ContactID)
		if _, ok := rules[run.RuleID]; !ok {
			rule, err := r.Rules.Get(ctx, run.RuleID)
			if err != nil && !isNotFound(err) {
				return 0, false, err
			}
			rules[run.RuleID] = rule
		}
	}
	conds, err := r.conditions(ctx)
	if err != nil {
		return 0, false, err
	}
	var needs filter.Needs
	for _, rule := range rules {
		if rule != nil {
			needs = needs.Or(conds.needs(rule))
		}
	}
	subjects, err := r.subjects(ctx, ids, needs)
	if err != nil {
		return 0, false, err
	}
	var plans []plan
	for _, run := range due {
		rule, s := rules[run.RuleID], subjects[run.ContactID]
		p := plan{rule: rule, run: run}
		switch {
		case rule == nil:
			continue // deleted with its runs since they were read
		case !rule.enabled():
			run.Status, run.Outcome = StatusSkipped, "the rule was turned off"
		case s == nil:
			run.Status, run.Outcome = StatusSkipped, "the contact no longer exists"
		default:
			holds, why := conds.holds(rule, withFacts(s, run.event()))
			switch {
			case why != "":
				run.Status, run.Outcome = StatusFailed, why
			case !holds:
				run.Status, run.Outcome = StatusSkipped, "the condition no longer holds"
			default:
				p.act = true
			}
		}
		plans = append(plans, p)
	}
	err = r.DB.Write(ctx, func(tx *store.Tx) error {
		now := r.now()
		for _, p := range plans {
			p.run.Done = []Done{}
			if p.act {
				if err := r.act(tx, p.rule, p.run, now); err != nil {
					return err
				}
			}
			ok, err := p.run.finishTx(tx, now)
			if err != nil {
				return err
			}
			if !ok {
				return errTaken
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, errTaken):
		return 0, true, nil
	case err != nil && ctx.Err() == nil && limit > 1:
		r.Log.Warn("workflow rules: a batch of due runs failed; taking them one at a time", "err", err)
		return r.sweep(ctx, 1)
	case err != nil && ctx.Err() == nil && len(plans) == 1:
		return r.failDue(ctx, plans[0].run, err)
	case err != nil:
		return 0, false, err
	}
	return len(plans), len(due) == limit, nil
}

// failDue finishes a due run that could not be carried out as failed,
// with the error, so that it does not hold up the runs due after it.
func (r *Runner) failDue(ctx context.Context, run *Run, cause error) (int, bool, error) {
	r.Log.Error("workflow rules: a due run failed", "run", run.ID, "err", cause)
	run.Done, run.Status, run.Outcome = []Done{}, StatusFailed, "could not be carried out: "+truncate(cause.Error())
	err := r.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := run.finishTx(tx, r.now())
		return err
	})
	return 1, err == nil, err
}
