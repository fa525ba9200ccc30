package workflow

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/contact"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/lists"
	"github.com/consentry/consentry/internal/store"
)

// Service keeps the rules.
type Service struct {
	DB       *store.DB
	Contacts *contact.Service
	Lists    *lists.Service
	// Endpoint reports whether a webhook endpoint exists, to check the
	// webhook actions of a rule being saved; nil leaves them unchecked.
	Endpoint func(ctx context.Context, id string) (bool, error)
	Now      func() time.Time
}

func (s *Service) now() time.Time { return store.Now(s.Now) }

// Env returns what rules are checked against now: the contact schema for
// a caller who may not reveal sensitive values, the lists, the fields.
func (s *Service) Env(ctx context.Context) (*Env, error) {
	schema, err := s.Contacts.ConditionSchemaFor(ctx, false)
	if err != nil {
		return nil, err
	}
	names, err := s.Lists.Names(ctx)
	if err != nil {
		return nil, err
	}
	defs, err := s.Contacts.Fields(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]*contact.FieldDefinition{}
	fields := map[string]FieldInfo{}
	for _, f := range contact.CoreFields {
		fields[f.Name] = FieldInfo{Label: f.Label}
	}
	for _, d := range defs {
		byName[d.Name] = d
		fields[d.Name] = FieldInfo{Label: labelOf(d), Sensitive: d.Sensitive}
	}
	env := &Env{Schema: schema, Now: s.now(), ListID: names.ListID, Fields: fields,
		SetValue: func(field string, v any) (any, error) { return contact.CheckSetValue(field, v, byName) }}
	if s.Endpoint != nil {
		env.Endpoint = func(id string) bool {
			ok, err := s.Endpoint(ctx, id)
			return ok && err == nil
		}
	}
	return env, nil
}

func labelOf(d *contact.FieldDefinition) string {
	if d.Label != "" {
		return d.Label
	}
	return d.Name
}

// auditedRule is what the audit log keeps of a rule: what sets it off,
// on whom and what it does. The text and HTML of the emails it sends are
// kept as their digests (audit.Digest).
type auditedRule struct {
	Name         string   `json:"name"`
	Trigger      string   `json:"trigger"`
	Condition    string   `json:"condition"`
	Actions      []Action `json:"actions"`
	DelayMinutes int      `json:"delay_minutes"`
	Enabled      bool     `json:"enabled"`
}

func (d *Definition) audited() auditedRule {
	// The actions as they are read back from the database, so that a
	// value sent as 5.0 and read back as 5 is not a change.
	var actions []Action
	raw, _ := json.Marshal(d.Actions)
	_ = json.Unmarshal(raw, &actions)
	for i := range actions {
		actions[i].Text, actions[i].HTML = audit.Digest(actions[i].Text), audit.Digest(actions[i].HTML)
	}
	return auditedRule{Name: d.Name, Trigger: d.Trigger, Condition: d.Condition, Actions: actions, DelayMinutes: d.DelayMinutes,
		Enabled: d.enabled()}
}

// auditTx writes the audit log's entries of a change of rule id, named
// d.Name, by by: each field that differs between before and after, two
// auditedRule or nil (for what was not yet, or is no more), under action,
// save that turning the rule on or off is an action of its own.
func auditTx(tx *store.Tx, by audit.Actor, id string, d *Definition, action string, before, after any, now time.Time) error {
	obj := audit.Object{Kind: audit.KindWorkflowRule, ID: id, Name: d.Name}
	for _, c := range audit.Changes(before, after) {
		a := action
		if c.Name == "enabled" && before != nil && after != nil {
			a = audit.ActionWorkflowRuleDisabled
			if d.enabled() {
				a = audit.ActionWorkflowRuleEnabled
			}
		}
		if err := audit.RecordTx(tx, by, obj, a, []audit.Change{c}, now); err != nil {
			return err
		}
	}
	return nil
}

// Create checks and saves a new rule, made by by, who the audit log
// names. A name another rule has is a conflict on "name".
func (s *Service) Create(ctx context.Context, by audit.Actor, d Definition) (*Rule, error) {
	env, err := s.Env(ctx)
	if err != nil {
		return nil, err
	}
	if err := d.Check(env); err != nil {
		return nil, err
	}
	on := d.enabled()
	d.Enabled = &on
	now := s.now()
	r := &Rule{ID: uuid.Must(uuid.NewV7()).String(), Definition: d, CreatedAt: now, UpdatedAt: now}
	actions, err := json.Marshal(d.Actions)
	if err != nil {
		return nil, fmt.Errorf("workflow: encode actions: %w", err)
	}
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`INSERT INTO workflow_rules (id, name, name_key, trigger_type, condition, actions, delay_minutes, enabled, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`, r.ID, d.Name, strings.ToLower(d.Name), d.Trigger, d.Condition, string(actions),
			d.DelayMinutes, on, store.Micros(now))
		if err := nameTaken(err, d.Name); err != nil {
			return err
		}
		return auditTx(tx, by, r.ID, &d, audit.ActionWorkflowRuleCreated, nil, d.audited(), now)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Update replaces the definition of rule id, checked as on create; a
// definition without enabled keeps the rule's. Waiting runs of the rule
// act, when due, on the definition saved then. The audit log names by
// for each field that changed. It returns a not-found error when there
// is no such rule.
func (s *Service) Update(ctx context.Context, by audit.Actor, id string, d Definition) (*Rule, error) {
	env, err := s.Env(ctx)
	if err != nil {
		return nil, err
	}
	if err := d.Check(env); err != nil {
		return nil, err
	}
	actions, err := json.Marshal(d.Actions)
	if err != nil {
		return nil, fmt.Errorf("workflow: encode actions: %w", err)
	}
	var out *Rule
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		old, err := scanRule(tx.QueryRow(ruleSelect+` WHERE id = $1`, id))
		if err != nil {
			return err
		}
		if d.Enabled == nil {
			d.Enabled = old.Enabled
		}
		now := s.now()
		_, err = tx.Exec(`UPDATE workflow_rules SET name = $2, name_key = $3, trigger_type = $4, condition = $5, actions = $6,
			delay_minutes = $7, enabled = $8, updated_at = $9 WHERE id = $1`, id, d.Name, strings.ToLower(d.Name), d.Trigger, d.Condition,
			string(actions), d.DelayMinutes, *d.Enabled, store.Micros(now))
		if err := nameTaken(err, d.Name); err != nil {
			return err
		}
		out = &Rule{ID: id, Definition: d, CreatedAt: old.CreatedAt, UpdatedAt: now}
		return auditTx(tx, by, id, &d, audit.ActionWorkflowRuleChanged, old.audited(), d.audited(), now)
	})
	return out, err
}

// SetEnabled turns rule id on or off, by by, who the audit log names
// when the rule was not so already. A rule turned off starts nothing
// new, and its waiting runs are skipped when due. It returns a not-found
// error when there is no such rule.
func (s *Service) SetEnabled(ctx context.Context, by audit.Actor, id string, on bool) error {
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		r, err := scanRule(tx.QueryRow(ruleSelect+` WHERE id = $1`, id))
		if err != nil {
			return err
		}
		before, now := r.audited(), s.now()
		res, err := tx.Exec(`UPDATE workflow_rules SET enabled = $2, updated_at = $3 WHERE id = $1`, id, on, store.Micros(now))
		if err := oneRow(res, err); err != nil {
			return err
		}
		r.Enabled = &on
		return auditTx(tx, by, id, &r.Definition, audit.ActionWorkflowRuleChanged, before, r.audited(), now)
	})
}

// Delete removes rule id with its run log and waiting runs, by by, who
// the audit log names with what the rule was. It returns a not-found
// error when there is no such rule.
func (s *Service) Delete(ctx context.Context, by audit.Actor, id string) error {
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		r, err := scanRule(tx.QueryRow(ruleSelect+` WHERE id = $1`, id))
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM workflow_runs WHERE rule_id = $1`, id); err != nil {
			return fmt.Errorf("workflow: delete runs: %w", err)
		}
		res, err := tx.Exec(`DELETE FROM workflow_rules WHERE id = $1`, id)
		if err := oneRow(res, err); err != nil {
			return err
		}
		return auditTx(tx, by, id, &r.Definition, audit.ActionWorkflowRuleDeleted, r.audited(), nil, s.now())
	})
}

func oneRow(res sql.Result, err error) error {
	if err != nil {
		return fmt.Errorf("workflow: write rule: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errs.NotFound("workflow_rule", "")
	}
	return nil
}

func nameTaken(err error, name string) error {
	if store.IsUniqueViolation(err) {
		return errs.Conflict("name_taken", "name", "another rule is named %q", name)
	}
	if err != nil {
		return fmt.Errorf("workflow: write rule: %w", err)
	}
	return nil
}

// Get returns rule id, or a not-found error.
func (s *Service) Get(ctx context.Context, id string) (*Rule, error) {
	return scanRule(s.DB.Read.QueryRowContext(ctx, ruleSelect+` WHERE id = $1`, id))
}

// List returns every rule by name; none is an empty slice.
func (s *Service) List(ctx context.Context) ([]*Rule, error) {
	return store.QueryAll(ctx, s.DB.Read, scanRule, ruleSelect+` ORDER BY name_key`)
}

// enabledRules returns the rules that run, by trigger.
func enabledRules(ctx context.Context, q store.Querier) (map[string][]*Rule, error) {
	all, err := store.QueryAll(ctx, q, scanRule, ruleSelect+` WHERE enabled ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	out := map[string][]*Rule{}
	for _, r := range all {
		out[r.Trigger] = append(out[r.Trigger], r)
	}
	return out, nil
}

const ruleSelect = `SELECT id, name, trigger_type, condition, actions, delay_minutes, enabled, created_at, updated_at FROM workflow_rules`

// scanRule returns a not-found error when the row is missing.
func scanRule(row store.Scanner) (*Rule, error) {
	var r Rule
	var actions string
	var on bool
	var created, updated int64
	err := row.Scan(&r.ID, &r.Name, &r.Trigger, &r.Condition, &actions, &r.DelayMinutes, &on, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("workflow_rule", "")
	}
	if err != nil {
		return nil, fmt.Errorf("workflow: read rule: %w", err)
	}
	if err := json.Unmarshal([]byte(actions), &r.Actions); err != nil {
		return nil, fmt.Errorf("workflow: decode the actions of rule %s: %w", r.ID, err)
	}
	r.Enabled = &on
	r.CreatedAt, r.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return &r, nil
}

func isNotFound(err error) bool { return errs.Is(err, errs.KindNotFound) }
