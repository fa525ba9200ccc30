package mail

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/holds"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// Deliverer takes queued messages from the outbox, passes each through the
// gate and hands those allowed to the transport.
type Deliverer struct {
	DB        *store.DB
	Transport Transport
	Log       *slog.Logger
	// From is the sender, "Name <address>" or an address.
	From string
	// FromNamed says the operator chose From's name; otherwise the
	// organisation name in the settings, when set, names the sender.
	FromNamed bool
	// Domain is used in Message-IDs.
	Domain string
	// Now is the clock; tests set it.
	Now func() time.Time
	// Batch is how many messages one claim takes.
	Batch int
	// Lease is how long claimed messages stay this deliverer's.
	Lease time.Duration
	// MaxAttempts bounds retries of temporary failures.
	MaxAttempts int
	// Poll is how often to look for messages other instances queued.
	Poll time.Duration
	// BaseURL is where the unsubscribe links of marketing email point.
	BaseURL string
	// Observe, when set, is told what became of each message once that
	// is committed (for the metrics): see Outcome.
	Observe func(Outcome)

	idOnce sync.Once
	id     string // this deliverer's claims carry it
}

func (d *Deliverer) claimID() string {
	d.idOnce.Do(func() {
		b := make([]byte, 8)
		rand.Read(b)
		d.id = hex.EncodeToString(b)
	})
	return d.id
}

// Outcome is what became of one message: its kind, and its status (sent,
// suppressed, failed, or OutcomeRetry when it is to be tried again);
// Reason is the gate's reason for a suppressed message (a word from a
// fixed list), "" otherwise.
type Outcome struct {
	Kind, Status, Reason string
}

// OutcomeRetry is the Outcome status of a message refused for now and
// queued to be tried again.
const OutcomeRetry = "retry"

// observe tells Observe about outcomes that were committed.
func (d *Deliverer) observe(outcomes []Outcome) {
	if d.Observe == nil {
		return
	}
	for _, o := range outcomes {
		d.Observe(o)
	}
}

type claimed struct {
	env       *Envelope
	contactID string // empty for a message to no contact
	kind      string
	attempt   int
}

// RunDue delivers every message due now and returns how many it handled
// (sent, suppressed or failed).
func (d *Deliverer) RunDue(ctx context.Context) (int, error) {
	total := 0
	for {
		if ctx.Err() != nil {
			return total, ctx.Err()
		}
		if due, err := d.anyDue(ctx); err != nil || !due {
			return total, err
		}
		batch, suppressed, err := d.claim(ctx)
		if err != nil {
			return total, err
		}
		total += suppressed
		if len(batch) == 0 {
			if suppressed == 0 {
				return total, nil
			}
			continue
		}
		envs := make([]*Envelope, len(batch))
		for i, c := range batch {
			envs[i] = c.env
		}
		// Sending stops well inside the lease, so no other deliverer takes
		// these messages over while they may still be going out; what is
		// not sent by then is tried again later.
		sendCtx, cancel := context.WithTimeout(ctx, d.Lease/2)
		errs := d.Transport.Send(sendCtx, envs)
		cancel()
		// What was sent is recorded even while shutting down: otherwise the
		// lease would run out and the messages would go out twice.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		err = d.finish(fctx, batch, errs)
		cancel()
		if err != nil {
			return total, err
		}
		total += len(batch)
	}
}

// from is the sender of the messages: From, named by the organisation when
// the operator gave From no name of their own.
func (d *Deliverer) from(st settings.Settings) string {
	if d.FromNamed || st.OrganisationName == "" {
		return d.From
	}
	a, err := mail.ParseAddress(d.From)
	if err != nil {
		return d.From
	}
	return (&mail.Address{Name: st.OrganisationName, Address: a.Address}).String()
}

// anyDue looks, without writing, whether a claim would find anything.
func (d *Deliverer) anyDue(ctx context.Context) (bool, error) {
	now := store.Micros(d.Now())
	var n int
	err := d.DB.Read.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM outbox
		WHERE (status = 'queued' AND run_at <= $1) OR (status = 'sending' AND locked_until < $1) LIMIT 1) AS due`, now).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("mail: look for due messages: %w", err)
	}
	return n > 0, nil
}

// claim takes a batch of due messages and, in the same transaction, reads
// each recipient's current state, suppresses the messages the gate stops
// (with the reason) and returns the rest with the address on file now.
func (d *Deliverer) claim(ctx context.Context) ([]claimed, int, error) {
	var out []claimed
	var stopped []Outcome
	err := d.DB.Write(ctx, func(tx *store.Tx) error {
		out, stopped = out[:0], stopped[:0]
		now := store.Micros(d.Now())
		rows, err := tx.Query(`UPDATE outbox SET status = 'sending', locked_until = $1, attempts = attempts + 1, claimed_by = $4
			WHERE id IN (SELECT id FROM outbox WHERE (status = 'queued' AND run_at <= $2) OR (status = 'sending' AND locked_until < $2)
				ORDER BY run_at LIMIT $3)
			RETURNING id, contact_id, kind, subject, text_body, html_body, headers, links, conversation_id, attempts, created_at, to_address,
				consent_purpose_id, consent_state`,
			now+d.Lease.Microseconds(), now, d.Batch, d.claimID())
		if err != nil {
			return fmt.Errorf("mail: claim: %w", err)
		}
		type row struct {
			c            claimed
			contactID    sql.NullString
			conversation string
			fixedTo      string // a message to the operator's own address
			links        []Link
			badLinks     bool
			rests        ConsentState // the consent the message rests on, if any
		}
		var rs []row
		for rows.Next() {
			var r row
			var headers, links string
			var created int64
			r.c.env = &Envelope{From: d.From}
			if err := rows.Scan(&r.c.env.OutboxID, &r.contactID, &r.c.kind, &r.c.env.Subject, &r.c.env.Text, &r.c.env.HTML,
				&headers, &links, &r.conversation, &r.c.attempt, &created, &r.fixedTo, &r.rests.PurposeID, &r.rests.State); err != nil {
				rows.Close()
				return fmt.Errorf("mail: claim: %w", err)
			}
			json.Unmarshal([]byte(headers), &r.c.env.Headers)
			r.badLinks = json.Unmarshal([]byte(links), &r.links) != nil
			r.c.env.MessageID = r.c.env.OutboxID + "@" + d.Domain
			r.c.env.Date = d.Now()
			rs = append(rs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("mail: claim: %w", err)
		}
		if len(rs) == 0 {
			return nil
		}
		ids := make([]string, 0, len(rs))
		var convs, consenting, holdable, marketing []string
		for _, r := range rs {
			if r.contactID.Valid {
				ids = append(ids, r.contactID.String)
				if r.rests.PurposeID != "" {
					consenting = append(consenting, r.contactID.String)
				}
				if StopsUnderHold(r.c.kind) {
					holdable = append(holdable, r.contactID.String)
				}
				if IsMarketing(r.c.kind) {
					marketing = append(marketing, r.contactID.String)
				}
			}
			if r.conversation != "" {
				convs = append(convs, r.conversation)
			}
		}
		recipients, err := contactstate.LoadMany(tx, ids)
		if err != nil {
			return err
		}
		started, err := contactConversations(tx, convs)
		if err != nil {
			return err
		}
		consents, err := consentsOf(tx, consenting, d.Now())
		if err != nil {
			return err
		}
		held, err := holds.FirstActiveTx(tx, holdable, d.Now())
		if err != nil {
			return err
		}
		st, err := settings.InTx(tx)
		if err != nil {
			return err
		}
		grounds, err := marketingGrounds(ctx, tx, marketing, st, d.Now())
		if err != nil {
			return err
		}
		if from := d.from(st); from != d.From {
			for _, r := range rs {
				r.c.env.From = from
			}
		}
		for _, r := range rs {
			if !r.contactID.Valid && r.fixedTo != "" && fixedAddress(r.c.kind) {
				reason, err := fixedGate(tx, r.c.kind, r.fixedTo, r.links, r.badLinks, d.Now())
				if err != nil {
					return err
				}
				if reason != "" {
					if err := suppress(tx, r.c.env.OutboxID, reason); err != nil {
						return err
					}
					stopped = append(stopped, Outcome{r.c.kind, StatusSuppressed, reason})
					continue
				}
				r.c.env.To = r.fixedTo
				if err := d.addLinks(tx, r.c.env, "", r.links); err != nil {
					return err
				}
				out = append(out, r.c)
				continue
			}
			rc, exists := recipients[r.contactID.String]
			reason := Gate(r.c.kind, Recipient{Exists: exists, State: rc,
				StartedConversation: started[r.conversation] == r.contactID.String && r.conversation != ""})
			if reason == "" && r.rests.PurposeID != "" {
				reason = consentGate(r.rests, consents[r.contactID.String])
			}
			if reason == "" && StopsUnderHold(r.c.kind) && held[r.contactID.String] != nil {
				reason = ReasonHeld // automation stops under a hold, as campaigns do
			}
			if reason == "" && IsMarketing(r.c.kind) {
				reason = grounds[r.contactID.String] // what a campaign needs (Ground)
			}
			if reason == "" {
				reason = linksProblem(r.links, r.badLinks, d.Now())
			}
			if reason != "" {
				if err := suppress(tx, r.c.env.OutboxID, reason); err != nil {
					return err
				}
				stopped = append(stopped, Outcome{r.c.kind, StatusSuppressed, reason})
				continue
			}
			if r.c.kind == KindPartner {
				// To the partner's address: no links, and a bounce there
				// says nothing of the contact's own address.
				r.c.env.To = r.fixedTo
				out = append(out, r.c)
				continue
			}
			r.c.env.To = rc.Email
			r.c.contactID = rc.ID
			if err := d.addLinks(tx, r.c.env, r.contactID.String, r.links); err != nil {
				return err
			}
			if IsMarketing(r.c.kind) {
				if err := d.addUnsubscribe(tx, r.c.env, r.contactID.String, st.UnsubscribeLinkDays); err != nil {
					return err
				}
			}
			out = append(out, r.c)
		}
		return loadAttachments(tx, out)
	})
	if err == nil {
		d.observe(stopped)
	}
	return out, len(stopped), err
}

// marketingGrounds reads inside tx why the ground of marketing email
// (Ground) keeps each of the contacts in ids from getting marketing email
// through the outbox (a workflow rule's email to the contact): the ground
// of a campaign for the purposes that govern marketing email, under st's
// campaign opt-in policy. A contact who has it maps to ""; with no ids the
// map is nil.
func marketingGrounds(ctx context.Context, tx *store.Tx, ids []string, st settings.Settings, now time.Time) (map[string]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	g, err := LoadGround(ctx, tx, "", settings.CampaignStatuses(st.CampaignOptInPolicy), now)
	if err != nil {
		return nil, err
	}
	return g.reasons(tx, ids)
}

// loadAttachments reads, inside the claim, the attachments of the
// messages going out.
func loadAttachments(tx *store.Tx, batch []claimed) error {
	if len(batch) == 0 {
		return nil
	}
	byID := make(map[string]*Envelope, len(batch))
	ids := make([]string, len(batch))
	for i, c := range batch {
		byID[c.env.OutboxID], ids[i] = c.env, c.env.OutboxID
	}
	ph, args := store.In(1, ids)
	rows, err := tx.Query(`SELECT outbox_id, filename, content_type, data FROM outbox_attachments
		WHERE outbox_id IN (`+ph+`) ORDER BY outbox_id, n`, args...)
	if err != nil {
		return fmt.Errorf("mail: read attachments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var a Attachment
		if err := rows.Scan(&id, &a.Filename, &a.ContentType, &a.Data); err != nil {
			return fmt.Errorf("mail: read attachments: %w", err)
		}
		byID[id].Attachments = append(byID[id].Attachments, a)
	}
	return rows.Err()
}

// suppress sets a claimed message aside, with the reason.
func suppress(tx *store.Tx, id, reason string) error {
	if _, err := tx.Exec(`UPDATE outbox SET status = 'suppressed', reason = $2, locked_until = 0 WHERE id = $1`, id, reason); err != nil {
		return fmt.Errorf("mail: suppress: %w", err)
	}
	return nil
}

// linksProblem returns why a message's links keep it from being sent
// (unreadable, or one expired), or "".
func linksProblem(links []Link, bad bool, now time.Time) string {
	switch {
	case bad:
		return ReasonLinksUnreadable
	case linkExpired(links, now):
		return ReasonLinkExpired
	}
	return ""
}

// fixedGate is the gate of a message to a fixed address: a message to the
// operator goes, if it carries no personal link. A request confirmation
// goes to an address that was no contact's when it was queued; if the
// address has become a contact's since, that contact's state decides as
// for any confirmation (a bounced or blocklisted address gets nothing).
func fixedGate(tx *store.Tx, kind, to string, links []Link, badLinks bool, now time.Time) (string, error) {
	switch kind {
	case KindOperator:
		if len(links) > 0 || badLinks {
			return ReasonLinksUnreadable, nil
		}
		return "", nil
	case KindRequestConfirmation:
		if reason := linksProblem(links, badLinks, now); reason != "" {
			return reason, nil
		}
		st, err := contactstate.LoadByEmail(tx, to)
		if errs.Is(err, errs.KindNotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		return Gate(KindConfirmation, Recipient{Exists: true, State: st}), nil
	}
	return ReasonErased, nil
}

// UnsubscribeURL is the placeholder a marketing email's bodies carry where
// the recipient's unsubscribe link goes; it is filled in as the message is
// sent, so the outbox never holds the link.
const UnsubscribeURL = "{{unsubscribe_url}}"

// IsMarketing reports whether email of kind is marketing, which carries an
// unsubscribe link and the List-Unsubscribe headers.
// A workflow email is an autoresponder, so it carries them too.
func IsMarketing(kind string) bool { return kind == KindCampaign || kind == KindWorkflow }

// linkExpired reports whether one of links has expired by now.
func linkExpired(links []Link, now time.Time) bool {
	for _, l := range links {
		if !l.Expires.After(now) {
			return true
		}
	}
	return false
}

// addLinks issues, inside the claim, the token of each of the message's
// personal links and writes it where the bodies hold the link's
// placeholder. A message claimed again (its sending was cut short) gets
// new tokens; those of the attempt before reached nobody, or are the
// same contact's, and expire in their time. What a link does is checked
// when it is used (an invitation still open, a change still pending), so
// a link made for a message whose subject ended meanwhile does nothing.
func (d *Deliverer) addLinks(tx *store.Tx, env *Envelope, contactID string, links []Link) error {
	for _, l := range links {
		var secret string
		var err error
		if l.Purpose == auth.PurposeRequestConfirmation {
			// Bound to the request, whose sender may be no contact.
			secret, err = auth.IssueRequestToken(tx, l.SubjectID, l.Expires, d.Now())
		} else {
			secret, _, err = auth.IssueContactToken(tx, l.Purpose, contactID, l.SubjectID, l.Expires, d.Now())
		}
		if err != nil {
			return err
		}
		env.Text = strings.ReplaceAll(env.Text, l.Placeholder, secret)
		env.HTML = strings.ReplaceAll(env.HTML, l.Placeholder, secret)
	}
	return nil
}

// addUnsubscribe gives a marketing email its unsubscribe link: a token
// issued inside the claim, valid for the given days (the setting
// unsubscribe_link_days), the List-Unsubscribe header with the
// List-Unsubscribe-Post header of RFC 8058 (one-click), and the link in the
// bodies where they hold UnsubscribeURL.
func (d *Deliverer) addUnsubscribe(tx *store.Tx, env *Envelope, contactID string, days int) error {
	now := d.Now()
	secret, _, err := auth.IssueContactToken(tx, auth.PurposeUnsubscribe, contactID, env.OutboxID, now.Add(time.Duration(days)*24*time.Hour), now)
	if err != nil {
		return err
	}
	link := d.BaseURL + "/u/" + secret
	if env.Headers == nil {
		env.Headers = map[string]string{}
	}
	env.Headers["List-Unsubscribe"] = "<" + link + ">"
	env.Headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
	env.Text = strings.ReplaceAll(env.Text, UnsubscribeURL, link)
	env.HTML = strings.ReplaceAll(env.HTML, UnsubscribeURL, link)
	return nil
}

// contactConversations maps each of the conversations that a contact
// started to that contact.
func contactConversations(tx *store.Tx, ids []string) (map[string]string, error) {
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := tx.Query(`SELECT id, contact_id FROM conversations WHERE started_by = 'contact' AND id IN (`+store.Placeholders(1, len(ids))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("mail: read conversations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, contact string
		if err := rows.Scan(&id, &contact); err != nil {
			return nil, err
		}
		out[id] = contact
	}
	return out, rows.Err()
}

// finish records what happened to each message sent: sent, to be retried
// after a backoff, or failed for good.
func (d *Deliverer) finish(ctx context.Context, batch []claimed, errs []error) error {
	var outcomes []Outcome
	err := d.DB.Write(ctx, func(tx *store.Tx) error {
		now := d.Now()
		outcomes = outcomes[:0]
		var sent []claimed
		for i, c := range batch {
			err := errs[i]
			if err == nil {
				sent = append(sent, c)
				outcomes = append(outcomes, Outcome{Kind: c.kind, Status: StatusSent})
				continue
			}
			// The log gets the error without addresses; the outbox row,
			// which is the contact's and goes with them, keeps it whole.
			if IsBounce(err) {
				// The server refused the address itself: a hard bounce, as
				// if reported, so nothing more is sent to it.
				if err := d.recordBounce(tx, c.contactID, now); err != nil {
					return err
				}
			}
			if IsPermanent(err) || c.attempt >= d.MaxAttempts {
				d.Log.Warn("email failed", "outbox", c.env.OutboxID, "kind", c.kind, "attempts", c.attempt, "err", redact(err.Error()))
				if _, err := tx.Exec(`UPDATE outbox SET status = 'failed', reason = $2, locked_until = 0
					WHERE id = $1 AND claimed_by = $3 AND status = 'sending'`, c.env.OutboxID, truncate(err.Error()), d.claimID()); err != nil {
					return fmt.Errorf("mail: record failure: %w", err)
				}
				outcomes = append(outcomes, Outcome{Kind: c.kind, Status: StatusFailed})
				continue
			}
			if _, err := tx.Exec(`UPDATE outbox SET status = 'queued', reason = $2, run_at = $3, locked_until = 0
				WHERE id = $1 AND claimed_by = $4 AND status = 'sending'`,
				c.env.OutboxID, truncate(err.Error()), store.Micros(now.Add(jobs.Backoff(c.attempt))), d.claimID()); err != nil {
				return fmt.Errorf("mail: schedule retry: %w", err)
			}
			outcomes = append(outcomes, Outcome{Kind: c.kind, Status: OutcomeRetry})
		}
		// Sent messages are marked in one statement per chunk, keeping the
		// address each went to.
		for start := 0; start < len(sent); start += 250 {
			part := sent[start:min(start+250, len(sent))]
			args := []any{store.Micros(now), d.claimID()}
			values := make([]string, len(part))
			for i, c := range part {
				args = append(args, c.env.OutboxID, c.env.To)
				values[i] = fmt.Sprintf("($%d, $%d)", len(args)-1, len(args))
			}
			if _, err := tx.Exec(`WITH v(id, addr) AS (VALUES `+strings.Join(values, ", ")+`)
				UPDATE outbox SET status = 'sent', sent_at = $1, reason = '', locked_until = 0,
				to_address = (SELECT addr FROM v WHERE v.id = outbox.id)
				WHERE id IN (SELECT id FROM v) AND claimed_by = $2 AND status = 'sending'`, args...); err != nil {
				return fmt.Errorf("mail: record sent: %w", err)
			}
		}
		return nil
	})
	if err == nil {
		d.observe(outcomes)
	}
	return err
}

// recordBounce notes a hard bounce for the contact, as one reported through
// the API would be. A contact deleted since the claim needs nothing.
func (d *Deliverer) recordBounce(tx *store.Tx, contactID string, now time.Time) error {
	if contactID == "" {
		return nil
	}
	st, err := contactstate.Load(tx, contactID)
	if errs.Is(err, errs.KindNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return contactstate.RecordBounceTx(tx, &st, true, 0, now)
}

var addressRE = regexp.MustCompile(`[^\s<>"'@]+@[^\s<>"']+`)

// redact removes email addresses from text bound for the log.
func redact(s string) string { return addressRE.ReplaceAllString(s, "<address>") }

func truncate(s string) string {
	if len(s) > 1000 {
		return s[:1000]
	}
	return s
}

// Run delivers until ctx ends: at once when this process queues a message,
// and every Poll for messages due for retry or queued elsewhere.
func (d *Deliverer) Run(ctx context.Context) {
	jobs.Loop(ctx, d.DB.Wakes(wakeTopic), d.Poll, d.Log, "delivering email", d.RunDue)
}
