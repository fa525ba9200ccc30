package campaign

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
)

// transition moves campaign id from one of from to status, with the
// extra assignments in set, in one write, by by, whom the audit log names
// under action with the status (and time scheduled) before and after;
// any other status is a conflict naming what the campaign is. It returns
// the campaign as it is after.
func (s *Service) transition(ctx context.Context, by audit.Actor, action, id, status string, from []string, set string, args ...any) (*Campaign, error) {
	now := s.now()
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		c, err := get(tx, id)
		if err != nil {
			return err
		}
		q := `UPDATE campaigns SET status = $2, updated_at = $3` + set + ` WHERE id = $1 AND status IN (` + quoteList(from) + `)`
		res, err := tx.Exec(q, append([]any{id, status, store.Micros(now)}, args...)...)
		if err != nil {
			return fmt.Errorf("campaign: %s: %w", status, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.Conflict("campaign_"+c.Status, "status", "the campaign is %s; this needs it %s", c.Status, strings.Join(from, " or "))
		}
		if status == StatusCancelled {
			// Rows of a batch in flight stay as they are: its outcome, or
			// "unknown", is the truth about them.
			if _, err := tx.Exec(`UPDATE campaign_recipients SET status = 'cancelled' WHERE campaign_no = $1 AND status IN ('queued', 'retry')
				AND NOT EXISTS (SELECT 1 FROM campaign_batches b WHERE b.campaign_no = $1 AND campaign_recipients.id BETWEEN b.first_id AND b.last_id)`, c.no); err != nil {
				return fmt.Errorf("campaign: cancel: %w", err)
			}
			if _, err := tx.Exec(`DELETE FROM campaign_retries WHERE campaign_no = $1`, c.no); err != nil {
				return fmt.Errorf("campaign: cancel: %w", err)
			}
		}
		after, err := get(tx, id)
		if err != nil {
			return err
		}
		tx.WakeAfterCommit(wakeTopic)
		return c.auditTx(tx, by, action, audit.Changes(c.status(), after.status()), now)
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// ready checks that c can be sent: its content and audience hold, and its
// messages carry the unsubscribe link (the template may have changed since
// the campaign was saved).
func (s *Service) ready(ctx context.Context, c *Campaign) error {
	if err := checkVariants(c); err != nil {
		return err
	}
	if err := s.checkUnsubscribe(ctx, c); err != nil {
		return err
	}
	_, err := s.newGate(ctx, s.DB.Read, c)
	return err
}

// Send starts sending a draft or scheduled campaign now, at by's word.
// Each step below is a change of the campaign's status by by, whom the
// audit log names with the status (and time scheduled) before and after.
func (s *Service) Send(ctx context.Context, by audit.Actor, id string) (*Campaign, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.ready(ctx, c); err != nil {
		return nil, err
	}
	return s.transition(ctx, by, audit.ActionCampaignStarted, id, StatusSending, []string{StatusDraft, StatusScheduled}, `, started_at = $3`)
}

// Schedule makes a draft (or a scheduled campaign) start at a time to
// come; at must be in the future.
func (s *Service) Schedule(ctx context.Context, by audit.Actor, id string, at time.Time) (*Campaign, error) {
	if !at.After(s.now()) {
		return nil, errs.Invalid("scheduled_at", "must be in the future")
	}
	c, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.ready(ctx, c); err != nil {
		return nil, err
	}
	return s.transition(ctx, by, audit.ActionCampaignScheduled, id, StatusScheduled, []string{StatusDraft, StatusScheduled}, `, scheduled_at = $4`,
		store.Micros(at))
}

// Unschedule turns a scheduled campaign back into a draft.
func (s *Service) Unschedule(ctx context.Context, by audit.Actor, id string) (*Campaign, error) {
	return s.transition(ctx, by, audit.ActionCampaignUnscheduled, id, StatusDraft, []string{StatusScheduled}, `, scheduled_at = NULL`)
}

// Pause stops a sending campaign after the batches in flight.
func (s *Service) Pause(ctx context.Context, by audit.Actor, id string) (*Campaign, error) {
	return s.transition(ctx, by, audit.ActionCampaignPaused, id, StatusPaused, []string{StatusSending}, "")
}

// Resume goes on with a paused campaign where it stopped.
func (s *Service) Resume(ctx context.Context, by audit.Actor, id string) (*Campaign, error) {
	return s.transition(ctx, by, audit.ActionCampaignResumed, id, StatusSending, []string{StatusPaused}, "")
}

// Cancel stops a campaign for good: recipients not yet sent to are
// cancelled. What was sent stays recorded.
func (s *Service) Cancel(ctx context.Context, by audit.Actor, id string) (*Campaign, error) {
	return s.transition(ctx, by, audit.ActionCampaignCancelled, id, StatusCancelled,
		[]string{StatusDraft, StatusScheduled, StatusSending, StatusPaused}, `, finished_at = $3`)
}

// RetryUnknown queues again the recipients whose outcome is unknown (see
// RecipientUnknown), at the operator's word: some of them may then get the
// message twice. A campaign that had finished sends again. It returns how
// many were queued; the audit log names by with how many, and the status
// before and after, when there were any.
func (s *Service) RetryUnknown(ctx context.Context, by audit.Actor, id string) (int64, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	if c.Status == StatusCancelled {
		return 0, errs.Conflict("campaign_cancelled", "status", "the campaign is cancelled")
	}
	var n int64
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(`INSERT INTO campaign_retries (campaign_no, recipient_id, run_at) SELECT campaign_no, id, 0 FROM campaign_recipients
			WHERE campaign_no = $1 AND status = 'unknown' ON CONFLICT DO NOTHING`, c.no); err != nil {
			return fmt.Errorf("campaign: retry unknown: %w", err)
		}
		res, err := tx.Exec(`UPDATE campaign_recipients SET status = 'retry', reason = 'sent again at the operator''s word' WHERE campaign_no = $1 AND status = 'unknown'`, c.no)
		if err != nil {
			return fmt.Errorf("campaign: retry unknown: %w", err)
		}
		if n, _ = res.RowsAffected(); n == 0 {
			return nil
		}
		before, err := get(tx, c.ID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE campaigns SET status = 'sending', finished_at = NULL WHERE id = $1 AND status = 'sent'`, c.ID); err != nil {
			return fmt.Errorf("campaign: retry unknown: %w", err)
		}
		tx.WakeAfterCommit(wakeTopic)
		after, err := get(tx, c.ID)
		if err != nil {
			return err
		}
		changes := append(audit.Changes(before.status(), after.status()),
			audit.Change{Name: "recipients_queued_again", New: strconv.FormatInt(n, 10)})
		return before.auditTx(tx, by, audit.ActionCampaignRetried, changes, s.now())
	})
	return n, err
}

// Progress is how far a campaign has come: its recipients by status.
type Progress struct {
	Status     string           `json:"status"`
	Audience   *Audience        `json:"audience,omitempty"`
	Recipients map[string]int64 `json:"recipients" doc:"recipients by status: queued, sending, sent, suppressed, failed, retry, unknown, excluded, cancelled"`
	Done       int64            `json:"done" doc:"recipients with a final outcome"`
	Total      int64            `json:"total" doc:"recipients to send to (excluded ones not counted)"`
}

// Progress counts the campaign's recipients by status.
func (s *Service) Progress(ctx context.Context, id string) (*Progress, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	counts, err := store.CountBy(ctx, s.DB.Read, `SELECT status, count(*) FROM campaign_recipients WHERE campaign_no = $1 GROUP BY status`, c.no)
	if err != nil {
		return nil, fmt.Errorf("campaign: progress: %w", err)
	}
	p := &Progress{Status: c.Status, Audience: c.Audience, Recipients: map[string]int64{}}
	for _, st := range []string{RecipientQueued, RecipientSending, RecipientSent, RecipientSuppressed, RecipientFailed,
		RecipientRetry, RecipientUnknown, RecipientExcluded, RecipientCancelled} {
		n := counts[st]
		p.Recipients[st] = n
		if st != RecipientExcluded {
			p.Total += n
		}
		if slices.Contains([]string{RecipientSent, RecipientSuppressed, RecipientFailed, RecipientUnknown, RecipientCancelled}, st) {
			p.Done += n
		}
	}
	if c.Audience != nil && !c.Audience.Resolved {
		p.Total = max(p.Total, c.Audience.Recipients)
	}
	return p, nil
}

// Rendered is a campaign as one contact would receive it, or why they
// would not.
type Rendered struct {
	ContactID string `json:"contact_id"`
	Reason    string `json:"reason" doc:"why the contact would not get the campaign now; empty: they would"`
	Language  string `json:"language"`
	Subject   string `json:"subject"`
	Text      string `json:"text"`
	HTML      string `json:"html"`
	Tracked   bool   `json:"tracked" doc:"whether their opens and clicks would be tracked"`
}

// Render shows campaign id as contactID would receive it now. Its links
// are examples that lead nowhere. An unknown contact is a not-found error
// (field "contact").
func (x *Sender) Render(ctx context.Context, id, contactID string) (*Rendered, error) {
	c, err := x.Service.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	p, err := x.prepare(ctx, c)
	if err != nil {
		return nil, err
	}
	return p.renderFor(ctx, x.Service.DB.Read, contactID)
}

// renderFor reads contactID through q as the gate sees them and renders
// p for them, with links that lead nowhere. An unknown contact is a
// not-found error (field "contact").
func (p *prepared) renderFor(ctx context.Context, q store.Querier, contactID string) (*Rendered, error) {
	rs, err := p.read(ctx, q, []*outcome{{contactID: contactID}})
	if err != nil {
		return nil, err
	}
	r, ok := rs[contactID]
	if !ok {
		return nil, errs.NotFound("contact", "contact")
	}
	return p.rendered(r)
}

// rendered renders p for r, as recipient 0, whose links lead nowhere. A
// draft may have no content in r's language nor in its default one: that
// is an error on "variants".
func (p *prepared) rendered(r *recipient) (*Rendered, error) {
	v := p.variantFor(r.lang)
	if v == nil {
		return nil, errs.Invalid("variants", "there is no content in %s or in the default language (%s) yet", r.lang, p.c.DefaultLanguage)
	}
	out := &Rendered{ContactID: r.id, Reason: r.reason, Tracked: r.tracked, Language: v.lang}
	out.Subject, out.Text, out.HTML = p.content(0, r)
	return out, nil
}

// Test sends campaign id as it would look, with example names and links
// that lead nowhere, to the given addresses, which must be users'. The
// subject starts with [Test]. Nothing is recorded for any contact.
func (x *Sender) Test(ctx context.Context, id string, to []string) error {
	if len(to) == 0 || len(to) > 10 {
		return errs.Invalid("to", "give 1 to 10 users' addresses")
	}
	s := x.Service
	for i, addr := range to {
		var n int
		if err := s.DB.Read.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE lower(email) = lower($1)`, strings.TrimSpace(addr)).Scan(&n); err != nil {
			return fmt.Errorf("campaign: test: %w", err)
		}
		if n == 0 {
			return errs.Invalid(fmt.Sprintf("to[%d]", i), "is not a user's address: test messages go to users only")
		}
	}
	c, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	p, err := x.prepare(ctx, c)
	if err != nil {
		return err
	}
	var envs []*mail.Envelope
	for _, addr := range to {
		env := p.envelope(0, &recipient{email: strings.TrimSpace(addr), first: SampleFirstName, last: SampleLastName, lang: c.DefaultLanguage})
		env.Subject = "[Test] " + env.Subject
		env.OutboxID = "test"
		env.MessageID = fmt.Sprintf("test.c%d.%d@%s", c.no, s.now().UnixNano(), x.Domain)
		envs = append(envs, env)
	}
	for _, err := range x.Transport.Send(ctx, envs) {
		if err != nil {
			return fmt.Errorf("campaign: test: %w", err)
		}
	}
	return nil
}
