// Package audit keeps the audit log of what operators change in how the
// service treats every contact: settings, purposes (their legal basis,
// retention and consent text), users and their roles, API tokens, webhook
// endpoints, webforms, sources, custom fields (made sensitive, their
// mask, the purpose storing them needs), lists, workflow rules, campaigns
// (their content, audience and every step of their sending) and campaign
// templates. An entry says who made the change (a user of the admin pages
// or an API token, by id, or the command line), when, what it is about
// (the kind of object, its id and its name at the time, so that it still
// reads once the object is gone), the action, and one field's value
// before and after: a change of several fields writes an entry for each.
// It is written in the change's own transaction, so an entry exists
// exactly when its change committed.
//
// A secret is never written: the caller names its secret fields, which
// get an entry that names them, with both values empty. So is a new
// password: never the password, nor any hash of it or of a token. A
// campaign's body and a template's layout are written as their Digest,
// which tells that they changed without copying them into the log.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// Kinds of object an entry is about.
const (
	KindSetting  = "setting"
	KindPurpose  = "purpose"
	KindUser     = "user"
	KindAPIToken = "api_token"
	KindWebhook  = "webhook"
	KindWebform  = "webform"
	KindSource   = "source"
	// KindField is a custom field's definition; its id is the field's
	// name, which never changes, and its name the label.
	KindField            = "field"
	KindList             = "list"
	KindWorkflowRule     = "workflow_rule"
	KindCampaign         = "campaign"
	KindCampaignTemplate = "campaign_template"
)

// Kinds lists every kind of object, as the filters accept them.
var Kinds = []string{KindSetting, KindPurpose, KindUser, KindAPIToken, KindWebhook, KindWebform, KindSource, KindField, KindList,
	KindWorkflowRule, KindCampaign, KindCampaignTemplate}

// Actions: what happened to the object. Each entry's subject is the field
// that changed (for a setting, the setting's name).
const (
	ActionSettingChanged       = "setting_changed"
	ActionPurposeCreated       = "purpose_created"
	ActionPurposeChanged       = "purpose_changed"
	ActionUserCreated          = "user_created"
	ActionUserRoleChanged      = "user_role_changed"
	ActionUserDisabled         = "user_disabled"
	ActionUserEnabled          = "user_enabled"
	ActionUserPasswordChanged  = "user_password_changed"
	ActionAPITokenCreated      = "api_token_created"
	ActionAPITokenRevoked      = "api_token_revoked"
	ActionWebhookCreated       = "webhook_created"
	ActionWebhookChanged       = "webhook_changed"
	ActionWebhookSecretRotated = "webhook_secret_rotated"
	ActionWebhookDeleted       = "webhook_deleted"
	ActionWebformCreated       = "webform_created"
	ActionWebformChanged       = "webform_changed"
	ActionWebformDeleted       = "webform_deleted"
	ActionSourceCreated        = "source_created"
	ActionSourceChanged        = "source_changed"
	// A source deactivated stays on old consent records but may not be
	// used for new ones; reactivated, it may again.
	ActionSourceDeactivated = "source_deactivated"
	ActionSourceReactivated = "source_reactivated"
	ActionFieldCreated      = "field_created"
	ActionFieldChanged      = "field_changed"
	// ActionFieldMadeSensitive: the field's values are encrypted and shown
	// masked from now on, for good.
	ActionFieldMadeSensitive      = "field_made_sensitive"
	ActionListCreated             = "list_created"
	ActionListChanged             = "list_changed"
	ActionListDeleted             = "list_deleted"
	ActionWorkflowRuleCreated     = "workflow_rule_created"
	ActionWorkflowRuleChanged     = "workflow_rule_changed"
	ActionWorkflowRuleEnabled     = "workflow_rule_enabled"
	ActionWorkflowRuleDisabled    = "workflow_rule_disabled"
	ActionWorkflowRuleDeleted     = "workflow_rule_deleted"
	ActionCampaignCreated         = "campaign_created"
	ActionCampaignChanged         = "campaign_changed"
	ActionCampaignScheduled       = "campaign_scheduled"
	ActionCampaignUnscheduled     = "campaign_unscheduled"
	ActionCampaignStarted         = "campaign_started" // sending started, at the operator's word
	ActionCampaignPaused          = "campaign_paused"
	ActionCampaignResumed         = "campaign_resumed"
	ActionCampaignCancelled       = "campaign_cancelled"
	ActionCampaignRetried         = "campaign_retried" // recipients whose outcome was unknown queued again
	ActionCampaignDeleted         = "campaign_deleted"
	ActionCampaignTemplateCreated = "campaign_template_created"
	ActionCampaignTemplateChanged = "campaign_template_changed"
	ActionCampaignTemplateDeleted = "campaign_template_deleted"
)

// Actions lists every action.
var Actions = []string{ActionSettingChanged, ActionPurposeCreated, ActionPurposeChanged, ActionUserCreated, ActionUserRoleChanged,
	ActionUserDisabled, ActionUserEnabled, ActionUserPasswordChanged, ActionAPITokenCreated, ActionAPITokenRevoked,
	ActionWebhookCreated, ActionWebhookChanged, ActionWebhookSecretRotated, ActionWebhookDeleted,
	ActionWebformCreated, ActionWebformChanged, ActionWebformDeleted,
	ActionSourceCreated, ActionSourceChanged, ActionSourceDeactivated, ActionSourceReactivated,
	ActionFieldCreated, ActionFieldChanged, ActionFieldMadeSensitive,
	ActionListCreated, ActionListChanged, ActionListDeleted,
	ActionWorkflowRuleCreated, ActionWorkflowRuleChanged, ActionWorkflowRuleEnabled, ActionWorkflowRuleDisabled, ActionWorkflowRuleDeleted,
	ActionCampaignCreated, ActionCampaignChanged, ActionCampaignScheduled, ActionCampaignUnscheduled, ActionCampaignStarted,
	ActionCampaignPaused, ActionCampaignResumed, ActionCampaignCancelled, ActionCampaignRetried, ActionCampaignDeleted,
	ActionCampaignTemplateCreated, ActionCampaignTemplateChanged, ActionCampaignTemplateDeleted}

// Actor kinds beside a user and an API token: the command line, run by
// whoever operates the server, has no account of its own; the system is
// Consentry acting on its own rules (turning off a webhook endpoint whose
// deliveries have failed for days).
const (
	ActorCommandLine = "command_line"
	ActorSystem      = "system"
)

// Object is what a change is about: its kind (one of Kinds), id and name
// at the time of the change. A setting has neither id nor name: the
// subject names it.
type Object struct {
	Kind, ID, Name string
}

// Actor is who made a change: a user (kind "user") or an API token (kind
// "api_token"), by id, or the command line (kind "command_line") or the
// system (kind "system"), with no id.
// It has the shape of consent.Actor, which converts to it.
type Actor struct {
	Kind string `json:"kind" enum:"user,api_token,command_line,system"`
	ID   string `json:"id,omitempty"`
}

// Entry is one line of the audit log.
type Entry struct {
	Seq        int64     `json:"seq"`
	At         time.Time `json:"at"`
	Actor      Actor     `json:"actor"`
	Kind       string    `json:"kind" enum:"@audit_kind" doc:"the kind of object changed"`
	ObjectID   string    `json:"object_id" doc:"the object's id (a custom field's name); empty for a setting"`
	ObjectName string    `json:"object_name" doc:"the object's name when it was changed (a user's email address, a webhook endpoint's URL, a custom field's label); empty for a setting"`
	Action     string    `json:"action" enum:"@audit_action"`
	Subject    string    `json:"subject" doc:"the field that changed: a setting's name, or a field of the object"`
	OldValue   string    `json:"old_value" doc:"the value before, as JSON (\"double_only\", 3, [\"DELETE\"]; a campaign's body or a template's layout as its digest, \"sha256:0123456789abcdef (5120 bytes)\"); empty for a secret and for what was just created"`
	NewValue   string    `json:"new_value" doc:"the value after, as JSON; empty for a secret and for what was deleted"`
}

// Change is one field that differs between two values of a struct.
type Change struct {
	Name     string // the field's JSON name
	Old, New string // the values as JSON; empty for a secret
}

// Changes returns the fields whose JSON differs between before and after,
// two values of one struct type, by JSON name (embedded structs' fields
// as their own, as JSON writes them), sorted by name. The fields named in
// secret are named with both values empty. Nothing differing is an empty
// slice. Either may be nil: a creation's changes are from nil, with the
// old values empty, and a deletion's to nil, with the new values empty.
func Changes(before, after any, secret ...string) []Change {
	a, b := fields(before), fields(after)
	union := maps.Clone(a)
	maps.Copy(union, b)
	out := []Change{}
	for _, n := range slices.Sorted(maps.Keys(union)) {
		if string(a[n]) == string(b[n]) {
			continue
		}
		c := Change{Name: n, Old: string(a[n]), New: string(b[n])}
		if slices.Contains(secret, n) {
			c.Old, c.New = "", ""
		}
		out = append(out, c)
	}
	return out
}

// fields is v's JSON object, by member; nil (what a creation changes
// from, or a deletion to) has none.
func fields(v any) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	raw, _ := json.Marshal(v)
	json.Unmarshal(raw, &out)
	if out == nil { // JSON null sets the map to nil
		return map[string]json.RawMessage{}
	}
	return out
}

// Digest stands for a long text in an entry (a campaign's body, a
// template's layout): "sha256:" and the first 16 hex digits of its
// SHA-256, then its length in bytes, as "sha256:0123456789abcdef (5120
// bytes)". Two texts with the same digest are, for an operator reading
// the log, the same text; the log says a body changed without holding
// it. An empty text is "", as nothing was there.
func Digest(s string) string {
	if s == "" {
		return ""
	}
	h := sha256.Sum256([]byte(s))
	return fmt.Sprintf("sha256:%s (%d bytes)", hex.EncodeToString(h[:])[:16], len(s))
}

// WriteTx appends an entry of action by actor for each change of a
// setting inside tx.
func WriteTx(tx *store.Tx, by Actor, action string, changes []Change, now time.Time) error {
	return RecordTx(tx, by, Object{Kind: KindSetting}, action, changes, now)
}

// RecordTx appends an entry of action on obj by actor for each change
// inside tx; no change writes nothing. A creation passes Changes(nil,
// created) and a deletion Changes(deleted, nil), so that the entries hold
// what the object was.
func RecordTx(tx *store.Tx, by Actor, obj Object, action string, changes []Change, now time.Time) error {
	for _, c := range changes {
		if err := tx.ExecLater(store.Prefix("audit: write"), `INSERT INTO audit_log (at, actor_kind, actor_id, kind, object_id, object_name,
			action, subject, old_value, new_value) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			store.Micros(now), by.Kind, by.ID, obj.Kind, obj.ID, obj.Name, action, c.Name, c.Old, c.New); err != nil {
			return err
		}
	}
	return nil
}

// MaxList is the most entries one List returns.
const MaxList = 500

// Query selects a page of the log. Kind and Actor, when set, keep the
// entries of that kind of object, and those made by that actor (a user's
// or an API token's id).
type Query struct {
	Kind  string
	Actor string
	After string // the next cursor of the previous page
	Limit int
}

// List returns up to q.Limit entries that match q, newest first, read
// through db: from the newest, or those before the cursor q.After. It
// returns the cursor of the next page, "" on the last; none is an empty
// slice. An unknown kind is an error naming "kind".
func List(ctx context.Context, db store.Querier, q Query) ([]Entry, string, error) {
	if q.Limit < 1 || q.Limit > MaxList {
		return nil, "", errs.Invalid("limit", "must be 1 to %d", MaxList)
	}
	if q.Kind != "" && !slices.Contains(Kinds, q.Kind) {
		return nil, "", errs.Invalid("kind", "must be one of %s", strings.Join(Kinds, ", "))
	}
	if len(q.Actor) > 100 {
		return nil, "", errs.Invalid("actor", "must be the id of a user or an API token")
	}
	before := int64(1<<63 - 1)
	if q.After != "" {
		n, err := strconv.ParseInt(q.After, 10, 64)
		if err != nil || n < 1 {
			return nil, "", errs.Invalid("after", "must be the next cursor of the previous page")
		}
		before = n
	}
	var where store.Where
	where.And("seq <", before)
	if q.Kind != "" {
		where.And("kind =", q.Kind)
	}
	if q.Actor != "" {
		where.And("actor_id =", q.Actor)
	}
	limit := where.Arg(q.Limit + 1)
	out, err := store.QueryAll(ctx, db, func(row store.Scanner) (Entry, error) {
		var e Entry
		var at int64
		err := row.Scan(&e.Seq, &at, &e.Actor.Kind, &e.Actor.ID, &e.Kind, &e.ObjectID, &e.ObjectName, &e.Action, &e.Subject, &e.OldValue, &e.NewValue)
		e.At = store.FromMicros(at)
		return e, err
	}, `SELECT seq, at, actor_kind, actor_id, kind, object_id, object_name, action, subject, old_value, new_value FROM audit_log
		WHERE `+where.String()+` ORDER BY seq DESC LIMIT `+limit, where.Args...)
	if err != nil {
		return nil, "", fmt.Errorf("audit: list: %w", err)
	}
	next := ""
	if len(out) > q.Limit {
		out = out[:q.Limit]
		next = strconv.FormatInt(out[q.Limit-1].Seq, 10)
	}
	return out, next, nil
}
