package campaign

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/consentry/consentry/internal/busy"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/jobs"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// Recipient statuses. A recipient is queued once the audience is fixed,
// sending while a sender has their message, and then sent, suppressed (the
// gate stopped it at the last moment, with the reason), failed, retry (a
// temporary failure, tried again), or unknown: their sender died while
// handing messages over, so the mail server may or may not have the
// message. Unknown is never sent again by itself. Excluded recipients were
// never queued; cancelled ones were queued when the campaign was
// cancelled.
const (
	RecipientQueued     = "queued"
	RecipientSending    = "sending"
	RecipientSent       = "sent"
	RecipientSuppressed = "suppressed"
	RecipientFailed     = "failed"
	RecipientRetry      = "retry"
	RecipientUnknown    = "unknown"
	RecipientExcluded   = "excluded"
	RecipientCancelled  = "cancelled"
)

// wakeTopic is the store signal that a campaign has work.
const wakeTopic = "campaigns"

const maxAttempts = 5

// bouncePrefix starts the reason of a message whose address the mail
// server refused: a hard bounce.
const bouncePrefix = "bounced: "

// notBegun is the reason of a retry whose message was never begun: it
// does not count as an attempt.
const notBegun = "not begun"

// Sender sends the campaigns that are due, in batches: take a batch of
// recipients (a write), then open a hand-over for them that reads their
// state, apply the gate and hand the allowed messages to the transport
// through the hand-over, then record each outcome (a write).
type Sender struct {
	Service   *Service
	Links     *Links
	Transport mail.Transport
	Log       *slog.Logger
	// From is the sender when the settings give none: "Name <address>".
	From string
	// Domain names message ids and lists.
	Domain string
	// Lease is how long a batch stays this sender's; one whose sender died
	// is declared unknown once it runs out.
	Lease time.Duration
	// Budget is how long a batch's hand-over may take: messages not begun
	// by then go in the next batch. Batches are sized to it.
	Budget time.Duration
	// Poll is how often to look for work other instances started.
	Poll time.Duration
	// GiveWay slows sending while people's requests wait for the CPU
	// (see package busy); nil never slows it.
	GiveWay *busy.Governor
	// Observe, when set, is told what became of each recipient's message
	// once that is recorded (for the metrics), as mail.Deliverer's is.
	Observe func(mail.Outcome)
	// Sleep waits d on the Service's clock (Service.Now) to keep to the
	// setting campaign_rate, or returns ctx's error; nil waits on a
	// timer. Tests that move the clock themselves set it.
	Sleep func(ctx context.Context, d time.Duration) error

	idOnce  sync.Once
	id      string
	started bool         // the first recovery is done
	perMsg  atomic.Int64 // moving average of a message's hand-over, in ns: send writes it, claim reads it
	pace    pacer
	cache   map[string]*prepared
	clicks  linkCache // the operator's links of sent campaigns (links_use.go)
}

func (x *Sender) claimID() string {
	x.idOnce.Do(func() {
		b := make([]byte, 8)
		rand.Read(b)
		x.id = hex.EncodeToString(b)
	})
	return x.id
}

// Run sends until ctx ends.
func (x *Sender) Run(ctx context.Context) {
	jobs.Loop(ctx, x.Service.DB.Wakes(wakeTopic), x.Poll, x.Log, "sending campaigns", x.RunDue)
}

// RunDue starts the scheduled campaigns that are due, declares the batches
// of dead senders unknown, and sends every sending campaign until it is
// done or paused. It returns how many recipients it handled.
func (x *Sender) RunDue(ctx context.Context) (int, error) {
	s := x.Service
	if err := x.recoverLost(ctx); err != nil {
		return 0, err
	}
	now := s.now()
	if err := s.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`UPDATE campaigns SET status = 'sending', started_at = COALESCE(started_at, $1), updated_at = $1
			WHERE status = 'scheduled' AND scheduled_at <= $1`, store.Micros(now))
		return err
	}); err != nil {
		return 0, fmt.Errorf("campaign: start scheduled: %w", err)
	}
	ids, err := store.QueryAll(ctx, s.DB.Read, func(r store.Scanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	}, `SELECT id FROM campaigns WHERE status = 'sending' ORDER BY no`)
	if err != nil {
		return 0, fmt.Errorf("campaign: find work: %w", err)
	}
	total := 0
	for _, id := range ids {
		n, err := x.sendCampaign(ctx, id)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// sendCampaign fixes the audience if that is not done, then sends batches
// until none is left or the campaign stops sending.
func (x *Sender) sendCampaign(ctx context.Context, id string) (int, error) {
	s := x.Service
	c, err := s.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	p, err := x.prepare(ctx, c)
	if err != nil {
		return 0, err
	}
	if c.Audience == nil || !c.Audience.Resolved {
		if err := s.resolveAll(ctx, p.gate); err != nil {
			return 0, err
		}
	}
	total := 0
	for {
		n, err := x.pipeline(ctx, p)
		total += n
		if err != nil {
			return total, err
		}
		more, err := x.settle(ctx, p)
		if err != nil || !more {
			return total, err
		}
	}
}

// settle marks the campaign sent once nothing is left to send and no batch
// is open, and reports whether there is more to send: retries that the
// last batches left. A batch still open is another sender's to finish,
// after which that sender settles the campaign.
func (x *Sender) settle(ctx context.Context, p *prepared) (more bool, err error) {
	s := x.Service
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		more = false
		var status string
		var cursor int64
		if err := tx.QueryRow(`SELECT status, claimed_through FROM campaigns WHERE id = $1`, p.c.ID).Scan(&status, &cursor); err != nil {
			return fmt.Errorf("campaign: settle: %w", err)
		}
		if status != StatusSending {
			return nil
		}
		var queued, due, waiting, open bool
		if err := tx.QueryRow(`SELECT
			EXISTS (SELECT 1 FROM campaign_recipients WHERE campaign_no = $1 AND id > $2 AND status = 'queued'),
			EXISTS (SELECT 1 FROM campaign_retries WHERE campaign_no = $1 AND run_at <= $3),
			EXISTS (SELECT 1 FROM campaign_retries WHERE campaign_no = $1),
			EXISTS (SELECT 1 FROM campaign_batches WHERE campaign_no = $1)`, p.c.no, cursor, store.Micros(s.now())).Scan(&queued, &due, &waiting, &open); err != nil {
			return fmt.Errorf("campaign: settle: %w", err)
		}
		if queued || due {
			more = true
			return nil
		}
		if waiting || open {
			return nil // a later run sends the retries; the other sender settles
		}
		now := store.Micros(s.now())
		if _, err := tx.Exec(`UPDATE campaigns SET status = 'sent', finished_at = $2, updated_at = $2 WHERE id = $1`, p.c.ID, now); err != nil {
			return fmt.Errorf("campaign: finish: %w", err)
		}
		return emitSent(tx, p.c, store.FromMicros(now))
	})
	return more, err
}

// pipeline overlaps the three steps of sending, which wait on different
// things: while one batch is handed to the mail server, the next is
// claimed and the one before is recorded. Batches are handed over one at a
// time, in order. A batch claimed but not handed over when sending stops
// (an error, shutting down) is recorded as not begun, so it goes in a
// later batch. It returns how many recipients it handled.
func (x *Sender) pipeline(ctx context.Context, p *prepared) (int, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	claimed := make(chan *batch, 1)
	handed := make(chan *batch, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // claim ahead
		defer wg.Done()
		defer close(claimed)
		for ctx.Err() == nil {
			b, more, err := x.claim(ctx, p)
			if err != nil {
				cancel(err)
				return
			}
			if !more {
				return
			}
			x.renderAhead(ctx, p, b)
			if len(b.rows) > 0 {
				claimed <- b
			}
		}
	}()
	total := 0
	go func() { // record behind
		defer wg.Done()
		// Outcomes are recorded even while shutting down: what went out
		// must not end as unknown.
		fctx := context.WithoutCancel(ctx)
		for b := range handed {
			if err := x.finish(fctx, p, b); err != nil {
				cancel(err) // the batch's lease runs out: unknown
				continue
			}
			x.observe(b)
			total += len(b.rows)
		}
	}()
	for b := range claimed {
		if ctx.Err() == nil {
			if err := x.send(ctx, p, b); err != nil {
				cancel(err)
			}
		}
		handed <- b // recorded as handed over, or as not begun
	}
	close(handed)
	wg.Wait()
	return total, context.Cause(ctx)
}

// observe tells Observe what became of a recorded batch's messages.
func (x *Sender) observe(b *batch) {
	if x.Observe == nil {
		return
	}
	for _, o := range b.rows {
		out := mail.Outcome{Kind: mail.KindCampaign, Status: o.status}
		if o.status == RecipientSuppressed {
			out.Reason = o.reason
		}
		x.Observe(out)
	}
}

// batch is a run of recipients a sender took.
type batch struct {
	first, last int64
	rows        []*outcome
}

type outcome struct {
	id        int64
	contactID string
	attempts  int
	status    string
	reason    string
	tracked   bool
	env       *mail.Envelope
	// renderedFor is the state env was rendered for ahead of the
	// hand-over; a recipient whose state changed since is rendered again.
	renderedFor recipient
	bounced     bool
}

// renderAhead renders the messages of a claimed batch while the batch
// before is handed over, so that as its own hand-over starts only the
// gate is read again. A message is rendered for the state read now; send
// renders it again if that state changed by the time its hand-over reads
// it, and renders all of them there if the read here fails.
func (x *Sender) renderAhead(ctx context.Context, p *prepared, b *batch) {
	recips, err := p.read(ctx, x.Service.DB.Read, b.rows)
	if err != nil {
		return
	}
	for _, o := range b.rows {
		if r, ok := recips[o.contactID]; ok && r.reason == "" {
			o.env, o.renderedFor = p.envelope(o.id, r), *r
		}
	}
}

// maxBatch is the most recipients a batch takes.
const maxBatch = 1000

// batchSize is how many messages fit in the budget at the pace measured
// so far, and no more than the setting campaign_rate lets go at once.
func (x *Sender) batchSize() int {
	n := 50
	if per := time.Duration(x.perMsg.Load()); per > 0 {
		n = max(10, min(maxBatch, int(x.Budget/per)))
	}
	return min(n, x.pace.burst())
}

// claim takes the next batch: retries that are due first, then the queued
// recipients after the campaign's cursor. more is false when the campaign
// is no longer sending or nothing is left to take (settle then decides
// whether it is sent).
func (x *Sender) claim(ctx context.Context, p *prepared) (b *batch, more bool, err error) {
	s := x.Service
	st, err := settings.Get(ctx, s.DB.Read)
	if err != nil {
		return nil, false, err
	}
	x.pace.set(st.CampaignRate)
	n := x.batchSize()
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		b, more = &batch{}, false
		var status string
		var cursor int64
		if err := tx.QueryRow(`SELECT status, claimed_through FROM campaigns WHERE id = $1`, p.c.ID).Scan(&status, &cursor); err != nil {
			return fmt.Errorf("campaign: claim: %w", err)
		}
		if status != StatusSending {
			return nil
		}
		rows, err := tx.Query(`SELECT r.id, r.contact_id, r.attempts FROM campaign_retries q JOIN campaign_recipients r ON r.id = q.recipient_id
			WHERE q.campaign_no = $1 AND q.run_at <= $3 ORDER BY q.recipient_id LIMIT $2`, p.c.no, n, store.Micros(s.now()))
		if err != nil {
			return fmt.Errorf("campaign: claim: %w", err)
		}
		if b.rows, err = scanClaim(rows); err != nil {
			return err
		}
		fresh := len(b.rows) == 0
		if fresh {
			rows, err := tx.Query(`SELECT id, contact_id, attempts FROM campaign_recipients WHERE campaign_no = $1 AND id > $2 AND status = 'queued'
				ORDER BY id LIMIT $3`, p.c.no, cursor, n)
			if err != nil {
				return fmt.Errorf("campaign: claim: %w", err)
			}
			if b.rows, err = scanClaim(rows); err != nil {
				return err
			}
		}
		if len(b.rows) == 0 {
			return nil // settle decides whether the campaign is sent
		}
		more = true
		b.first, b.last = b.rows[0].id, b.rows[0].id
		for _, r := range b.rows {
			b.first, b.last = min(b.first, r.id), max(b.last, r.id)
		}
		if fresh {
			// The rows stay queued: the batch's range says they are taken.
			if _, err := tx.Exec(`UPDATE campaigns SET claimed_through = $2 WHERE id = $1`, p.c.ID, b.last); err != nil {
				return fmt.Errorf("campaign: claim: %w", err)
			}
		} else {
			among, args := amongIDs(tx.Dialect(), 2, b.rows)
			args = append([]any{p.c.no}, args...)
			if _, err := tx.Exec(`DELETE FROM campaign_retries WHERE campaign_no = $1 AND recipient_id `+among, args...); err != nil {
				return fmt.Errorf("campaign: claim: %w", err)
			}
			if _, err := tx.Exec(`UPDATE campaign_recipients SET status = 'sending' WHERE campaign_no = $1 AND id `+among, args...); err != nil {
				return fmt.Errorf("campaign: claim: %w", err)
			}
		}
		_, err = tx.Exec(`INSERT INTO campaign_batches (campaign_no, first_id, last_id, fresh, claimed_by, lease_until) VALUES ($1, $2, $3, $4, $5, $6)`,
			p.c.no, b.first, b.last, fresh, x.claimID(), store.Micros(s.now().Add(x.Lease)))
		if err != nil {
			return fmt.Errorf("campaign: claim: %w", err)
		}
		return nil
	})
	return b, more, err
}

func scanClaim(rows interface {
	Next() bool
	Scan(...any) error
	Close() error
	Err() error
}) ([]*outcome, error) {
	defer rows.Close()
	var out []*outcome
	for rows.Next() {
		o := &outcome{}
		if err := rows.Scan(&o.id, &o.contactID, &o.attempts); err != nil {
			return nil, fmt.Errorf("campaign: claim: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// amongIDs is the condition that a recipient id is one of rows', for
// "WHERE id " + cond, with the ids as one parameter numbered first (see
// store.Among: the statement is the same for any number of rows).
func amongIDs(d store.Dialect, first int, rows []*outcome) (string, []any) {
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.id
	}
	return store.Among(d, first, ids)
}

// send hands a batch over. It opens a hand-over for the batch's contacts
// (store.DB.StartHandOver), which reads each recipient's state again and
// applies the gate; the allowed messages go to the transport, which begins
// each through the hand-over and ends it there once the mail server has
// answered. So a change that can stop email to a recipient and commits
// before their message begins stops it (the message is not begun, and the
// recipient's state is read again in a later batch); one that comes while
// their message is being handed over waits for that message only, outside
// the database writer; and nothing waits for a mail server on another
// recipient's behalf. Messages not begun within the budget are left for
// the next batch; one begun is always finished. Then each outcome is
// recorded.
func (x *Sender) send(ctx context.Context, p *prepared, b *batch) error {
	s := x.Service
	if err := x.wait(ctx, len(b.rows)); err != nil {
		return err
	}
	started := time.Now()
	ids := make([]string, len(b.rows))
	for i, o := range b.rows {
		ids[i] = o.contactID
	}
	var recips map[string]*recipient
	ho, err := s.DB.StartHandOver(ctx, ids, func(q store.Querier) (err error) {
		recips, err = p.read(ctx, q, b.rows)
		return err
	})
	if err != nil {
		return err
	}
	defer ho.Close()
	var envs []*mail.Envelope
	var sending []*outcome
	for _, o := range b.rows {
		r, ok := recips[o.contactID]
		switch {
		case !ok:
			o.status, o.reason = RecipientSuppressed, ReasonDeleted
		case r.reason != "":
			o.status, o.reason = RecipientSuppressed, r.reason
		default:
			o.tracked = r.tracked
			if o.env == nil || o.renderedFor != *r {
				o.env, o.renderedFor = p.envelope(o.id, r), *r
			}
			id := o.contactID
			o.env.Begin = func() bool { return ho.Begin(id) }
			o.env.End = func() { ho.End(id) }
			envs = append(envs, o.env)
			sending = append(sending, o)
		}
	}
	if len(envs) == 0 {
		return nil
	}
	budget, cancel := context.WithTimeout(ctx, x.Budget)
	defer cancel()
	errs := x.Transport.Send(budget, envs)
	var handed int
	for i, o := range sending {
		if errors.Is(errs[i], mail.ErrNotBegun) {
			// A change to the recipient came first: their state is read
			// again in a later batch.
			o.status, o.reason = RecipientRetry, notBegun
			continue
		}
		if !errors.Is(errs[i], context.Canceled) && !errors.Is(errs[i], context.DeadlineExceeded) {
			handed++
		}
		o.classify(errs[i], ctx)
	}
	if handed > 0 {
		per := time.Since(started) / time.Duration(handed)
		if was := time.Duration(x.perMsg.Load()); was > 0 {
			per = (was*3 + per) / 4
		}
		x.perMsg.Store(int64(per))
	}
	return nil
}

// classify turns the transport's answer for one message into its outcome.
func (o *outcome) classify(err error, ctx context.Context) {
	switch {
	case err == nil:
		o.status = RecipientSent
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil, errors.Is(err, context.Canceled):
		// Not begun: the budget ran out, or the sender is stopping.
		o.status, o.reason = RecipientRetry, notBegun
	case mail.IsBounce(err):
		o.status, o.reason, o.bounced = RecipientFailed, truncate(bouncePrefix+err.Error()), true
	case mail.IsPermanent(err) || o.attempts+1 >= maxAttempts:
		o.status, o.reason = RecipientFailed, truncate(err.Error())
	default:
		// Refused for now: again later.
		o.status, o.reason = RecipientRetry, truncate(err.Error())
	}
}

func truncate(s string) string {
	if len(s) > 300 {
		return s[:300]
	}
	return s
}

// wait keeps to the setting campaign_rate (see pacer), on the Service's
// clock, and gives way to people (GiveWay) before n messages are handed
// over.
func (x *Sender) wait(ctx context.Context, n int) error {
	if d := x.pace.reserve(x.Service.now(), n); d > 0 {
		sleep := x.Sleep
		if sleep == nil {
			sleep = sleepOn
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	return x.GiveWay.Wait(ctx, n)
}

// sleepOn waits d on a timer, or returns ctx's error.
func sleepOn(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pacer keeps to the setting campaign_rate, messages a second per
// instance: a token bucket that fills at that rate and holds at most a
// tenth of a second's worth (at least one message, at most a batch). It
// starts full, so the first messages go at once, but no more of them than
// that burst: over any stretch of t seconds, at most rate×t + rate/10
// messages are handed over, from the first message on. The burst is also
// the largest batch a sender takes, so that a batch goes out as soon as
// its messages may, and a claimed batch waits for the rate no longer than
// a tenth of a second (one message's turn at a rate under 10), well
// within its lease. A rate of 0 is no limit.
type pacer struct {
	mu      sync.Mutex
	rate    int
	limiter *rate.Limiter // nil: no limit
}

// set makes the rate r messages a second; a change starts a new, full
// bucket.
func (p *pacer) set(r int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r == p.rate && (r <= 0 || p.limiter != nil) {
		return
	}
	p.rate, p.limiter = r, nil
	if r > 0 {
		p.limiter = rate.NewLimiter(rate.Limit(r), max(1, min(maxBatch, (r+9)/10)))
	}
}

// burst is the most messages that may go at once: maxBatch without a
// limit.
func (p *pacer) burst() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limiter == nil {
		return maxBatch
	}
	return p.limiter.Burst()
}

// reserve takes n messages' turn at now and returns how long to wait
// before they go (0: at once). More than a burst is taken a burst at a
// time, each after the one before.
func (p *pacer) reserve(now time.Time, n int) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limiter == nil {
		return 0
	}
	var d time.Duration
	for n > 0 {
		part := min(n, p.limiter.Burst())
		d = p.limiter.ReserveN(now, part).DelayFrom(now)
		n -= part
	}
	return d
}

// finish records each outcome of a batch and closes it.
func (x *Sender) finish(ctx context.Context, p *prepared, b *batch) error {
	s := x.Service
	now := s.now()
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		groups := map[[2]string][]*outcome{}
		var tracked []*outcome
		for _, o := range b.rows {
			if o.status == "" {
				o.status, o.reason = RecipientRetry, notBegun
			}
			if o.status == RecipientSent && o.tracked {
				tracked = append(tracked, o)
				continue
			}
			k := [2]string{o.status, o.reason}
			groups[k] = append(groups[k], o)
		}
		for k, rows := range groups {
			if err := setStatus(tx, p.c.no, k[0], k[1], false, rows, now); err != nil {
				return err
			}
		}
		if err := setStatus(tx, p.c.no, RecipientSent, "", true, tracked, now); err != nil {
			return err
		}
		for _, o := range b.rows {
			if !o.bounced {
				continue
			}
			st, err := contactstate.Load(tx, o.contactID)
			if errs.Is(err, errs.KindNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := contactstate.RecordBounceTx(tx, &st, true, 0, now); err != nil {
				return err
			}
		}
		_, err := tx.Exec(`DELETE FROM campaign_batches WHERE campaign_no = $1 AND first_id = $2`, p.c.no, b.first)
		if err != nil {
			return fmt.Errorf("campaign: close batch: %w", err)
		}
		return nil
	})
}

// setStatus records one outcome for rows, in one statement.
func setStatus(tx *store.Tx, no int64, status, reason string, tracked bool, rows []*outcome, now time.Time) error {
	var sentAt any
	if status == RecipientSent {
		sentAt = store.Micros(now)
	}
	attempt := "attempts"
	if (status == RecipientRetry && reason != notBegun) || status == RecipientFailed {
		attempt = "attempts + 1"
	}
	if len(rows) == 0 {
		return nil
	}
	among, args := amongIDs(tx.Dialect(), 6, rows)
	if _, err := tx.Exec(`UPDATE campaign_recipients SET status = $2, reason = $3, tracked = $4, sent_at = $5, attempts = `+attempt+`
		WHERE campaign_no = $1 AND id `+among, append([]any{no, status, reason, tracked, sentAt}, args...)...); err != nil {
		return fmt.Errorf("campaign: record outcome: %w", err)
	}
	if status == RecipientRetry {
		// A message not begun goes in the next batch; one refused for
		// now waits, longer after each refusal.
		runAt := now
		if reason != notBegun {
			runAt = now.Add(jobs.Backoff(rows[0].attempts + 1))
		}
		among, args := amongIDs(tx.Dialect(), 3, rows)
		if _, err := tx.Exec(`INSERT INTO campaign_retries (campaign_no, recipient_id, run_at) SELECT campaign_no, id, $2 FROM campaign_recipients
			WHERE campaign_no = $1 AND id `+among+` ON CONFLICT DO NOTHING`, append([]any{no, store.Micros(runAt)}, args...)...); err != nil {
			return fmt.Errorf("campaign: record outcome: %w", err)
		}
	}
	return nil
}

// recoverLost declares the recipients of every batch whose lease ran out
// (its sender died, or lost the database for longer than the lease)
// unknown: their message may have reached the mail server. They are not
// sent again unless the operator asks.
func (x *Sender) recoverLost(ctx context.Context) error {
	s := x.Service
	before := s.now()
	if !x.started && s.DB.Dialect == store.SQLite {
		// On SQLite this process is the only sender: a batch open when it
		// starts was left by the one before, which is gone.
		before = time.Unix(1<<40, 0)
	}
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		type lost struct {
			no, first, last int64
			fresh           bool
		}
		rows, err := tx.Query(`SELECT campaign_no, first_id, last_id, fresh FROM campaign_batches WHERE lease_until < $1`, store.Micros(before))
		if err != nil {
			return fmt.Errorf("campaign: find lost batches: %w", err)
		}
		var all []lost
		for rows.Next() {
			var l lost
			if err := rows.Scan(&l.no, &l.first, &l.last, &l.fresh); err != nil {
				rows.Close()
				return err
			}
			all = append(all, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, l := range all {
			taken := "'sending'"
			if l.fresh {
				taken = "'queued', 'sending'"
			}
			if _, err := tx.Exec(`UPDATE campaign_recipients SET status = 'unknown', reason = 'the sender stopped while handing messages over'
				WHERE campaign_no = $1 AND id >= $2 AND id <= $3 AND status IN (`+taken+`)`, l.no, l.first, l.last); err != nil {
				return fmt.Errorf("campaign: recover batch: %w", err)
			}
			if _, err := tx.Exec(`DELETE FROM campaign_batches WHERE campaign_no = $1 AND first_id = $2`, l.no, l.first); err != nil {
				return fmt.Errorf("campaign: recover batch: %w", err)
			}
		}
		return nil
	})
	if err == nil {
		x.started = true
	}
	return err
}

// recipient is what a message needs of its contact, read as its batch's
// hand-over starts.
type recipient struct {
	id, email, first, last, lang string
	reason                       string
	tracked                      bool
}

// read loads the state of rows' contacts through q with the gate's reason
// and whether they are tracked. A contact deleted since is absent.
func (p *prepared) read(ctx context.Context, q store.Querier, rows []*outcome) (map[string]*recipient, error) {
	a := &sqlArgs{}
	// As a hand-over starts every rule is tested, the legal holds included,
	// whatever the gate found when the campaign was prepared, and as of
	// now: a consent that expired since (or a hold that began) stops the
	// message, and the purposes that govern marketing email are read
	// again.
	g := *p.gate
	g.holds, g.now = true, p.now()
	ground, err := mail.LoadGround(ctx, q, g.c.PurposeID, g.statuses, g.now)
	if err != nil {
		return nil, err
	}
	g.ground = ground
	from := g.fromEach(a)
	reason := g.reason(a)
	tracked := g.tracked(a)
	ids := make([]string, len(rows))
	for i, o := range rows {
		ids[i] = o.contactID
	}
	in, args := store.InList(p.gate.dialect, len(a.args)+1, ids)
	rs, err := q.QueryContext(ctx, `SELECT c.id, c.email, c.first_name, c.last_name, c.language, `+reason+`, `+tracked+`
		FROM `+from+` WHERE c.id IN (`+in+`)`, append(a.args, args...)...)
	if err != nil {
		return nil, fmt.Errorf("campaign: read recipients: %w", err)
	}
	defer rs.Close()
	out := make(map[string]*recipient, len(rows))
	for rs.Next() {
		r := &recipient{}
		if err := rs.Scan(&r.id, &r.email, &r.first, &r.last, &r.lang, &r.reason, &r.tracked); err != nil {
			return nil, fmt.Errorf("campaign: read recipients: %w", err)
		}
		out[r.id] = r
	}
	return out, rs.Err()
}

// emitSent writes campaign.sent for c, which has just finished sending,
// with its recipients counted by status: once per campaign (and again
// should recipients whose outcome was unknown be sent again).
func emitSent(tx *store.Tx, c *Campaign, now time.Time) error {
	counts, err := store.CountBy(context.Background(), tx, `SELECT status, count(*) FROM campaign_recipients WHERE campaign_no = $1 GROUP BY status`, c.no)
	if err != nil {
		return fmt.Errorf("campaign: count recipients: %w", err)
	}
	return events.Emit(tx, events.CampaignSent, "", events.CampaignSentData{CampaignID: c.ID, Name: c.Name, Recipients: counts}, now)
}
