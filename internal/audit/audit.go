// Package audit keeps the audit log of what operators change in how the
// service treats every contact: today, each change of a setting. An entry
// says who made it (a user of the admin pages or an API token, by id),
// when, what (the action and its subject: the setting's name) and the
// value before and after. It is written in the change's own transaction,
// so an entry exists exactly when its change committed.
//
// A secret is never written: the caller names its secret fields, which
// get an entry that names them, with both values empty.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// ActionSettingChanged: a setting was changed; the subject is its name.
const ActionSettingChanged = "setting_changed"

// Actor is who made a change: a user (kind "user") or an API token (kind
// "api_token"), by id. It has the shape of consent.Actor, which converts
// to it.
type Actor struct {
	Kind string `json:"kind" enum:"user,api_token"`
	ID   string `json:"id,omitempty"`
}

// Entry is one line of the audit log.
type Entry struct {
	Seq      int64     `json:"seq"`
	At       time.Time `json:"at"`
	Actor    Actor     `json:"actor"`
	Action   string    `json:"action" enum:"setting_changed"`
	Subject  string    `json:"subject" doc:"what was changed: the setting's name"`
	OldValue string    `json:"old_value" doc:"the value before, as JSON (\"double_only\", 3, [\"DELETE\"]); empty for a secret"`
	NewValue string    `json:"new_value" doc:"the value after, as JSON; empty for a secret"`
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
// slice.
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

// fields is v's JSON object, by member.
func fields(v any) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	raw, _ := json.Marshal(v)
	json.Unmarshal(raw, &out)
	return out
}

// WriteTx appends an entry of action by actor for each change inside tx.
func WriteTx(tx *store.Tx, by Actor, action string, changes []Change, now time.Time) error {
	for _, c := range changes {
		if err := tx.ExecLater(store.Prefix("audit: write"), `INSERT INTO audit_log (at, actor_kind, actor_id, action, subject, old_value, new_value)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, store.Micros(now), by.Kind, by.ID, action, c.Name, c.Old, c.New); err != nil {
			return err
		}
	}
	return nil
}

// MaxList is the most entries one List returns.
const MaxList = 500

// List returns up to limit entries, newest first, read through q: from
// the newest, or those before the cursor after (the next of the previous
// page). It returns the cursor of the next page, "" on the last; none is
// an empty slice.
func List(ctx context.Context, q store.Querier, after string, limit int) ([]Entry, string, error) {
	if limit < 1 || limit > MaxList {
		return nil, "", errs.Invalid("limit", "must be 1 to %d", MaxList)
	}
	before := int64(1<<63 - 1)
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil || n < 1 {
			return nil, "", errs.Invalid("after", "must be the next cursor of the previous page")
		}
		before = n
	}
	out, err := store.QueryAll(ctx, q, func(row store.Scanner) (Entry, error) {
		var e Entry
		var at int64
		err := row.Scan(&e.Seq, &at, &e.Actor.Kind, &e.Actor.ID, &e.Action, &e.Subject, &e.OldValue, &e.NewValue)
		e.At = store.FromMicros(at)
		return e, err
	}, `SELECT seq, at, actor_kind, actor_id, action, subject, old_value, new_value FROM audit_log
		WHERE seq < $1 ORDER BY seq DESC LIMIT $2`, before, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("audit: list: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(out[limit-1].Seq, 10)
	}
	return out, next, nil
}
