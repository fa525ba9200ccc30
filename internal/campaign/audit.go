package campaign

import (
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/store"
)

// audited is what the audit log keeps of a campaign's content and rules:
// whom it is for, what it serves and says. Each variant's subject and
// bodies are fields of their own, as variants.LANGUAGE.subject, .html
// and .text, and the bodies are kept as their digests (audit.Digest).
func (c *Campaign) audited() map[string]any {
	m := map[string]any{"name": c.Name, "purpose": c.Purpose, "template_id": c.TemplateID, "list_ids": c.ListIDs,
		"condition": c.Condition, "opt_in_policy": c.OptInPolicy, "default_language": c.DefaultLanguage}
	for _, v := range c.Variants {
		p := "variants." + v.Language + "."
		m[p+"subject"], m[p+"html"], m[p+"text"] = v.Subject, audit.Digest(v.HTML), audit.Digest(v.Text)
	}
	return m
}

// auditedStatus is what the audit log keeps of a step in a campaign's
// sending.
type auditedStatus struct {
	Status      string     `json:"status"`
	ScheduledAt *time.Time `json:"scheduled_at"`
}

func (c *Campaign) status() auditedStatus {
	return auditedStatus{Status: c.Status, ScheduledAt: c.ScheduledAt}
}

// auditTx writes the audit log's entries of action on c by by.
func (c *Campaign) auditTx(tx *store.Tx, by audit.Actor, action string, changes []audit.Change, now time.Time) error {
	return audit.RecordTx(tx, by, audit.Object{Kind: audit.KindCampaign, ID: c.ID, Name: c.Name}, action, changes, now)
}

// createdBy is what a campaign's created_by says of by: a user's id, as
// the admin pages have always written it, or KIND:ID for an API token.
func createdBy(by audit.Actor) string {
	if by.Kind == "user" {
		return by.ID
	}
	return by.Kind + ":" + by.ID
}

// auditedTemplate is what the audit log keeps of a template, its layout
// as its digest.
type auditedTemplate struct {
	Name string `json:"name"`
	HTML string `json:"html"`
}

func (t *Template) audited() auditedTemplate {
	return auditedTemplate{Name: t.Name, HTML: audit.Digest(t.HTML)}
}

// auditTx writes the audit log's entries of action on t by by, for each
// field that differs between before and after, two auditedTemplate or
// nil (for what was not yet, or is no more).
func (t *Template) auditTx(tx *store.Tx, by audit.Actor, action string, before, after any, now time.Time) error {
	return audit.RecordTx(tx, by, audit.Object{Kind: audit.KindCampaignTemplate, ID: t.ID, Name: t.Name}, action,
		audit.Changes(before, after), now)
}
