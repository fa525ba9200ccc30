package campaign

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/filter"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// Reasons a contact in a campaign's audience does not get it, in the order
// they are tested: a contact is counted under the first that applies.
const (
	ReasonErased             = mail.ReasonErased
	ReasonDeleted            = "contact_deleted"
	ReasonProcessingStopped  = mail.ReasonProcessingStopped
	ReasonErasureRequested   = mail.ReasonErasureRequested
	ReasonHeld               = mail.ReasonHeld
	ReasonBounced            = mail.ReasonBounced
	ReasonBlocklisted        = mail.ReasonBlocklisted
	ReasonOptedOutContact    = mail.ReasonOptedOutContact
	ReasonOptedOutUser       = mail.ReasonOptedOutUser
	ReasonListUnsubscribed   = "unsubscribed_from_list"
	ReasonSuppressedAddress  = mail.ReasonSuppressedAddress
	ReasonNoConsent          = mail.ReasonNoConsent
	ReasonMarketingWithdrawn = mail.ReasonMarketingWithdrawn
	ReasonNotOptedIn         = mail.ReasonNotOptedIn
	ReasonDuplicateAddress   = "duplicate_address"
)

// Reasons lists every exclusion reason in the order reports show them.
var Reasons = []string{ReasonOptedOutContact, ReasonOptedOutUser, ReasonNotOptedIn, ReasonNoConsent, ReasonMarketingWithdrawn, ReasonBounced,
	ReasonBlocklisted, ReasonProcessingStopped, ReasonErasureRequested, ReasonHeld, ReasonSuppressedAddress,
	ReasonListUnsubscribed, ReasonDuplicateAddress, ReasonErased, ReasonDeleted}

// Audience is who a campaign reaches: the contacts its lists and condition
// select, how many of them get it, and how many do not, by reason.
type Audience struct {
	Resolved   bool             `json:"resolved" doc:"false for a preview, which writes nothing; true once the campaign's recipients are fixed"`
	Selected   int64            `json:"selected" doc:"contacts the lists and condition select"`
	Recipients int64            `json:"recipients" doc:"of those, the contacts who get the campaign (at sending, each is checked again)"`
	Excluded   map[string]int64 `json:"excluded" doc:"the others, by reason"`
	At         time.Time        `json:"at"`
}

func newAudience(at time.Time) *Audience {
	a := &Audience{Excluded: map[string]int64{}, At: at}
	for _, r := range Reasons {
		a.Excluded[r] = 0
	}
	return a
}

func (a *Audience) add(reason string, n int64) {
	a.Selected += n
	if reason == "" {
		a.Recipients += n
		return
	}
	a.Excluded[reason] += n
}

// gate is a campaign's rules as SQL over the contacts alias c: which
// contacts its audience selects, and why one of them may not get it. The
// same expression counts the audience, fixes the recipients and, as a
// batch's hand-over starts, checks each recipient again just before
// sending. Whether a contact may be sent marketing email at all is the
// ground's (mail.Ground), which workflow email to the contact shares.
type gate struct {
	c        *Campaign
	ground   *mail.Ground      // for the campaign's purpose
	statuses []string          // the opt-in statuses the policy reaches
	cond     *filter.Condition // or nil
	dialect  store.Dialect
	// holds is whether any legal hold is in force: most installations
	// have none, and the test is then left out of the expression.
	holds    bool
	tracking string // the engagement tracking setting
	trackPur string // the tracking purpose's name, lower case
	now      time.Time
}

// policyStatuses returns the opt-in statuses both the setting and the
// campaign's own policy accept: a campaign can only be stricter.
func policyStatuses(setting, own string) []string {
	out := settings.CampaignStatuses(setting)
	if own == "" {
		return out
	}
	mine := settings.CampaignStatuses(own)
	var both []string
	for _, s := range out {
		for _, m := range mine {
			if s == m {
				both = append(both, s)
			}
		}
	}
	return both
}

// newGate prepares c's rules. A campaign with neither lists nor condition
// has no audience: that is an error on "lists".
func (s *Service) newGate(ctx context.Context, q store.Querier, c *Campaign) (*gate, error) {
	if len(c.ListIDs) == 0 && c.Condition == "" {
		return nil, errs.Invalid("lists", "choose the lists or give a condition: the campaign has no audience")
	}
	st, err := settings.Get(ctx, q)
	if err != nil {
		return nil, err
	}
	g := &gate{c: c, statuses: policyStatuses(st.CampaignOptInPolicy, c.OptInPolicy),
		tracking: st.EngagementTracking, trackPur: strings.ToLower(st.TrackingPurpose), now: s.now()}
	if g.ground, err = mail.LoadGround(ctx, q, c.PurposeID, g.statuses, g.now); err != nil {
		return nil, err
	}
	if c.Condition != "" {
		cond, err := s.Condition(ctx, c.Condition)
		if err != nil {
			return nil, errs.WithField(err, errs.Field("condition"))
		}
		g.cond = cond
	}
	g.dialect = s.DB.Dialect
	// A hold set after this read is still seen at sending: the read as a
	// batch's hand-over starts always tests holds (see prepared.read).
	if err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM legal_holds WHERE lifted_at IS NULL)`).Scan(&g.holds); err != nil {
		return nil, fmt.Errorf("campaign: look for legal holds: %w", err)
	}
	return g, nil
}

// from is the FROM clause the reason and tracked expressions need: the
// contacts, each with their current consents to the purposes the ground
// reads (the campaign's, and those that govern marketing email) joined
// rather than looked up in a subquery per contact, which on a million
// contacts is most of a count's time. A campaign for E-marketing, when it
// is the one purpose that governs marketing email, joins that one.
func (g *gate) from(a *sqlArgs) string {
	return `contacts c` + g.ground.Joins(a.p, false)
}

// fromEach is from for a bounded set of contacts (a range or a list of
// ids): each contact's consent is looked up by its key. On PostgreSQL the
// lookup is a LATERAL subquery the planner cannot turn into a join, since
// a join lets it read the whole consent_current table whenever it guesses
// the set large; it guessed a range of 700 string ids at 9,000 rows and
// took 120 ms for a step meant to take 10, while every consent change
// waited behind it. SQLite looks each contact up by key anyway.
func (g *gate) fromEach(a *sqlArgs) string {
	return `contacts c` + g.ground.Joins(a.p, g.dialect == store.Postgres)
}

// sqlArgs collects a statement's parameters as its fragments are written.
type sqlArgs struct{ args []any }

func (a *sqlArgs) p(v any) string {
	a.args = append(a.args, v)
	return fmt.Sprintf("$%d", len(a.args))
}

func quoteList(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
	}
	return strings.Join(q, ", ")
}

// selects is the WHERE fragment of the contacts the audience selects.
func (g *gate) selects(a *sqlArgs) string {
	var parts []string
	if len(g.c.ListIDs) > 0 {
		parts = append(parts, `EXISTS (SELECT 1 FROM list_subscriptions ls WHERE ls.contact_id = c.id AND ls.list_id IN (`+g.lists(a)+`))`)
	}
	if g.cond != nil {
		frag, args := g.cond.SQL(g.dialect, len(a.args)+1)
		a.args = append(a.args, args...)
		parts = append(parts, "("+frag+")")
	}
	return strings.Join(parts, " AND ")
}

func (g *gate) lists(a *sqlArgs) string {
	ph := make([]string, len(g.c.ListIDs))
	for i, id := range g.c.ListIDs {
		ph[i] = a.p(id)
	}
	return strings.Join(ph, ", ")
}

// reason is the SQL expression of why contact c may not get the campaign,
// ” when they may. The order is the order of Reasons' tests: what every
// email needs (the send gate of other email, mail.Gate, applies the same
// first rules), the opt-outs, the list subscription, then the rest of the
// ground of marketing email (mail.Ground).
func (g *gate) reason(a *sqlArgs) string {
	var cases []mail.Case
	w := func(cond, reason string) { cases = append(cases, mail.Case{Cond: cond, Reason: reason}) }
	w("c.erased_at IS NOT NULL", ReasonErased)
	w("c.processing_stopped_at IS NOT NULL", ReasonProcessingStopped)
	w("c.erasure_requested_at IS NOT NULL", ReasonErasureRequested)
	if g.holds {
		w(`EXISTS (SELECT 1 FROM legal_holds h WHERE h.contact_id = c.id AND h.lifted_at IS NULL AND (h.until_at IS NULL OR h.until_at > `+
			a.p(store.Micros(g.now))+`))`, ReasonHeld)
	}
	w("c.deliverability = '"+contactstate.DeliverabilityBounced+"'", ReasonBounced)
	w("c.deliverability = '"+contactstate.DeliverabilityBlocklisted+"'", ReasonBlocklisted)
	cases = append(cases, g.ground.OptOutCases()...)
	if len(g.c.ListIDs) > 0 {
		w(`NOT EXISTS (SELECT 1 FROM list_subscriptions ls WHERE ls.contact_id = c.id AND ls.status = 'subscribed' AND ls.list_id IN (`+g.lists(a)+`))`, ReasonListUnsubscribed)
	}
	cases = append(cases, g.ground.ConsentCases(a.p)...)
	return mail.CaseSQL(cases)
}

// tracked is the SQL expression of whether contact c's opens and clicks
// may be tracked.
func (g *gate) tracked(a *sqlArgs) string {
	switch g.tracking {
	case settings.TrackingLegitimate:
		return "TRUE"
	case settings.TrackingConsent:
		return `EXISTS (SELECT 1 FROM consent_current cc JOIN purposes tp ON tp.id = cc.purpose_id WHERE cc.contact_id = c.id
			AND tp.name_key = ` + a.p(g.trackPur) + ` AND cc.state = 'granted' AND (cc.expires_at IS NULL OR cc.expires_at > ` + a.p(store.Micros(g.now)) + `))`
	}
	return "FALSE"
}

// Preview counts the campaign's audience as it would be now, writing
// nothing. A campaign already resolved returns what was fixed then.
func (s *Service) Preview(ctx context.Context, id string) (*Audience, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Audience != nil {
		return c.Audience, nil
	}
	g, err := s.newGate(ctx, s.DB.Read, c)
	if err != nil {
		return nil, err
	}
	a := &sqlArgs{}
	from := g.from(a)
	reason := g.reason(a)
	where := g.selects(a)
	spans, err := s.spans(ctx)
	if err != nil {
		return nil, err
	}
	out := newAudience(g.now)
	var mu sync.Mutex
	var group errgroup.Group
	for _, span := range spans {
		group.Go(func() error {
			counts, err := countReasons(ctx, s.DB, `SELECT `+reason+` AS r FROM `+from+` WHERE `+where+span, a.args)
			if err != nil {
				return fmt.Errorf("campaign: preview audience: %w", err)
			}
			mu.Lock()
			defer mu.Unlock()
			for r, n := range counts {
				out.add(r, n)
			}
			return nil
		})
	}
	return out, group.Wait()
}

// countReasons counts the rows of rows (a query of one column r, a reason
// or ” for a recipient) by reason. On SQLite, a GROUP BY would sort every
// row first; instead one pass adds up a column per reason, over a
// subquery that LIMIT keeps from being merged into the sums (which would
// evaluate the reason once per sum). PostgreSQL groups by hashing.
func countReasons(ctx context.Context, db *store.DB, rows string, args []any) (map[string]int64, error) {
	if db.Dialect != store.SQLite {
		return store.CountBy(ctx, db.Read, `SELECT r, count(*) FROM (`+rows+`) x GROUP BY r`, args...)
	}
	all := append([]string{""}, Reasons...)
	sums := make([]string, len(all))
	for i, r := range all {
		sums[i] = "coalesce(sum(r = '" + r + "'), 0)"
	}
	n := make([]int64, len(all))
	dest := make([]any, len(all))
	for i := range n {
		dest[i] = &n[i]
	}
	if err := db.Read.QueryRowContext(ctx, `SELECT `+strings.Join(sums, ", ")+` FROM (`+rows+` LIMIT -1) x`, args...).Scan(dest...); err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(all))
	for i, r := range all {
		if n[i] > 0 {
			out[r] = n[i]
		}
	}
	return out, nil
}

// spans splits the contacts for counting in parallel: on SQLite, where a
// query runs on one core, into one range of row numbers per core, each a
// condition to add to the WHERE clause; on PostgreSQL, which runs a large
// count in parallel itself, into one span with no condition. The spans
// are read apart, so a count made while contacts change may be off by
// those changes, as any preview is a moment later.
func (s *Service) spans(ctx context.Context) ([]string, error) {
	n := runtime.GOMAXPROCS(0)
	if s.DB.Dialect != store.SQLite || n < 2 {
		return []string{""}, nil
	}
	var lo, hi sql.NullInt64
	if err := s.DB.Read.QueryRowContext(ctx, `SELECT min(rowid), max(rowid) FROM contacts`).Scan(&lo, &hi); err != nil {
		return nil, fmt.Errorf("campaign: preview audience: %w", err)
	}
	if !lo.Valid || hi.Int64-lo.Int64 < 10_000 {
		return []string{""}, nil
	}
	step := (hi.Int64 - lo.Int64 + int64(n)) / int64(n)
	var out []string
	for from := lo.Int64; from <= hi.Int64; from += step {
		out = append(out, fmt.Sprintf(" AND c.rowid BETWEEN %d AND %d", from, from+step-1))
	}
	return out, nil
}

// Resolving goes in steps of a few thousand contacts at most, each a
// transaction of about resolveStepTime: every write waits behind the step
// in progress, consent changes too, so a step is kept short. The step
// size follows the pace measured.
const (
	resolveStepTime = 10 * time.Millisecond
	resolveFirst    = 500
	resolveMin      = 100
	resolveMax      = 4000
)

// resolveAll fixes the audience's recipients step by step until it is
// complete. Run again after a crash, it goes on from where the last step
// committed.
//
// On PostgreSQL the recipients' table is analysed once a step added any:
// until autovacuum gets to it, seconds later, the planner still counts
// the table as it was and read a million new rows for each batch the
// sender claimed (260 ms a claim, with every consent change waiting).
func (s *Service) resolveAll(ctx context.Context, g *gate) error {
	chunk := resolveFirst
	added := false
	for {
		start := time.Now()
		done, err := s.resolveStep(ctx, g, chunk)
		if err != nil {
			return err
		}
		if done {
			if added && s.DB.Dialect == store.Postgres {
				if _, err := s.DB.Read.ExecContext(ctx, `ANALYZE campaign_recipients`); err != nil {
					return fmt.Errorf("campaign: analyse the recipients: %w", err)
				}
			}
			return nil
		}
		added = true
		took := max(time.Since(start), time.Microsecond)
		chunk = min(resolveMax, max(resolveMin, int(float64(chunk)*float64(resolveStepTime)/float64(took))))
	}
}

// resolveStep fixes the recipients of the next chunk contacts (by id) in
// one transaction, with the cursor and the running counts, and reports
// whether the audience is complete. Run again after a crash, it goes on
// from the cursor: no contact is added twice.
func (s *Service) resolveStep(ctx context.Context, g *gate, chunk int) (done bool, err error) {
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		var after, audience string
		var resolved bool
		if err := tx.QueryRow(`SELECT resolved_through, audience, resolved FROM campaigns WHERE id = $1`, g.c.ID).Scan(&after, &audience, &resolved); err != nil {
			return fmt.Errorf("campaign: resolve: %w", err)
		}
		if resolved {
			done = true
			return nil
		}
		aud := newAudience(g.now)
		json.Unmarshal([]byte(audience), aud)
		var upto string
		err := tx.QueryRow(`SELECT id FROM contacts WHERE id > $1 ORDER BY id LIMIT 1 OFFSET $2`, after, chunk-1).Scan(&upto)
		last := errors.Is(err, sql.ErrNoRows)
		if err != nil && !last {
			return fmt.Errorf("campaign: resolve: %w", err)
		}
		a := &sqlArgs{}
		from := g.fromEach(a)
		reason := g.reason(a)
		bound := `c.id > ` + a.p(after)
		if !last {
			bound += ` AND c.id <= ` + a.p(upto)
		}
		q := `INSERT INTO campaign_recipients (campaign_no, contact_id, status, reason)
			SELECT ` + a.p(g.c.no) + `, id, CASE WHEN r = '' THEN 'queued' ELSE 'excluded' END, r
			FROM (SELECT c.id, ` + reason + ` AS r FROM ` + from + ` WHERE ` + bound + ` AND ` + g.selects(a) + ` ORDER BY c.id) x
			RETURNING reason`
		rows, err := tx.Query(q, a.args...)
		if err != nil {
			return fmt.Errorf("campaign: resolve: %w", err)
		}
		counts := map[string]int64{}
		for rows.Next() {
			var r string
			if err := rows.Scan(&r); err != nil {
				rows.Close()
				return fmt.Errorf("campaign: resolve: %w", err)
			}
			counts[r]++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("campaign: resolve: %w", err)
		}
		for r, n := range counts {
			aud.add(r, n)
		}
		aud.Resolved = last
		aud.At = g.now
		enc, _ := json.Marshal(aud)
		if _, err := tx.Exec(`UPDATE campaigns SET resolved_through = $2, audience = $3, resolved = $4 WHERE id = $1`,
			g.c.ID, upto, string(enc), last); err != nil {
			return fmt.Errorf("campaign: resolve: %w", err)
		}
		done = last
		return nil
	})
	return done, err
}

// Resolve fixes the audience of a campaign that is sending or paused, if
// that is not done yet, and returns it. Sending does this by itself; an
// operator may do it while paused, to see the final counts first.
func (s *Service) Resolve(ctx context.Context, id string) (*Audience, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Status != StatusSending && c.Status != StatusPaused {
		return nil, errs.Conflict("campaign_"+c.Status, "status", "the audience is fixed once the campaign starts sending; it is %s", c.Status)
	}
	g, err := s.newGate(ctx, s.DB.Read, c)
	if err != nil {
		return nil, err
	}
	if c.Audience == nil || !c.Audience.Resolved {
		if err := s.resolveAll(ctx, g); err != nil {
			return nil, err
		}
	}
	c, err = s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.Audience, nil
}
