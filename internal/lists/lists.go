// Package lists holds email lists and each contact's subscription to them.
//
// A subscription says only whether the contact wants a list's email
// (subscribed or unsubscribed) and where that came from. Whether email may
// be sent at all is the opt-in status's business, checked by the send gate:
// unsubscribing from every list does not opt a contact out, and an opt-out
// stops email from every list.
package lists

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/store"
)

// Subscription statuses.
const (
	Subscribed   = "subscribed"
	Unsubscribed = "unsubscribed"
)

// Where a subscription change came from.
const (
	SourceAPI         = "api"
	SourceWebform     = "webform"
	SourcePreferences = "preferences_page"
	// SourceCampaign: the unsubscribe link of a campaign sent to the list.
	SourceCampaign = "campaign"
)

// List is an email list.
type List struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description" doc:"shown to contacts on the preferences page"`
	Public      bool      `json:"public" doc:"whether contacts see the list on their preferences page and webforms can offer it"`
	Purpose     string    `json:"purpose" doc:"the purpose the list is bound to, by name: unsubscribing from the list withdraws the contact's consent to it; empty: none"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`

	purposeID string
}

// Input creates or changes a list; nil fields stay as they are (on create,
// name is required and public defaults to true).
type Input struct {
	Name        *string `json:"name" required:"create"`
	Description *string `json:"description"`
	Public      *bool   `json:"public"`
	Purpose     *string `json:"purpose" doc:"a purpose's name or id to bind the list to; empty unbinds it"`

	purposeID, purposeName string // Purpose resolved, by validate
}

// Subscription is a contact's choice for one list.
type Subscription struct {
	ListID    string    `json:"list_id"`
	List      string    `json:"list"`
	State     string    `json:"state" enum:"subscribed,unsubscribed" doc:"the same word as a consent's state"`
	Source    string    `json:"source"`
	ChangedAt time.Time `json:"changed_at"`
}

// Service reads and changes lists and subscriptions.
type Service struct {
	DB  *store.DB
	Now func() time.Time
	// Purpose resolves a purpose's name or id to its id and name; it
	// returns a not-found error for none. Without it lists cannot be
	// bound to purposes.
	Purpose func(ctx context.Context, nameOrID string) (id, name string, err error)
}

func (s *Service) now() time.Time { return store.Now(s.Now) }

func (s *Service) validate(ctx context.Context, in *Input, create bool) error {
	if err := in.validate(create); err != nil {
		return err
	}
	if in.Purpose == nil {
		return nil
	}
	want := strings.TrimSpace(*in.Purpose)
	if want == "" {
		in.purposeID, in.purposeName = "", ""
		return nil
	}
	if s.Purpose == nil {
		return errs.Invalid("purpose", "lists cannot be bound to purposes here")
	}
	id, name, err := s.Purpose(ctx, want)
	if errs.Is(err, errs.KindNotFound) {
		return errs.Invalid("purpose", "there is no purpose %q", want)
	}
	if err != nil {
		return err
	}
	in.purposeID, in.purposeName = id, name
	return nil
}

func (in *Input) validate(create bool) error {
	if create && in.Name == nil {
		return errs.Required("name")
	}
	if err := errs.TrimLine("name", in.Name, 100); err != nil {
		return err
	}
	if in.Name != nil && *in.Name == "" {
		return errs.Required("name")
	}
	return errs.OptionalText("description", in.Description, 2000)
}

// auditedList is what the audit log keeps of a list: what contacts see of
// it, and the purpose unsubscribing from it withdraws.
type auditedList struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Public      bool   `json:"public"`
	Purpose     string `json:"purpose"`
}

func (l *List) audited() auditedList {
	return auditedList{Name: l.Name, Description: l.Description, Public: l.Public, Purpose: l.Purpose}
}

// auditTx writes the audit log's entries of action on l by by, for each
// field that differs between before and after, two auditedList or nil
// (for what was not yet, or is no more).
func (l *List) auditTx(tx *store.Tx, by audit.Actor, action string, before, after any, now time.Time) error {
	return audit.RecordTx(tx, by, audit.Object{Kind: audit.KindList, ID: l.ID, Name: l.Name}, action, audit.Changes(before, after), now)
}

// Create makes a list, by by, who the audit log names. A name already
// taken, regardless of case, is a conflict on "name".
func (s *Service) Create(ctx context.Context, by audit.Actor, in Input) (*List, error) {
	if err := s.validate(ctx, &in, true); err != nil {
		return nil, err
	}
	now := s.now()
	l := &List{ID: uuid.Must(uuid.NewV7()).String(), Public: true, CreatedAt: now, UpdatedAt: now}
	in.mergeInto(l)
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(`INSERT INTO lists (id, name, name_key, description, public, purpose_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
			l.ID, l.Name, strings.ToLower(l.Name), l.Description, l.Public, nullable(l.purposeID), store.Micros(now))
		if err := nameTaken(err, l.Name); err != nil {
			return err
		}
		return l.auditTx(tx, by, audit.ActionListCreated, nil, l.audited(), now)
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

func nameTaken(err error, name string) error {
	if store.IsUniqueViolation(err) {
		return errs.Conflict("list_name_taken", "name", "a list named %q already exists", name)
	}
	if err != nil {
		return fmt.Errorf("lists: save: %w", err)
	}
	return nil
}

func (in *Input) mergeInto(l *List) {
	if in.Name != nil {
		l.Name = *in.Name
	}
	if in.Description != nil {
		l.Description = *in.Description
	}
	if in.Public != nil {
		l.Public = *in.Public
	}
	if in.Purpose != nil {
		l.Purpose, l.purposeID = in.purposeName, in.purposeID
	}
}

// nullable is id, or NULL for none.
func nullable(id string) any {
	if id == "" {
		return nil
	}
	return id
}

// Update changes a list, by by, who the audit log names for each field
// that changed. It returns a not-found error (field "list") when there is
// no list with that id or name.
func (s *Service) Update(ctx context.Context, by audit.Actor, idOrName string, in Input) (*List, error) {
	if err := s.validate(ctx, &in, false); err != nil {
		return nil, err
	}
	var out *List
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		l, err := find(tx, idOrName)
		if err != nil {
			return err
		}
		before := l.audited()
		in.mergeInto(l)
		l.UpdatedAt = s.now()
		_, err = tx.Exec(`UPDATE lists SET name = $2, name_key = $3, description = $4, public = $5, purpose_id = $6, updated_at = $7 WHERE id = $1`,
			l.ID, l.Name, strings.ToLower(l.Name), l.Description, l.Public, nullable(l.purposeID), store.Micros(l.UpdatedAt))
		if err := nameTaken(err, l.Name); err != nil {
			return err
		}
		out = l
		return l.auditTx(tx, by, audit.ActionListChanged, before, l.audited(), l.UpdatedAt)
	})
	return out, err
}

// Delete removes a list and every subscription to it, by by, who the
// audit log names with what the list was. It returns a not-found error
// when there is no such list.
func (s *Service) Delete(ctx context.Context, by audit.Actor, idOrName string) error {
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		l, err := find(tx, idOrName)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM lists WHERE id = $1`, l.ID); err != nil {
			return fmt.Errorf("lists: delete %s: %w", l.ID, err)
		}
		return l.auditTx(tx, by, audit.ActionListDeleted, l.audited(), nil, s.now())
	})
}

const listSelect = `SELECT l.id, l.name, l.description, l.public, COALESCE(l.purpose_id, ''), COALESCE(p.name, ''), l.created_at, l.updated_at
	FROM lists l LEFT JOIN purposes p ON p.id = l.purpose_id`

func scanList(row store.Scanner) (*List, error) {
	var l List
	var created, updated int64
	err := row.Scan(&l.ID, &l.Name, &l.Description, &l.Public, &l.purposeID, &l.Purpose, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("list", "list")
	}
	if err != nil {
		return nil, fmt.Errorf("lists: read: %w", err)
	}
	l.CreatedAt, l.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return &l, nil
}

func find(q interface {
	QueryRow(string, ...any) *sql.Row
}, idOrName string) (*List, error) {
	return scanList(q.QueryRow(listSelect+" WHERE l.id = $1 OR l.name_key = $2 ORDER BY l.id = $1 DESC LIMIT 1",
		idOrName, strings.ToLower(strings.TrimSpace(idOrName))))
}

// Get finds a list by id or, failing that, by name regardless of case. It
// returns a not-found error (field "list") when neither matches.
func (s *Service) Get(ctx context.Context, idOrName string) (*List, error) {
	return scanList(s.DB.Read.QueryRowContext(ctx, listSelect+" WHERE l.id = $1 OR l.name_key = $2 ORDER BY l.id = $1 DESC LIMIT 1",
		idOrName, strings.ToLower(strings.TrimSpace(idOrName))))
}

// All returns every list by name; none is an empty slice.
func (s *Service) All(ctx context.Context) ([]*List, error) {
	return store.QueryAll(ctx, s.DB.Read, scanList, listSelect+" ORDER BY l.name_key")
}

// SubscriberCounts returns how many contacts are subscribed to each list,
// by list id, counted in one query for every list at once. A list no one
// is subscribed to is not in the map (its count is 0).
func (s *Service) SubscriberCounts(ctx context.Context) (map[string]int64, error) {
	type count struct {
		list string
		n    int64
	}
	rows, err := store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (count, error) {
		var c count
		err := row.Scan(&c.list, &c.n)
		return c, err
	}, `SELECT list_id, COUNT(*) FROM list_subscriptions WHERE status = 'subscribed' GROUP BY list_id`)
	if err != nil {
		return nil, fmt.Errorf("lists: count subscribers: %w", err)
	}
	out := make(map[string]int64, len(rows))
	for _, c := range rows {
		out[c.list] = c.n
	}
	return out, nil
}

// Subscriptions returns the contact's subscriptions by list name, read
// through q (a transaction sees its own writes). A contact with none gets an
// empty slice.
func Subscriptions(ctx context.Context, q store.Querier, contactID string) ([]Subscription, error) {
	return store.QueryAll(ctx, q, func(row store.Scanner) (Subscription, error) {
		var sub Subscription
		var at int64
		err := row.Scan(&sub.ListID, &sub.List, &sub.State, &sub.Source, &at)
		sub.ChangedAt = store.FromMicros(at)
		return sub, err
	}, `SELECT l.id, l.name, s.status, s.source, s.changed_at FROM list_subscriptions s JOIN lists l ON l.id = s.list_id
		WHERE s.contact_id = $1 ORDER BY l.name_key`, contactID)
}

// checkStatus refuses a subscription status other than the two there are.
func checkStatus(status string) error {
	if status == "" {
		return errs.Required("status")
	}
	if status != Subscribed && status != Unsubscribed {
		return errs.Invalid("status", "must be subscribed or unsubscribed")
	}
	return nil
}

// SetLater sets the contact's subscription to a list inside tx, with its
// event (list.subscribed or list.unsubscribed). A list deleted since the
// caller looked it up is skipped rather than failing the write (a webform
// shown before the list was deleted, say), and a status that is already
// the contact's is left as it is, with its source and time, and no event.
// Subscribing a contact whose personal data was erased, or who asked to
// stop processing, is refused with the locked error of each
// (contactstate.ErrErased, contactstate.ErrProcessingStopped), and nothing
// is written: the record takes no new data, and a subscription is a yes.
// Unsubscribing stays allowed: it is a no, which a lock never stops.
// The write itself is queued for the transaction's next round trip on
// PostgreSQL (store.Tx.ExecLater); the read before it carries what was
// queued earlier.
func SetLater(tx *store.Tx, contactID, listID, status, source string, now time.Time) error {
	_, _, err := set(tx, contactID, listID, status, source, now)
	return err
}

// set is SetLater, reporting whether the list exists and its purpose.
func set(tx *store.Tx, contactID, listID, status, source string, now time.Time) (found bool, purpose sql.NullString, err error) {
	if err := checkStatus(status); err != nil {
		return false, purpose, err
	}
	if status == Unsubscribed {
		tx.Fence(contactID) // no campaign to the list reaches them once committed
	}
	var name string
	var current sql.NullString
	var erased, stopped sql.NullBool // null: no such contact
	err = tx.Row(`SELECT l.name, l.purpose_id, s.status,
		(SELECT c.erased_at IS NOT NULL FROM contacts c WHERE c.id = $2), (SELECT c.processing_stopped_at IS NOT NULL FROM contacts c WHERE c.id = $2)
		FROM lists l LEFT JOIN list_subscriptions s ON s.list_id = l.id AND s.contact_id = $2 WHERE l.id = $1`, listID, contactID).
		Scan(&name, &purpose, &current, &erased, &stopped)
	if errors.Is(err, sql.ErrNoRows) {
		return false, purpose, nil
	}
	if err != nil {
		return false, purpose, fmt.Errorf("lists: read subscription: %w", err)
	}
	if err := checkMayJoin(status, erased.Bool, stopped.Bool); err != nil {
		return true, purpose, err
	}
	if current.Valid && current.String == status {
		return true, purpose, nil
	}
	return true, purpose, writeTx(tx, contactID, listID, name, status, source, now)
}

// checkMayJoin refuses a subscription (status subscribed) of a contact
// whose data was erased or who asked to stop processing; an unsubscribe
// passes.
func checkMayJoin(status string, erased, stopped bool) error {
	switch {
	case status != Subscribed:
		return nil
	case erased:
		return contactstate.ErrErased()
	case stopped:
		return contactstate.ErrProcessingStopped()
	}
	return nil
}

// writeTx writes the contact's subscription to the list (its id and name)
// and its event, reading nothing.
func writeTx(tx *store.Tx, contactID, listID, name, status, source string, now time.Time) error {
	if err := tx.ExecLater(store.Prefix("lists: set subscription"), `INSERT INTO list_subscriptions (list_id, contact_id, status, source, changed_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (list_id, contact_id) DO UPDATE SET status = excluded.status, source = excluded.source, changed_at = excluded.changed_at`,
		listID, contactID, status, source, store.Micros(now)); err != nil {
		return err
	}
	typ := events.ListSubscribed
	if status == Unsubscribed {
		typ = events.ListUnsubscribed
	}
	return events.Emit(tx, typ, contactID, events.ListData{ContactID: contactID, ListID: listID, List: name,
		State: status, Source: source}, now)
}

// JoinNewTx subscribes a contact created in tx to l, reading nothing, for
// a bulk writer that gathers its statements (store.Tx.Gather): a new
// contact has no subscription, and so no choice to leave to respect.
func JoinNewTx(tx *store.Tx, contactID string, l *List, source string, now time.Time) error {
	return writeTx(tx, contactID, l.ID, l.Name, Subscribed, source, now)
}

// Withdrawal writes, inside the unsubscribe's transaction, the withdrawal
// of the contact's consent to the purpose a list is bound to, with the
// actor and evidence of the choice (consent.Service.PurposeWithdrawal).
type Withdrawal func(tx *store.Tx, contactID, purposeID string, now time.Time) error

// UnsubscribeTx unsubscribes the contact from the list inside tx (as
// SetLater does) and, when the list is bound to a purpose, withdraws the
// contact's consent to it through withdraw, as an opt-out withdraws the
// consents that govern marketing email: the list's email went out on the
// strength of that consent. A list deleted since is skipped.
func UnsubscribeTx(tx *store.Tx, contactID, listID, source string, now time.Time, withdraw Withdrawal) error {
	found, purpose, err := set(tx, contactID, listID, Unsubscribed, source, now)
	if err != nil || !found || !purpose.Valid {
		return err
	}
	if withdraw == nil {
		return fmt.Errorf("lists: list %s is bound to a purpose, and the unsubscribe cannot withdraw it", listID)
	}
	return withdraw(tx, contactID, purpose.String, now)
}

// Set changes one subscription in its own transaction. The contact and the
// list (id or name) must exist. Subscribing an erased or locked contact is
// refused (see SetLater). Unsubscribing from a list bound to a
// purpose withdraws the contact's consent to it through withdraw (see
// UnsubscribeTx).
func (s *Service) Set(ctx context.Context, contactID, list, status, source string, withdraw Withdrawal) (*Subscription, error) {
	if err := checkStatus(status); err != nil {
		return nil, err
	}
	var out *Subscription
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		l, err := find(tx, list)
		if err != nil {
			return err
		}
		if _, err := contactstate.Load(tx, contactID); err != nil {
			return err
		}
		now := s.now()
		if status == Unsubscribed {
			err = UnsubscribeTx(tx, contactID, l.ID, source, now, withdraw)
		} else {
			err = SetLater(tx, contactID, l.ID, status, source, now)
		}
		if err != nil {
			return err
		}
		out = &Subscription{ListID: l.ID, List: l.Name, State: status, Source: source, ChangedAt: now}
		return nil
	})
	return out, err
}

// Members resolves list names in conditions (inList("Newsletter")): a
// contact is in a list while subscribed to it.
type Members map[string]string

// Names returns the lists' names in lower case, and their ids, mapped to
// ids, for conditions.
func (s *Service) Names(ctx context.Context) (Members, error) {
	all, err := s.All(ctx)
	if err != nil {
		return nil, err
	}
	m := Members{}
	for _, l := range all {
		m[strings.ToLower(l.Name)] = l.ID
		m[l.ID] = l.ID
	}
	return m, nil
}

// ListID returns the id of the list named name, regardless of case.
func (m Members) ListID(name string) (string, bool) {
	id, ok := m[strings.ToLower(name)]
	return id, ok
}

// MemberSQL is the SQL test that contact c is subscribed to the list whose
// id is bound to param.
func (m Members) MemberSQL(param string) string {
	return `EXISTS (SELECT 1 FROM list_subscriptions ls WHERE ls.list_id = ` + param + ` AND ls.contact_id = c.id AND ls.status = 'subscribed')`
}

// SubscribedIDs returns the ids of the lists the contact is subscribed to,
// as a set, for evaluating conditions in memory.
func SubscribedIDs(subs []Subscription) map[string]bool {
	m := map[string]bool{}
	for _, s := range subs {
		if s.State == Subscribed {
			m[s.ListID] = true
		}
	}
	return m
}

// JoinLater subscribes the contact to the list inside tx, as SetLater
// does, unless the contact unsubscribed from it before: an import or a
// bulk action never undoes someone's choice to leave. It reports whether
// it subscribed the contact now: false when they were subscribed already,
// had left, or the list was deleted since.
func JoinLater(tx *store.Tx, contactID, listID, source string, now time.Time) (bool, error) {
	join, err := WouldJoinTx(tx, contactID, listID)
	if err != nil || !join {
		return false, err
	}
	found, _, err := set(tx, contactID, listID, Subscribed, source, now)
	return found, err
}

// WouldJoinTx reports, reading only, whether JoinLater would subscribe
// the contact: true when they have no subscription to the list, neither
// current nor left.
func WouldJoinTx(tx *store.Tx, contactID, listID string) (bool, error) {
	var current string
	err := tx.Row(`SELECT status FROM list_subscriptions WHERE list_id = $1 AND contact_id = $2`, listID, contactID).Scan(&current)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("lists: read subscription: %w", err)
	}
	return false, nil
}
