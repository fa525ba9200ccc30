// Package optin runs double opt-in (SPEC R3, R18): the invitation email with
// its confirmation link, the confirmation itself, reminders after N days and
// expiry after M days.
//
// A confirmation sets the opt-in status to double_opt_in and records an
// E-marketing consent with its evidence (time, IP, user agent, the link's
// token id and the consent text version and language the email quoted), with its ledger
// events, in one transaction. Following the link only shows a page with a
// button; mail scanners open links, and must not confirm anything.
package optin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/holds"
	"github.com/consentry/consentry/internal/i18n"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/settings"
	"github.com/consentry/consentry/internal/store"
)

// EMarketing is the purpose a double opt-in confirms: the built-in
// "E-marketing" purpose.
const EMarketing = "01930000-0000-7000-8000-000000000002"

// SourceDoubleOptIn is the built-in "Double opt-in email" source, referred
// to by id so that renaming it changes nothing here.
const SourceDoubleOptIn = consent.SourceDoubleOptInEmail

// Invitation statuses: an invitation is invited, perhaps reminded, and
// ends confirmed, expired (its time ran out) or superseded (a newer
// invitation, or a confirmation by other means, replaced it).
const (
	StatusInvited    = "invited"
	StatusReminded   = "reminded"
	StatusExpired    = "expired"
	StatusSuperseded = "superseded"
	StatusConfirmed  = "confirmed"
)

// Triggers: what asked for the invitation. Public triggers (webforms) are
// limited to one email per address per day, so a form cannot be used to
// flood someone's inbox.
const (
	TriggerUser    = "user"
	TriggerAPI     = "api"
	TriggerWebform = "webform"
	// TriggerWorkflow is a workflow rule's action: automatic, so limited
	// as a public trigger is, lest a rule set off by every change flood
	// the contact.
	TriggerWorkflow = "workflow"
	// TriggerRepermission is a re-permission run (package repermission),
	// started by a user or an API call: not limited.
	TriggerRepermission = "repermission"
)

// Reasons a contact is not invited.
const (
	SkipNotFound          = "contact_not_found"
	SkipOptedOut          = "opted_out"
	SkipAlreadyConfirmed  = "already_confirmed"
	SkipBounced           = "bounced"
	SkipBlocklisted       = "blocklisted"
	SkipProcessingStopped = "processing_stopped"
	SkipErased            = "erased"
	SkipErasureRequested  = "erasure_requested" // they asked to be erased: nobody asks them to subscribe meanwhile
	// SkipHeld: a legal hold is on the contact. Their data is frozen for
	// the hold's duty, so automation sends them nothing, as campaigns and
	// workflow email skip them (mail.ReasonHeld).
	SkipHeld = mail.ReasonHeld
	// SkipMarketingWithdrawn: the contact withdrew their consent to (or
	// objected to) a purpose that governs marketing email, the "no" that
	// keeps campaigns and workflow email from them (mail.Ground). An
	// invitation asks them to subscribe, which is itself marketing email;
	// only the contact's own webform post asking for it reaches them.
	SkipMarketingWithdrawn = mail.ReasonMarketingWithdrawn
	SkipRecentlyInvited    = "invited_in_the_last_24_hours"
)

// Service sends invitations and confirms them.
type Service struct {
	DB      *store.DB
	Consent *consent.Service
	Log     *slog.Logger
	Now     func() time.Time
	// BaseURL is where the confirmation links point.
	BaseURL string
	// Sender names the sender in emails.
	Sender string
	// Mail renders the invitation email.
	Mail *mail.Templates
	// AfterConfirm, when set, runs inside the transaction of each
	// confirmation with the consent record it wrote and the contact's
	// language, for what the consent causes (a receipt email,
	// receipts.Service.EmailTx). An error aborts the confirmation.
	AfterConfirm func(tx *store.Tx, r *consent.Record, lang string, now time.Time) error

	// AfterBatch, when not nil, runs inside the transaction of each batch
	// of a bulk run (StartBulk), with the run's id and each contact of the
	// batch with why it was skipped ("" when invited), and done when the
	// batch was the run's last: whoever keeps something about the run's
	// contacts (repermission.BatchTx) moves with the run exactly.
	AfterBatch func(tx *store.Tx, run string, outcomes map[string]string, done bool, now time.Time) error

	// AfterFailed, when not nil, runs inside the transaction that marks a
	// bulk run failed, with the run's id: the contacts it had not reached
	// will not be invited by it (repermission.FailedTx).
	AfterFailed func(tx *store.Tx, run string, now time.Time) error

	batchDone func(contacts int, took time.Duration) // a bulk run's batch committed, for benchmarks
}

func (s *Service) now() time.Time { return store.Now(s.Now) }

// Result says how many contacts were invited and why the others were not.
type Result struct {
	Invited int            `json:"invited"`
	Skipped map[string]int `json:"skipped" doc:"contacts not invited, by reason"`

	outcomes map[string]string // each contact: why it was skipped, "" when invited
}

// Invite sends the double opt-in email to each contact, up to MaxInline
// contacts to a transaction, and reports who was skipped and why. A
// contact named twice gets one email.
func (s *Service) Invite(ctx context.Context, contactIDs []string, trigger string) (*Result, error) {
	res := &Result{Skipped: map[string]int{}}
	ids := distinct(contactIDs)
	for start := 0; start < len(ids); start += MaxInline {
		part, err := s.InviteThen(ctx, ids[start:min(start+MaxInline, len(ids))], trigger, nil)
		if err != nil {
			return nil, err
		}
		res.add(part)
	}
	return res, nil
}

// InviteThen invites up to MaxInline contacts in one transaction, as
// Invite does, and runs then (when not nil) inside that transaction with
// the result, so that what the caller records about the request (its
// idempotency key, say) commits with the invitations or not at all.
func (s *Service) InviteThen(ctx context.Context, contactIDs []string, trigger string, then func(*store.Tx, *Result) error) (*Result, error) {
	ids := distinct(contactIDs)
	if len(ids) > MaxInline {
		return nil, fmt.Errorf("optin: %d contacts in one transaction; at most %d", len(ids), MaxInline)
	}
	var res *Result
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		var err error
		if res, err = s.inviteAll(tx, ids, trigger, s.now(), s.newBodies()); err != nil || then == nil {
			return err
		}
		return then(tx, res)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (r *Result) add(o *Result) {
	r.Invited += o.Invited
	for k, n := range o.Skipped {
		r.Skipped[k] += n
	}
}

// distinct returns ids without repeats, in the order first named.
func distinct(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

type recipient struct {
	id, email, name, lang string
	Standing
}

// Standing is everything about a contact that decides whether a double
// opt-in invitation may go out to them (invitee.skip, WhyNot).
type Standing struct {
	OptIn, Deliverability string
	Stopped               bool // processing stopped (R9)
	Erased                bool
	ErasureRequested      bool // erasure_requested_at is set
	Held                  bool // a legal hold is active on the contact
	// MarketingWithdrawn: the contact withdrew their consent to, or
	// objected to, a purpose that governs marketing email
	// (mail.MarketingWithdrawnTx).
	MarketingWithdrawn bool
}

func loadRecipient(tx *store.Tx, id string) (*recipient, error) {
	r := &recipient{id: id}
	err := tx.QueryRow(`SELECT email, first_name, language, opt_in_status, deliverability, processing_stopped_at IS NOT NULL,
		erased_at IS NOT NULL, erasure_requested_at IS NOT NULL FROM contacts WHERE id = $1`, id).
		Scan(&r.email, &r.name, &r.lang, &r.OptIn, &r.Deliverability, &r.Stopped, &r.Erased, &r.ErasureRequested)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("optin: read contact: %w", err)
	}
	r.lang = i18n.Match(r.lang, "")
	return r, nil
}

// invitee is what an invitation needs to know about a contact: the
// recipient, how many invitations went out in the last day, whether one is
// open, and the current E-marketing consent text the email shows, in the
// contact's language.
type invitee struct {
	*recipient
	recent, open int
	text         consent.ShownText
}

// textQuery reads the current E-marketing consent text with its
// translation into each supported language (a column each), so that the
// text in each contact's language, which only i18n.Match can tell from
// the language they have, is there from one row. $1 is the purpose.
var textQuery = func() string {
	var cols, joins strings.Builder
	for i, l := range i18n.Languages {
		fmt.Fprintf(&cols, ", tr%d.text", i)
		fmt.Fprintf(&joins, "\n\t\tLEFT JOIN purpose_text_translations tr%[1]d ON tr%[1]d.purpose_id = t.purpose_id AND tr%[1]d.version = t.version AND tr%[1]d.language = '%[2]s'", i, l)
	}
	return `SELECT t.text, t.version, t.language` + cols.String() + ` FROM purposes p
		JOIN purpose_texts t ON t.purpose_id = p.id AND t.version = p.current_version` + joins.String() + `
		WHERE p.id = $1`
}()

// inviteeQuery reads contacts and their invitations: the invitations
// of the last day only when recent (as only webforms need them, see
// invitee.skip), each contact's open ones always. With recent, $1 is the
// start of the last day; the contacts' ids follow (from $2, or from $1
// without), in the condition put where the query ends (store.Among). Each contact's invitations are found through
// the indexes by contact: the open ones through the partial index of open
// invitations, so that no contact's look-up reads other contacts'
// invitations. The consent text is read once (textQuery), not with every
// contact: a batch's rows would carry it a few thousand times.
func inviteeQuery(recent bool) string {
	last := `0`
	if recent {
		last = `(SELECT count(*) FROM optin_invitations i WHERE i.contact_id = c.id AND (i.invited_at > $1 OR i.reminded_at > $1))`
	}
	return `SELECT c.id, c.email, c.first_name, c.language, c.opt_in_status, c.deliverability,
		c.processing_stopped_at IS NOT NULL, c.erased_at IS NOT NULL, c.erasure_requested_at IS NOT NULL, ` + last + `,
		(SELECT count(*) FROM optin_invitations i WHERE i.contact_id = c.id AND i.status IN ('invited', 'reminded'))
		FROM contacts c WHERE c.id `
}

// jitFreeContacts is how many contacts loadInvitees reads without turning
// off PostgreSQL's JIT compilation: well under the count whose estimate
// reaches jit_above_cost.
const jitFreeContacts = 100

// loadInvitees reads the contacts in ids in one query, by id, with their
// invitations of the last day before now when recent, the consent text in
// another, which of them a legal hold keeps at now in a third (the
// look-up workflow email's gate makes, holds.FirstActiveTx), and which
// said no to marketing email in a fourth (mail.MarketingWithdrawnTx,
// the ground's own test); a contact
// that does not exist is absent from the map. A few queries for the batch
// rather than some per contact: inside the writer's transaction every
// statement holds up the writes waiting behind it.
func loadInvitees(tx *store.Tx, ids []string, now time.Time, recent bool) (map[string]*invitee, error) {
	since := now.Add(-24 * time.Hour)
	out := make(map[string]*invitee, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	if tx.Dialect() == store.Postgres && len(ids) > jitFreeContacts {
		// The planner's estimate of the invitation look-ups for a
		// batch, from statistics that lag behind a table a bulk run
		// fills fast, crosses the threshold of JIT compilation, which
		// then costs more than the query: tens of milliseconds of the
		// writer's time per batch. For a few contacts (a webform post)
		// the estimate stays low, and the SET would cost a round trip.
		if err := tx.ExecLater(store.Prefix("optin: read contacts"), `SET LOCAL jit = off`); err != nil {
			return nil, err
		}
	}
	// With the statements queued before it, in one round trip.
	t := consent.PurposeText{Translations: map[string]string{}}
	trs := make([]sql.NullString, len(i18n.Languages))
	dest := []any{&t.Text, &t.Version, &t.Language}
	for i := range trs {
		dest = append(dest, &trs[i])
	}
	if err := tx.Row(textQuery, EMarketing).Scan(dest...); err != nil {
		// %v: a missing built-in purpose is a fault, not a not-found answer.
		return nil, fmt.Errorf("optin: read the E-marketing consent text: %v", err)
	}
	for i, l := range i18n.Languages {
		if trs[i].Valid {
			t.Translations[l] = trs[i].String
		}
	}
	var before []any
	if recent {
		before = []any{store.Micros(since)}
	}
	cond, args := store.Among(tx.Dialect(), len(before)+1, ids)
	rows, err := tx.Query(inviteeQuery(recent)+cond, append(before, args...)...)
	if err != nil {
		return nil, fmt.Errorf("optin: read contacts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r := &recipient{}
		inv := &invitee{recipient: r}
		if err := rows.Scan(&r.id, &r.email, &r.name, &r.lang, &r.OptIn, &r.Deliverability, &r.Stopped, &r.Erased, &r.ErasureRequested, &inv.recent, &inv.open); err != nil {
			return nil, fmt.Errorf("optin: read contacts: %w", err)
		}
		r.lang = i18n.Match(r.lang, "")
		inv.text = t.In(r.lang)
		out[r.id] = inv
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("optin: read contacts: %w", err)
	}
	found := make([]string, 0, len(out))
	for id := range out {
		found = append(found, id)
	}
	held, err := holds.FirstActiveTx(tx, found, now)
	if err != nil {
		return nil, err
	}
	for id := range held {
		out[id].Held = true
	}
	withdrawn, err := mail.MarketingWithdrawnTx(tx, found)
	if err != nil {
		return nil, err
	}
	for id := range withdrawn {
		out[id].MarketingWithdrawn = true
	}
	return out, nil
}

// InviteTx invites one contact inside tx: it ends any open invitation,
// opens a new one and queues the email with its link. It returns the reason
// when the contact is not invited.
func (s *Service) InviteTx(tx *store.Tx, contactID, trigger string, now time.Time) (string, error) {
	res, err := s.inviteAll(tx, []string{contactID}, trigger, now, s.newBodies())
	if err != nil {
		return "", err
	}
	for reason := range res.Skipped {
		return reason, nil
	}
	return "", nil
}

// inviteAll invites the contacts in ids (no repeats) inside tx, set-based:
// one query reads them all, each is checked against the one rule of who
// may be invited (invitee.skip), and the invitations and emails of those
// who may are written a statement or a few for all, the emails copied
// from b's renderings.
func (s *Service) inviteAll(tx *store.Tx, ids []string, trigger string, now time.Time, b *bodies) (*Result, error) {
	found, err := loadInvitees(tx, ids, now, limited(trigger))
	if err != nil {
		return nil, err
	}
	res := &Result{Skipped: map[string]int{}, outcomes: make(map[string]string, len(ids))}
	todo := make([]*invitee, 0, len(found))
	for _, id := range ids {
		r := found[id]
		skip := SkipNotFound
		if r != nil {
			skip = r.skip(trigger)
		}
		res.outcomes[id] = skip
		if skip != "" {
			res.Skipped[skip]++
			continue
		}
		todo = append(todo, r)
	}
	res.Invited = len(todo)
	return res, s.open(tx, todo, trigger, now, b)
}

// NewContact is a contact created earlier in the same transaction, as its
// creator wrote it.
type NewContact struct {
	ID, Email, FirstName, Language string
	OptIn                          string // the opt-in status it has now
}

// InviteCreatedTx is InviteTx for a contact created earlier in tx. What
// InviteTx reads about the contact is known here (no invitations yet, not
// stopped, not erased, deliverable), so only the E-marketing consent text
// in the contact's language is read, once per transaction and language:
// on PostgreSQL that saves a round trip per webform submission in the
// group commit.
func (s *Service) InviteCreatedTx(tx *store.Tx, c NewContact, trigger string, now time.Time) (string, error) {
	lang := i18n.Match(c.Language, "")
	t, err := consent.CurrentTextTx(tx, EMarketing, lang)
	if err != nil {
		// %v: a missing built-in purpose is a fault, not a not-found answer.
		return "", fmt.Errorf("optin: read the E-marketing consent text: %v", err)
	}
	r := &invitee{recipient: &recipient{id: c.ID, email: c.Email, name: c.FirstName, lang: lang,
		Standing: Standing{OptIn: c.OptIn, Deliverability: contactstate.DeliverabilityOK}}, text: t}
	if skip := r.skip(trigger); skip != "" {
		return skip, nil
	}
	return "", s.open(tx, []*invitee{r}, trigger, now, s.newBodies())
}

// WhyNot returns why a user asking now would not get a double opt-in
// email sent to a contact of standing st (one of the Skip reasons), or ""
// when one would go out: the contact's page offers the button only then,
// and says why not otherwise. It reads nothing (ReadStanding reads st);
// the invitation itself checks again.
func WhyNot(st Standing) string {
	r := &invitee{recipient: &recipient{Standing: st}}
	return r.skip(TriggerUser)
}

// ReadStanding reads the standing of the contact contactID as of now, as
// an invitation reads it, from the read pool, for a page that says
// whether one would go out (WhyNot); a contact that does not exist is an
// errs not-found error on "contact".
func (s *Service) ReadStanding(ctx context.Context, contactID string) (Standing, error) {
	var st Standing
	err := s.DB.Read.QueryRowContext(ctx, `SELECT opt_in_status, deliverability, processing_stopped_at IS NOT NULL, erased_at IS NOT NULL,
		erasure_requested_at IS NOT NULL FROM contacts WHERE id = $1`, contactID).
		Scan(&st.OptIn, &st.Deliverability, &st.Stopped, &st.Erased, &st.ErasureRequested)
	if errors.Is(err, sql.ErrNoRows) {
		return st, errs.NotFound("contact", "contact")
	}
	if err != nil {
		return st, fmt.Errorf("optin: read contact: %w", err)
	}
	hs, err := holds.List(ctx, s.DB.Read, contactID, s.now())
	if err != nil {
		return st, err
	}
	st.Held = slices.ContainsFunc(hs, func(h *holds.Hold) bool { return h.Active })
	withdrawn, err := mail.MarketingWithdrawn(ctx, s.DB, []string{contactID})
	if err != nil {
		return st, err
	}
	st.MarketingWithdrawn = withdrawn[contactID]
	return st, nil
}

// limited reports whether invitations by trigger are limited to one per
// address per day.
func limited(trigger string) bool { return trigger == TriggerWebform || trigger == TriggerWorkflow }

// skip returns why the contact may not be invited now by trigger, or "".
func (r *invitee) skip(trigger string) string {
	switch {
	case r.Erased:
		return SkipErased
	case r.Stopped:
		return SkipProcessingStopped
	case r.ErasureRequested:
		return SkipErasureRequested
	case r.Held:
		return SkipHeld
	case contactstate.OptedOut(r.OptIn):
		return SkipOptedOut
	case r.OptIn == contactstate.DoubleOptIn:
		return SkipAlreadyConfirmed
	case r.MarketingWithdrawn && trigger != TriggerWebform:
		// The contact's own webform post asked for the email just now:
		// that answers their earlier no.
		return SkipMarketingWithdrawn
	case r.Deliverability == contactstate.DeliverabilityBounced:
		return SkipBounced
	case r.Deliverability == contactstate.DeliverabilityBlocklisted:
		return SkipBlocklisted
	case limited(trigger) && r.recent > 0:
		return SkipRecentlyInvited
	}
	return ""
}

// invitationColumns are the columns open writes, and invitationTypes
// their types.
const invitationColumns = `INSERT INTO optin_invitations (id, contact_id, purpose_id, text_version, text_language, status, trigger,
	invited_at, expires_at)`

var invitationTypes = []string{"text", "text", "text", "integer", "text", "text", "text", "bigint", "bigint"}

// open invites each of invitees inside tx: it ends their open
// invitations, opens a new one each and queues its email with its link,
// in a statement or a few for all (store.Tx.InsertRows). The emails come
// from b, which renders each distinct one once.
func (s *Service) open(tx *store.Tx, invitees []*invitee, trigger string, now time.Time, b *bodies) error {
	if len(invitees) == 0 {
		return nil
	}
	st, err := settings.InTx(tx)
	if err != nil {
		return err
	}
	var reopen []string
	for _, r := range invitees {
		if r.open > 0 {
			reopen = append(reopen, r.id)
		}
	}
	if err := endOpen(tx, reopen, now); err != nil {
		return err
	}
	expires := now.Add(time.Duration(st.DoubleOptInExpiryDays) * 24 * time.Hour)
	msgs := make([]mail.Message, len(invitees))
	rows := make([][]any, len(invitees))
	for i, r := range invitees {
		inv := uuid.Must(uuid.NewV7()).String()
		// The invitation keeps the version and language its email
		// quotes: the reminder quotes the same, and the confirmation
		// records them.
		rows[i] = []any{inv, r.id, EMarketing, r.text.Version, r.text.Language, StatusInvited, trigger, store.Micros(now), store.Micros(expires)}
		if msgs[i], err = b.linkMessage(r.recipient, st.Controller(s.Sender), inv, trigger, r.text.Text, expires, false); err != nil {
			return err
		}
	}
	if err := tx.InsertRows(store.Prefix("optin: open invitations"), invitationColumns, invitationTypes, rows); err != nil {
		return err
	}
	_, err = mail.EnqueueMany(tx, msgs, now)
	return err
}

// endOpen ends the open invitations of the contacts in contactIDs inside
// tx as superseded, as new ones replace them: their links stop working and
// their emails not yet sent are not sent.
func endOpen(tx *store.Tx, contactIDs []string, now time.Time) error {
	if len(contactIDs) == 0 {
		return nil
	}
	ph, args := store.In(1, contactIDs)
	open, err := store.QueryAll(context.Background(), tx, func(row store.Scanner) (string, error) {
		var id string
		return id, row.Scan(&id)
	}, `SELECT id FROM optin_invitations WHERE contact_id IN (`+ph+`) AND status IN ('invited', 'reminded')`, args...)
	if err != nil {
		return fmt.Errorf("optin: read open invitations: %w", err)
	}
	return closeInvitations(tx, open, StatusSuperseded, now)
}

// SupersedeTx ends the contact's open invitations inside tx as
// superseded, when the contact confirmed email marketing by other means
// (the link of a webform post about their address): their links stop
// working and their emails not yet sent are not sent.
func SupersedeTx(tx *store.Tx, contactID string, now time.Time) error {
	return endOpen(tx, []string{contactID}, now)
}

// EndForErasureTx ends, inside tx, the open invitations of the contacts in
// ids, whose personal data is erased, as superseded. Their links and
// emails go with the erasure (auth.DeleteContactTokensTx,
// mail.EraseContactsTx); the invitations themselves hold nothing personal.
func EndForErasureTx(tx *store.Tx, ids []string, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	ph, args := store.In(2, ids)
	return tx.ExecLater(store.Prefix("optin: end invitations"), `UPDATE optin_invitations SET status = '`+StatusSuperseded+`', ended_at = $1
		WHERE status IN ('`+StatusInvited+`', '`+StatusReminded+`') AND contact_id IN (`+ph+`)`, append([]any{store.Micros(now)}, args...)...)
}

// closeInvitations ends the invitations in ids with status, uses up their
// links and cancels their emails not yet sent, a statement each for all.
func closeInvitations(tx *store.Tx, ids []string, status string, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	ph, args := store.In(3, ids)
	if err := tx.ExecLater(store.Prefix("optin: end invitations"), `UPDATE optin_invitations SET status = $1, ended_at = $2 WHERE id IN (`+ph+`)`,
		append([]any{status, store.Micros(now)}, args...)...); err != nil {
		return err
	}
	if err := auth.EndContactTokensManyTx(tx, ids, auth.PurposeDoubleOptIn, now); err != nil {
		return err
	}
	return mail.CancelMany(tx, ids, "invitation_"+status)
}

// Sweep sends the reminders that are due and expires the invitations whose
// time is up. It runs as a periodic job, and returns how many invitations
// it changed.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	now := s.now()
	total := 0
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		due, err := store.QueryAll(ctx, tx, func(row store.Scanner) (string, error) {
			var id string
			return id, row.Scan(&id)
		}, `SELECT id FROM optin_invitations WHERE status IN ('invited', 'reminded') AND expires_at <= $1 LIMIT 1000`, store.Micros(now))
		if err != nil {
			return fmt.Errorf("optin: find expired invitations: %w", err)
		}
		total = len(due)
		return closeInvitations(tx, due, StatusExpired, now)
	})
	if err != nil {
		return 0, err
	}
	reminders := s.newBodies()
	for {
		var done int
		err := s.DB.Write(ctx, func(tx *store.Tx) error {
			st, err := settings.InTx(tx)
			if err != nil {
				return err
			}
			due := store.Micros(now.Add(-time.Duration(st.DoubleOptInReminderDays) * 24 * time.Hour))
			type inv struct {
				id, contact, trigger, text string
				expires                    int64
			}
			invs, err := store.QueryAll(ctx, tx, func(row store.Scanner) (inv, error) {
				var i inv
				return i, row.Scan(&i.id, &i.contact, &i.trigger, &i.text, &i.expires)
			}, `SELECT i.id, i.contact_id, i.trigger, COALESCE(tr.text, t.text), i.expires_at FROM optin_invitations i
				JOIN purpose_texts t ON t.purpose_id = i.purpose_id AND t.version = i.text_version
				LEFT JOIN purpose_text_translations tr ON tr.purpose_id = i.purpose_id AND tr.version = i.text_version
					AND tr.language = i.text_language
				WHERE i.status = 'invited' AND i.invited_at <= $1 AND i.expires_at > $2 ORDER BY i.invited_at LIMIT 100`,
				due, store.Micros(now))
			if err != nil {
				return fmt.Errorf("optin: find reminders due: %w", err)
			}
			done = len(invs)
			for _, i := range invs {
				if _, err := tx.Exec(`UPDATE optin_invitations SET status = 'reminded', reminded_at = $2 WHERE id = $1`, i.id, store.Micros(now)); err != nil {
					return fmt.Errorf("optin: mark reminded: %w", err)
				}
				r, err := loadRecipient(tx, i.contact)
				if err != nil {
					return err
				}
				if r == nil {
					continue // the contact is gone with their invitation
				}
				m, err := reminders.linkMessage(r, st.Controller(s.Sender), i.id, i.trigger, i.text, store.FromMicros(i.expires), true)
				if err != nil {
					return err
				}
				if _, err := mail.Enqueue(tx, m, now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += done
		if done < 100 {
			return total, nil
		}
	}
}

// Pending checks, without using it, that secret is a valid, unused double
// opt-in link, and returns the contact's language for the page. A link
// that cannot confirm anything (unknown, used or expired, or its
// invitation ended) is ErrNotConfirmed; any other error is the database's.
func (s *Service) Pending(ctx context.Context, secret string) (string, error) {
	now := s.now()
	t, err := auth.FindContactToken(dbQuerier{s.DB.Read, ctx}, auth.PurposeDoubleOptIn, secret, now)
	if errors.Is(err, auth.ErrNoToken) {
		return "", ErrNotConfirmed
	}
	if err != nil {
		return "", fmt.Errorf("optin: pending link: %w", err)
	}
	var lang string
	err = s.DB.Read.QueryRowContext(ctx, `SELECT c.language FROM contacts c JOIN optin_invitations i ON i.contact_id = c.id
		WHERE i.id = $1 AND i.status IN ('invited', 'reminded') AND i.expires_at > $2`, t.SubjectID, store.Micros(now)).Scan(&lang)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotConfirmed // the invitation ended: the link confirms nothing
	}
	if err != nil {
		return "", fmt.Errorf("optin: pending link: %w", err)
	}
	return lang, nil
}

type dbQuerier struct {
	db  *sql.DB
	ctx context.Context
}

func (q dbQuerier) QueryRow(query string, args ...any) *sql.Row {
	return q.db.QueryRowContext(q.ctx, query, args...)
}

// Evidence is what the confirming request showed.
type Evidence struct {
	IP        string
	UserAgent string
}

// ErrNotConfirmed is returned when a link cannot confirm anything: unknown,
// used or expired, its invitation ended, or the contact opted out since.
var ErrNotConfirmed = errors.New("optin: the link does not confirm anything")

// Confirmed is whose opt-in a link confirmed: the page that says so is in
// their language and leads to their preferences.
type Confirmed struct {
	ContactID    string
	InvitationID string
	Language     string
}

// ConfirmedInvitation returns the contact's invitation invitationID once
// its link confirmed it, for the page that says so after the confirmation
// redirected to it; one that is not the contact's, or not confirmed, is
// ErrNotConfirmed.
func (s *Service) ConfirmedInvitation(ctx context.Context, contactID, invitationID string) (*Confirmed, error) {
	done := &Confirmed{ContactID: contactID, InvitationID: invitationID}
	err := s.DB.Read.QueryRowContext(ctx, `SELECT c.language FROM optin_invitations i JOIN contacts c ON c.id = i.contact_id
		WHERE i.id = $1 AND i.contact_id = $2 AND i.status = $3`, invitationID, contactID, StatusConfirmed).Scan(&done.Language)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotConfirmed
	}
	if err != nil {
		return nil, fmt.Errorf("optin: read confirmed invitation: %w", err)
	}
	return done, nil
}

// Confirm uses the link's token: the contact's opt-in status becomes
// double_opt_in and an E-marketing consent is recorded with the evidence and
// the consent text version the email showed, with the ledger events, the
// invitation marked confirmed and the token used, all in one transaction.
// It returns whose opt-in it confirmed, or ErrNotConfirmed.
func (s *Service) Confirm(ctx context.Context, secret string, ev Evidence) (*Confirmed, error) {
	now := s.now()
	t, err := auth.FindContactToken(dbQuerier{s.DB.Read, ctx}, auth.PurposeDoubleOptIn, secret, now)
	if err != nil {
		return nil, ErrNotConfirmed
	}
	// The email quoted the consent text in the version and language the
	// invitation keeps; one made before it kept a language quoted the
	// version's own text.
	var version int
	var shownIn string
	if err := s.DB.Read.QueryRowContext(ctx, `SELECT i.text_version, COALESCE(NULLIF(i.text_language, ''), t.language)
		FROM optin_invitations i JOIN purpose_texts t ON t.purpose_id = i.purpose_id AND t.version = i.text_version
		WHERE i.id = $1`, t.SubjectID).Scan(&version, &shownIn); err != nil {
		return nil, ErrNotConfirmed
	}
	actor := consent.Actor{Kind: consent.ActorContact}
	evidence := consent.Evidence{Method: consent.MethodDoubleOptInLink, IP: ev.IP, UserAgent: ev.UserAgent, TokenID: t.ID}
	prepared, err := s.Consent.Prepare(ctx, consent.RecordInput{Purpose: EMarketing, State: consent.StateGranted,
		Source: SourceDoubleOptIn, TextVersion: version, TextLanguage: shownIn, Actor: actor, Evidence: evidence})
	if err != nil {
		return nil, err
	}
	done := &Confirmed{ContactID: t.ContactID, InvitationID: t.SubjectID}
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		tok, err := auth.FindContactToken(tx, auth.PurposeDoubleOptIn, secret, now) // again, inside the write
		if err != nil {
			return ErrNotConfirmed
		}
		var open int
		if err := tx.QueryRow(`SELECT count(*) FROM optin_invitations WHERE id = $1 AND status IN ('invited', 'reminded') AND expires_at > $2`,
			tok.SubjectID, store.Micros(now)).Scan(&open); err != nil {
			return fmt.Errorf("optin: read invitation: %w", err)
		}
		if open != 1 {
			return ErrNotConfirmed
		}
		r, err := loadRecipient(tx, tok.ContactID)
		if err != nil {
			return err
		}
		if r == nil || r.Erased || r.Stopped {
			return ErrNotConfirmed // nothing is processed for this contact any more
		}
		if err := closeInvitations(tx, []string{tok.SubjectID}, StatusConfirmed, now); err != nil {
			return err
		}
		k, err := contactstate.Load(tx, tok.ContactID)
		if err != nil {
			return ErrNotConfirmed
		}
		if _, err := s.Consent.ApplyOptIn(tx, k, consent.OptInInput{Status: contactstate.DoubleOptIn, Channel: consent.ChannelConfirmation,
			Actor: actor, Evidence: evidence}, now); err != nil {
			if errs.Is(err, errs.KindRefused) {
				return ErrNotConfirmed // opted out since the email was sent
			}
			return err
		}
		rec, err := prepared.Apply(tx, k, now)
		if err != nil {
			return err
		}
		if err := tx.QueryRow(`SELECT language FROM contacts WHERE id = $1`, k.ID).Scan(&done.Language); err != nil {
			return err
		}
		if s.AfterConfirm != nil {
			return s.AfterConfirm(tx, rec, done.Language, now)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return done, nil
}

// Invitation is a double opt-in invitation's state, for the API.
type Invitation struct {
	ID           string     `json:"id"`
	Status       string     `json:"status" enum:"invited,reminded,expired,superseded,confirmed"`
	Trigger      string     `json:"trigger"`
	TextVersion  int        `json:"text_version"`
	TextLanguage string     `json:"text_language,omitempty" doc:"the language of the consent text the email quoted"`
	InvitedAt    time.Time  `json:"invited_at"`
	RemindedAt   *time.Time `json:"reminded_at,omitempty"`
	ExpiresAt    time.Time  `json:"expires_at"`
	EndedAt      *time.Time `json:"ended_at,omitempty"`
}

// Invitations lists a contact's invitations, newest first; an empty list
// when there are none.
func (s *Service) Invitations(ctx context.Context, contactID string) ([]Invitation, error) {
	return store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (Invitation, error) {
		var i Invitation
		var invited, expires int64
		var reminded, ended sql.NullInt64
		err := row.Scan(&i.ID, &i.Status, &i.Trigger, &i.TextVersion, &i.TextLanguage, &invited, &reminded, &expires, &ended)
		i.InvitedAt, i.ExpiresAt = store.FromMicros(invited), store.FromMicros(expires)
		if reminded.Valid {
			t := store.FromMicros(reminded.Int64)
			i.RemindedAt = &t
		}
		if ended.Valid {
			t := store.FromMicros(ended.Int64)
			i.EndedAt = &t
		}
		return i, err
	}, `SELECT id, status, trigger, text_version, text_language, invited_at, reminded_at, expires_at, ended_at FROM optin_invitations
		WHERE contact_id = $1 ORDER BY invited_at DESC`, contactID)
}

// OpenCounts returns how many invitations wait for confirmation, by status
// (invited, reminded); a status with none is absent.
func (s *Service) OpenCounts(ctx context.Context) (map[string]int64, error) {
	out, err := store.CountBy(ctx, s.DB.Read, `SELECT status, count(*) FROM optin_invitations WHERE status IN ('invited', 'reminded') GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("optin: count open invitations: %w", err)
	}
	return out, nil
}
