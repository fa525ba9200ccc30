package mail

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// Reasons marketing email (a campaign, a workflow rule's email to the
// contact) is not sent for want of a ground (Ground), in the order they
// are tested.
const (
	ReasonOptedOutContact = "opted_out_by_contact"
	ReasonOptedOutUser    = "opted_out_by_user"
	// ReasonSuppressedAddress: the address was erased before and came
	// back without a new consent to a purpose the email serves.
	ReasonSuppressedAddress = "suppressed_address"
	// ReasonNoConsent: no ground for the purpose the email serves: no
	// valid consent to it (none recorded, withdrawn or expired), or, for
	// a purpose on another legal basis, the contact objected. Email that
	// serves the purposes that govern marketing email (a workflow rule's)
	// needs a ground for one of them.
	ReasonNoConsent = "no_consent_for_purpose"
	// ReasonMarketingWithdrawn: the contact withdrew their consent to a
	// purpose that governs marketing email (or objected to it): they said
	// no to marketing email, and get none, whatever purpose it serves.
	ReasonMarketingWithdrawn = "marketing_email_withdrawn"
	// ReasonNotOptedIn: the opt-in status is not one the campaign opt-in
	// policy accepts.
	ReasonNotOptedIn = "not_opted_in_for_campaigns"
)

// GroundPurpose is a purpose as the ground reads it.
type GroundPurpose struct {
	ID         string
	LegalBasis string
	Marketing  bool // it governs marketing email
}

// Ground is the one rule of who may be sent marketing email: a campaign,
// whichever purpose it serves, and a workflow rule's email to the contact
// (KindWorkflow) alike. It is SQL over the contacts alias c, so that a
// campaign's audience of a million contacts is counted in one statement,
// and the same statements decide for a batch of a few recipients: a
// campaign's as its hand-over starts, the outbox's as it is claimed.
//
// A contact is not sent marketing email, for the first reason that applies,
// when they:
//
//   - opted out, by themselves or by a user (ReasonOptedOutContact,
//     ReasonOptedOutUser);
//   - have an address erased before that came back without a new consent
//     to a purpose the email serves (ReasonSuppressedAddress);
//   - have no ground for a purpose the email serves (ReasonNoConsent);
//   - withdrew their consent to, or objected to, any purpose that governs
//     marketing email (ReasonMarketingWithdrawn): a "no" to marketing email
//     holds whatever purpose the email names;
//   - have an opt-in status the campaign opt-in policy does not accept
//     (ReasonNotOptedIn).
//
// What every email needs (an address that is not bounced, a contact not
// erased nor stopped, see Gate) and what campaigns alone check (list
// subscriptions) are tested by their callers, around these.
type Ground struct {
	// Serves are the purposes the email serves; the contact needs a
	// ground for one of them. A campaign serves its one purpose; other
	// marketing email (a workflow rule's) serves the purposes that govern
	// marketing email, as a campaign for E-marketing does.
	Serves []GroundPurpose
	// Marketing are the purposes that govern marketing email.
	Marketing []GroundPurpose
	// Statuses are the opt-in statuses the campaign opt-in policy
	// accepts (settings.CampaignStatuses).
	Statuses []string
	// Now is when a consent's expiry is read against.
	Now time.Time
}

// LoadGround reads through q the ground of email serving purposeID, or,
// with purposeID empty, the purposes that govern marketing email, under
// the opt-in statuses a policy accepts, as of now. A purposeID that names
// no purpose is a not-found error on "purpose". With no purpose governing
// marketing email, email serving them has no ground, and nobody gets it.
func LoadGround(ctx context.Context, q store.Querier, purposeID string, statuses []string, now time.Time) (*Ground, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, legal_basis, marketing_email FROM purposes WHERE marketing_email OR id = $1 ORDER BY id`, purposeID)
	if err != nil {
		return nil, fmt.Errorf("mail: read the purposes of marketing email: %w", err)
	}
	defer rows.Close()
	g := &Ground{Statuses: statuses, Now: now}
	for rows.Next() {
		var p GroundPurpose
		if err := rows.Scan(&p.ID, &p.LegalBasis, &p.Marketing); err != nil {
			return nil, fmt.Errorf("mail: read the purposes of marketing email: %w", err)
		}
		if p.Marketing {
			g.Marketing = append(g.Marketing, p)
		}
		if p.ID == purposeID || (purposeID == "" && p.Marketing) {
			g.Serves = append(g.Serves, p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mail: read the purposes of marketing email: %w", err)
	}
	if purposeID != "" && len(g.Serves) == 0 {
		return nil, errs.NotFound("purpose", "purpose")
	}
	return g, nil
}

// Case is one test of a reason: when the SQL condition Cond holds, the
// contact is held back for Reason.
type Case struct{ Cond, Reason string }

// CaseSQL writes cases as a CASE expression that is the first reason that
// applies, or ” when none does.
func CaseSQL(cases []Case) string {
	var b strings.Builder
	b.WriteString("CASE")
	for _, c := range cases {
		b.WriteString(" WHEN " + c.Cond + " THEN '" + c.Reason + "'")
	}
	b.WriteString(" ELSE '' END")
	return b.String()
}

// alias is the name under which Joins joins the contact's current consent
// to the i-th purpose the ground reads.
func alias(i int) string { return "gp" + fmt.Sprint(i) }

// purposes are the purposes the ground reads a consent of: those it
// serves, then the other marketing ones; each is joined once.
func (g *Ground) purposes() []GroundPurpose {
	out := slices.Clone(g.Serves)
	for _, m := range g.Marketing {
		if !slices.ContainsFunc(out, func(p GroundPurpose) bool { return p.ID == m.ID }) {
			out = append(out, m)
		}
	}
	return out
}

func (g *Ground) aliasOf(id string) string {
	return alias(slices.IndexFunc(g.purposes(), func(p GroundPurpose) bool { return p.ID == id }))
}

// Joins is what the cases need after "FROM contacts c": the contact's
// current consent to each purpose the ground reads, joined by its key
// (contact, purpose), with p adding a parameter and returning its
// placeholder. With lateral, each is a LATERAL subquery instead, for a
// bounded set of contacts on PostgreSQL, whose planner may read the whole
// consent table for a join when it guesses the set large.
func (g *Ground) Joins(p func(any) string, lateral bool) string {
	var b strings.Builder
	for i, pur := range g.purposes() {
		a := alias(i)
		if lateral {
			b.WriteString(` LEFT JOIN LATERAL (SELECT state, expires_at FROM consent_current
				WHERE contact_id = c.id AND purpose_id = ` + p(pur.ID) + ` LIMIT 1) ` + a + ` ON true`)
			continue
		}
		b.WriteString(` LEFT JOIN consent_current ` + a + ` ON ` + a + `.contact_id = c.id AND ` + a + `.purpose_id = ` + p(pur.ID))
	}
	return b.String()
}

// OptOutCases are the ground's first tests, the opt-outs (R2).
func (g *Ground) OptOutCases() []Case {
	return []Case{
		{"c.opt_in_status = '" + contactstate.OptOutContact + "'", ReasonOptedOutContact},
		{"c.opt_in_status = '" + contactstate.OptOutUser + "'", ReasonOptedOutUser},
	}
}

// ConsentCases are the ground's other tests, in order, over the consents
// Joins joined, with p adding parameters.
func (g *Ground) ConsentCases(p func(any) string) []Case {
	// The time is a parameter only where a test reads it: PostgreSQL
	// refuses a parameter that no part of the statement uses.
	var nowAt string
	now := func() string {
		if nowAt == "" {
			nowAt = p(store.Micros(g.Now))
		}
		return nowAt
	}
	var out []Case
	// An erased address came back: it gets no marketing email until the
	// contact consents to a purpose it serves again.
	serves := make([]string, len(g.Serves))
	for i, s := range g.Serves {
		serves[i] = p(s.ID)
	}
	since := "FALSE"
	if len(serves) > 0 {
		since = `EXISTS (SELECT 1 FROM consent_records r WHERE r.contact_id = c.id AND r.purpose_id IN (` + strings.Join(serves, ", ") + `)
			AND r.state = 'granted' AND r.recorded_at >= c.previously_erased_at)`
	}
	out = append(out, Case{`c.previously_erased_at IS NOT NULL AND NOT ` + since, ReasonSuppressedAddress})
	// No ground for any purpose served. Each test is true where there is
	// no ground, and false or NULL where there is one.
	none := []string{"TRUE"}
	if len(g.Serves) > 0 {
		none = none[:0]
	}
	for _, s := range g.Serves {
		a := g.aliasOf(s.ID)
		if s.LegalBasis == basisConsent {
			none = append(none, `(`+a+`.state IS NULL OR `+a+`.state <> '`+consentGranted+`' OR `+a+`.expires_at <= `+now()+`)`)
		} else {
			// Another legal basis: the contact may object, which is
			// recorded as a withdrawal.
			none = append(none, `(`+a+`.state = '`+consentWithdrawn+`')`)
		}
	}
	out = append(out, Case{strings.Join(none, " AND "), ReasonNoConsent})
	// A withdrawal of a marketing purpose, unless it is the one purpose
	// served, whose withdrawal the test before has already found.
	skip := ""
	if len(g.Serves) == 1 {
		skip = g.Serves[0].ID
	}
	if withdrawn := g.withdrawals(skip); withdrawn != "" {
		out = append(out, Case{withdrawn, ReasonMarketingWithdrawn})
	}
	accepted := "TRUE"
	if len(g.Statuses) > 0 {
		q := make([]string, len(g.Statuses))
		for i, s := range g.Statuses {
			q[i] = "'" + strings.ReplaceAll(s, "'", "''") + "'"
		}
		accepted = "c.opt_in_status IN (" + strings.Join(q, ", ") + ")"
	}
	return append(out, Case{"NOT (" + accepted + ")", ReasonNotOptedIn})
}

// withdrawals is the test of ReasonMarketingWithdrawn over the consents
// Joins joined: a withdrawal (or objection) of any purpose that governs
// marketing email but the one whose id is except; "" when no purpose is
// left to test.
func (g *Ground) withdrawals(except string) string {
	var withdrawn []string
	for _, m := range g.Marketing {
		if m.ID != except {
			withdrawn = append(withdrawn, g.aliasOf(m.ID)+`.state = '`+consentWithdrawn+`'`)
		}
	}
	return strings.Join(withdrawn, " OR ")
}

// MarketingWithdrawnTx reads inside tx which of the contacts in ids
// withdrew their consent to, or objected to, a purpose that governs
// marketing email: the "no" to marketing email that the ground keeps
// whatever purpose an email serves (ReasonMarketingWithdrawn), read by
// the same test, for those who ask the contact to subscribe (a double
// opt-in invitation) and must not ask someone who said no. Only those
// who did are in the map; with no purpose governing marketing email, or
// no ids, it is empty.
func MarketingWithdrawnTx(tx *store.Tx, ids []string) (map[string]bool, error) {
	return marketingWithdrawn(context.Background(), tx, tx.Dialect(), ids)
}

// MarketingWithdrawn is MarketingWithdrawnTx on db's read pool, outside a
// write: for a page that says whether an invitation would go out.
func MarketingWithdrawn(ctx context.Context, db *store.DB, ids []string) (map[string]bool, error) {
	return marketingWithdrawn(ctx, db.Read, db.Dialect, ids)
}

func marketingWithdrawn(ctx context.Context, q store.Querier, d store.Dialect, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	g, err := LoadGround(ctx, q, "", nil, time.Time{})
	if err != nil {
		return nil, err
	}
	withdrawn := g.withdrawals("")
	if withdrawn == "" {
		return out, nil
	}
	var args []any
	p := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	joins := g.Joins(p, d == store.Postgres)
	in, inArgs := store.Among(d, len(args)+1, ids)
	rows, err := q.QueryContext(ctx, `SELECT c.id FROM contacts c`+joins+` WHERE c.id `+in+` AND (`+withdrawn+`)`, append(args, inArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("mail: read withdrawals of marketing email: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("mail: read withdrawals of marketing email: %w", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}

// reasons reads inside tx, for each of the contacts in ids, the first
// reason the ground gives for not sending them marketing email ("" for
// none). A contact that does not exist is absent.
func (g *Ground) reasons(tx *store.Tx, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var args []any
	p := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	joins := g.Joins(p, tx.Dialect() == store.Postgres)
	reason := CaseSQL(append(g.OptOutCases(), g.ConsentCases(p)...))
	in, inArgs := store.InList(tx.Dialect(), len(args)+1, ids)
	rows, err := tx.Query(`SELECT c.id, `+reason+` FROM contacts c`+joins+` WHERE c.id IN (`+in+`)`, append(args, inArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("mail: read the ground of marketing email: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, r string
		if err := rows.Scan(&id, &r); err != nil {
			return nil, fmt.Errorf("mail: read the ground of marketing email: %w", err)
		}
		out[id] = r
	}
	return out, rows.Err()
}
