// Package requests keeps data subject requests: a contact (or someone
// writing from an address) asking for access to their data, its erasure,
// rectification, restriction of processing, or objecting to it. Each
// request is a record with the deadline the law sets (GDPR Art. 12(3): one
// month from receipt, extendable once by up to two more with a reason), a
// status the operator moves on as it is fulfilled, and a ledger event per
// step, so that the history of a request is as tamper-evident as the
// consents.
//
// The package records requests and their steps; what fulfils them (an
// erasure, an export) belongs to the packages that do it, which call
// SetStatusTx in the same transaction as the work.
package requests

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/consent"
	"github.com/consentry/consentry/internal/contactstate"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/ledger"
	"github.com/consentry/consentry/internal/store"
)

// Kinds of request: the rights of GDPR Art. 15 to 21 a contact exercises.
const (
	KindAccess        = "access"
	KindErasure       = "erasure"
	KindRectification = "rectification"
	KindRestriction   = "restriction"
	KindObjection     = "objection"
)

// Kinds lists the request kinds.
var Kinds = []string{KindAccess, KindErasure, KindRectification, KindRestriction, KindObjection}

// Channels: how a request reached the operator.
const (
	ChannelPreferences = "preferences_page"
	ChannelEmail       = "email"
	ChannelAPI         = "api"
	ChannelUser        = "entered_by_user"
)

// Channels lists the channels.
var Channels = []string{ChannelPreferences, ChannelEmail, ChannelAPI, ChannelUser}

// Statuses of a request. Received: not yet known to come from the person
// it is about. Verified: it does. In progress: someone is working on it.
// Done, refused and partly done close it; the last two carry the reason.
const (
	StatusReceived   = "received"
	StatusVerified   = "verified"
	StatusInProgress = "in_progress"
	StatusDone       = "done"
	StatusRefused    = "refused"
	StatusPartlyDone = "partly_done"
)

// Statuses lists the statuses, open ones first.
var Statuses = []string{StatusReceived, StatusVerified, StatusInProgress, StatusDone, StatusRefused, StatusPartlyDone}

// Closed reports whether status ends a request.
func Closed(status string) bool {
	return status == StatusDone || status == StatusRefused || status == StatusPartlyDone
}

// needsReason reports whether moving to status must say why.
func needsReason(status string) bool { return status == StatusRefused || status == StatusPartlyDone }

// MaxExtensionMonths is how far a deadline may be extended, once (Art. 12(3)).
const MaxExtensionMonths = 2

// Request is one data subject request.
type Request struct {
	ID        string `json:"id"`
	Kind      string `json:"kind" enum:"@request_kind"`
	Channel   string `json:"channel" enum:"@request_channel"`
	ContactID string `json:"contact_id,omitempty" doc:"the contact it is about; empty while the sender is unknown"`
	// Address is the sender's address while the request is about no known
	// contact; it is cleared when the request closes, and when a contact
	// with that address is erased (AddressErasedAt).
	Address string `json:"address,omitempty" doc:"the sender's address, while the request is about no known contact"`
	// AddressErasedAt is when the sender's address was erased from the
	// open request, with the contact who had it; nil when it never was.
	AddressErasedAt *time.Time    `json:"address_erased_at,omitempty" doc:"when the sender's address was erased from the request, with the personal data of the contact who had it: the request goes on without it"`
	Status          string        `json:"status" enum:"@request_status"`
	Reason          string        `json:"reason,omitempty" doc:"why it was refused or only partly done"`
	Note            string        `json:"note,omitempty" doc:"what was asked, in the operator's words or the contact's"`
	ReceivedAt      time.Time     `json:"received_at"`
	DueAt           time.Time     `json:"due_at" doc:"one month after receipt, or later once extended"`
	ExtendedAt      *time.Time    `json:"extended_at,omitempty"`
	ExtensionReason string        `json:"extension_reason,omitempty"`
	Actor           consent.Actor `json:"created_by"`
	UpdatedAt       time.Time     `json:"updated_at"`
	ClosedAt        *time.Time    `json:"closed_at,omitempty"`
	// DaysLeft is whole days until DueAt as of the read, negative once
	// overdue; 0 for a closed request.
	DaysLeft int  `json:"days_left" doc:"whole days until the due date, negative once overdue; 0 once closed"`
	Overdue  bool `json:"overdue"`

	ref string
}

// DueDate is one calendar month after received, the period of GDPR Art.
// 12(3): the same day of the next month, or that month's last day when it
// has no such day (31 January gives 28 or 29 February), at the same time.
func DueDate(received time.Time) time.Time { return addMonths(received, 1) }

func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(d, last)-1)
}

// New is a request to record.
type New struct {
	Kind    string
	Channel string
	// ContactID or Address says whom it is about; ContactID wins.
	ContactID string
	Address   string
	Note      string
	// Verified records it as verified at once: it came through a channel
	// that already proved who asked (a confirmed preferences change, a
	// user who checked, an API client acting for the operator).
	Verified bool
	Actor    consent.Actor
}

func (in *New) validate() error {
	if !slices.Contains(Kinds, in.Kind) {
		return errs.Invalid("kind", "must be one of %s", strings.Join(Kinds, ", "))
	}
	if !slices.Contains(Channels, in.Channel) {
		return errs.Invalid("channel", "must be one of %s", strings.Join(Channels, ", "))
	}
	if in.ContactID == "" && in.Address == "" {
		return errs.Required("contact_id")
	}
	if in.ContactID == "" {
		in.Address = strings.TrimSpace(in.Address)
		if err := errs.Visible("address", in.Address); err != nil {
			return err
		}
		if a, err := mail.ParseAddress(in.Address); err != nil || a.Name != "" || a.Address != in.Address || len(in.Address) > 254 {
			return errs.Invalid("address", "must be a plain email address such as anna@example.com")
		}
	}
	if err := errs.OptionalText("note", &in.Note, 2000); err != nil {
		return err
	}
	return nil
}

// Notifier is told, inside the transaction, of each request recorded, so
// that the operator hears of it (Service.Notify does).
type Notifier func(tx *store.Tx, r *Request, now time.Time) error

// CreateTx records a request inside tx, appends its ledger event and tells
// notify (which may be nil). A contact that does not exist is a not-found
// error on "contact_id".
func CreateTx(tx *store.Tx, in New, notify Notifier, now time.Time) (*Request, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	r := &Request{ID: uuid.Must(uuid.NewV7()).String(), Kind: in.Kind, Channel: in.Channel, ContactID: in.ContactID,
		Status: StatusReceived, Note: in.Note, ReceivedAt: now, DueAt: DueDate(now), Actor: in.Actor, UpdatedAt: now}
	if in.Verified {
		r.Status = StatusVerified
	}
	if r.ContactID != "" {
		k, err := contactstate.Load(tx, r.ContactID)
		if err != nil {
			return nil, errs.WithField(err, errs.Field("contact_id"))
		}
		r.ref = k.Ref
	} else {
		r.Address = strings.TrimSpace(in.Address)
		r.ref = randomRef()
	}
	if _, err := tx.Exec(`INSERT INTO subject_requests (id, kind, channel, contact_id, contact_ref, address, address_key, status, note,
		received_at, due_at, actor_kind, actor_id, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $10)`,
		r.ID, r.Kind, r.Channel, r.ContactID, r.ref, r.Address, strings.ToLower(r.Address), r.Status, r.Note,
		store.Micros(now), store.Micros(r.DueAt), r.Actor.Kind, r.Actor.ID); err != nil {
		return nil, fmt.Errorf("requests: create: %w", err)
	}
	if err := appendEvent(tx, r, r.Actor, now); err != nil {
		return nil, err
	}
	if err := emit(tx, events.RequestCreated, r, now); err != nil {
		return nil, err
	}
	if notify != nil {
		if err := notify(tx, r, now); err != nil {
			return nil, err
		}
	}
	r.fill(now)
	return r, nil
}

// appendEvent writes the request's current status to the ledger: kind
// request, the request id as the record, its status as the value and its
// kind as the method. The contact appears only as its random reference.
// Every change of status comes here, so a request closing (done, refused
// or partly done) writes request.done here too.
func appendEvent(tx *store.Tx, r *Request, actor consent.Actor, now time.Time) error {
	_, err := ledger.Append(tx, &ledger.Event{RecordedAt: store.Micros(now), Kind: ledger.KindRequest, ContactRef: r.ref, RecordID: r.ID,
		Value: r.Status, Method: r.Kind, ActorKind: actor.Kind, ActorID: actor.ID})
	if err != nil || !Closed(r.Status) {
		return err
	}
	return emit(tx, events.RequestDone, r, now)
}

// emit writes the event typ about r: ids, kind, channel and status, never
// the sender's address or the note.
func emit(tx *store.Tx, typ string, r *Request, now time.Time) error {
	return events.Emit(tx, typ, r.ContactID, events.RequestData{RequestID: r.ID, ContactID: r.ContactID, Kind: r.Kind,
		Channel: r.Channel, Status: r.Status}, now)
}

func randomRef() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// fill computes the fields that depend on the time of reading.
func (r *Request) fill(now time.Time) {
	r.DaysLeft, r.Overdue = 0, false
	if r.ClosedAt != nil {
		return
	}
	left := r.DueAt.Sub(now)
	r.Overdue = left < 0
	days := int(left / (24 * time.Hour))
	if left < 0 && left%(24*time.Hour) != 0 {
		days-- // a request 3 hours overdue is -1 days, not 0
	}
	r.DaysLeft = days
}

const columns = `id, kind, channel, contact_id, contact_ref, address, status, reason, note, received_at, due_at, extended_at,
	extension_reason, actor_kind, actor_id, updated_at, closed_at, address_erased_at`

func scan(row store.Scanner) (*Request, error) {
	r := &Request{}
	var received, due, updated int64
	var extended, closed, erased sql.NullInt64
	if err := row.Scan(&r.ID, &r.Kind, &r.Channel, &r.ContactID, &r.ref, &r.Address, &r.Status, &r.Reason, &r.Note, &received, &due,
		&extended, &r.ExtensionReason, &r.Actor.Kind, &r.Actor.ID, &updated, &closed, &erased); err != nil {
		return nil, err
	}
	r.ReceivedAt, r.DueAt, r.UpdatedAt = store.FromMicros(received), store.FromMicros(due), store.FromMicros(updated)
	r.ExtendedAt, r.ClosedAt, r.AddressErasedAt = optionalTime(extended), optionalTime(closed), optionalTime(erased)
	return r, nil
}

// optionalTime is a time column that may be NULL: nil when it is.
func optionalTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := store.FromMicros(v.Int64)
	return &t
}

// Get returns the request with this id as of now, or a not-found error
// (field "request").
func Get(ctx context.Context, q store.Querier, id string, now time.Time) (*Request, error) {
	r, err := scan(q.QueryRowContext(ctx, `SELECT `+columns+` FROM subject_requests WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("request", "")
	}
	if err != nil {
		return nil, fmt.Errorf("requests: read: %w", err)
	}
	r.fill(now)
	return r, nil
}

// Query selects requests. Open requests come first, the one due soonest
// (so the most overdue) first; closed ones follow, the latest closed first.
type Query struct {
	Kind      string
	Status    string
	ContactID string
	Open      bool // only open requests
	Closed    bool // only closed requests
	Limit     int  // 1 to 500; 0 means 100
	Offset    int
}

// Count counts the requests that f selects, whatever its limit and
// offset: the total a list of them shows.
func Count(ctx context.Context, q store.Querier, f Query) (int64, error) {
	where, args, err := f.where()
	if err != nil {
		return 0, err
	}
	query := `SELECT count(*) FROM subject_requests`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	var n int64
	if err := q.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("requests: count: %w", err)
	}
	return n, nil
}

// where is the condition f selects requests by, with its arguments; an
// unknown kind or status is refused by name.
func (f Query) where() ([]string, []any, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Kind != "" {
		if !slices.Contains(Kinds, f.Kind) {
			return nil, nil, errs.Invalid("kind", "must be one of %s", strings.Join(Kinds, ", "))
		}
		add("kind = $%d", f.Kind)
	}
	if f.Status != "" {
		if !slices.Contains(Statuses, f.Status) {
			return nil, nil, errs.Invalid("status", "must be one of %s", strings.Join(Statuses, ", "))
		}
		add("status = $%d", f.Status)
	}
	if f.ContactID != "" {
		add("contact_id = $%d", f.ContactID)
	}
	if f.Open {
		where = append(where, "closed_at IS NULL")
	}
	if f.Closed {
		where = append(where, "closed_at IS NOT NULL")
	}
	return where, args, nil
}

// List returns the requests Query selects, as of now; none is an empty
// slice. An unknown kind or status is an invalid-input error naming it.
func List(ctx context.Context, q store.Querier, f Query, now time.Time) ([]*Request, error) {
	where, args, err := f.where()
	if err != nil {
		return nil, err
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 1 || f.Limit > 500 {
		return nil, errs.Invalid("limit", "must be a whole number from 1 to 500")
	}
	if f.Offset < 0 {
		return nil, errs.Invalid("offset", "must not be negative")
	}
	query := `SELECT ` + columns + ` FROM subject_requests`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	// Open or closed alone are ordered by a column the index on (closed_at,
	// due_at) serves; both together need the two-part order.
	order := `CASE WHEN closed_at IS NULL THEN 0 ELSE 1 END, CASE WHEN closed_at IS NULL THEN due_at ELSE -closed_at END, id`
	switch {
	case f.Open && !f.Closed:
		order = `due_at, id`
	case f.Closed && !f.Open:
		order = `closed_at DESC, id`
	}
	query += fmt.Sprintf(` ORDER BY %s LIMIT %d OFFSET %d`, order, f.Limit, f.Offset)
	out, err := store.QueryAll(ctx, q, scan, query, args...)
	if err != nil {
		return nil, fmt.Errorf("requests: list: %w", err)
	}
	for _, r := range out {
		r.fill(now)
	}
	return out, nil
}

// Change moves a request on; nil fields stay as they are.
type Change struct {
	Status *string `json:"status" enum:"@request_status"`
	// Reason is required to refuse a request or record it as partly done.
	Reason *string `json:"reason" doc:"why it is refused or only partly done; required for those statuses"`
	Note   *string `json:"note"`
	// ContactID links a request received from an address to the contact
	// found to have it.
	ContactID *string    `json:"contact_id" doc:"the contact the request turned out to be about"`
	Extend    *Extension `json:"extend" doc:"extend the due date, once"`
}

// Extension extends a request's due date once, by one or two months, with
// the reason the law asks for (the request's complexity or number).
type Extension struct {
	Months int    `json:"months" required:"true" doc:"1 or 2"`
	Reason string `json:"reason" required:"true"`
}

// Update applies c to the request as actor and returns it. A closed
// request cannot change; a second extension is a conflict.
func Update(ctx context.Context, db *store.DB, id string, c Change, actor consent.Actor, now time.Time) (*Request, error) {
	var out *Request
	err := db.Write(ctx, func(tx *store.Tx) error {
		var err error
		out, err = UpdateTx(tx, id, c, actor, now)
		return err
	})
	return out, err
}

// UpdateTx is Update inside tx.
func UpdateTx(tx *store.Tx, id string, c Change, actor consent.Actor, now time.Time) (*Request, error) {
	r, err := Get(context.Background(), tx, id, now)
	if err != nil {
		return nil, err
	}
	if Closed(r.Status) {
		return nil, errs.Conflict("request_closed", "status", "the request is closed (%s)", r.Status)
	}
	changed := false
	if c.Note != nil {
		if err := errs.OptionalText("note", c.Note, 2000); err != nil {
			return nil, err
		}
		r.Note, changed = *c.Note, true
	}
	if c.ContactID != nil && *c.ContactID != r.ContactID {
		if r.ContactID != "" {
			return nil, errs.Conflict("request_has_contact", "contact_id", "the request is already about a contact")
		}
		if _, err := contactstate.Load(tx, *c.ContactID); err != nil {
			return nil, errs.WithField(err, errs.Field("contact_id"))
		}
		r.ContactID, changed = *c.ContactID, true
	}
	if e := c.Extend; e != nil {
		if r.ExtendedAt != nil {
			return nil, errs.Conflict("already_extended", "extend", "the due date was already extended once, on %s", r.ExtendedAt.Format(time.DateOnly))
		}
		if e.Months < 1 || e.Months > MaxExtensionMonths {
			return nil, errs.Invalid("extend.months", "must be 1 or %d", MaxExtensionMonths)
		}
		if err := errs.TrimText("extend.reason", &e.Reason, 1000); err != nil {
			return nil, err
		}
		r.DueAt = addMonths(r.DueAt, e.Months)
		r.ExtendedAt, r.ExtensionReason, changed = &now, e.Reason, true
	}
	statusChanged := false
	if c.Status != nil && *c.Status != r.Status {
		if !slices.Contains(Statuses, *c.Status) {
			return nil, errs.Invalid("status", "must be one of %s", strings.Join(Statuses, ", "))
		}
		if *c.Status == StatusReceived {
			return nil, errs.Invalid("status", "cannot go back to received")
		}
		r.Status, statusChanged, changed = *c.Status, true, true
	}
	if c.Reason != nil {
		if err := errs.OptionalText("reason", c.Reason, 1000); err != nil {
			return nil, err
		}
		r.Reason, changed = *c.Reason, true
	}
	if needsReason(r.Status) && r.Reason == "" {
		return nil, errs.Required("reason")
	}
	if !changed {
		return r, nil
	}
	if err := save(tx, r, now); err != nil {
		return nil, err
	}
	if statusChanged {
		if err := appendEvent(tx, r, actor, now); err != nil {
			return nil, err
		}
	}
	r.fill(now)
	return r, nil
}

// save writes r's changeable fields, closing it when its status does: a
// closed request forgets the sender's address.
func save(tx *store.Tx, r *Request, now time.Time) error {
	var closed sql.NullInt64
	if Closed(r.Status) {
		closed = sql.NullInt64{Int64: store.Micros(now), Valid: true}
		r.ClosedAt = &now
		r.Address = ""
	}
	var extended any
	if r.ExtendedAt != nil {
		extended = store.Micros(*r.ExtendedAt)
	}
	if _, err := tx.Exec(`UPDATE subject_requests SET status = $2, reason = $3, note = $4, contact_id = $5, due_at = $6,
		extended_at = $7, extension_reason = $8, updated_at = $9, closed_at = $10, address = $11, address_key = lower($11)
		WHERE id = $1`, r.ID, r.Status, r.Reason, r.Note, r.ContactID, store.Micros(r.DueAt), extended, r.ExtensionReason,
		store.Micros(now), closed, r.Address); err != nil {
		return fmt.Errorf("requests: update: %w", err)
	}
	r.UpdatedAt = now
	return nil
}

// SetStatusTx moves the contact's open requests of kind to status (with
// reason for refused or partly done) inside tx, as actor: the work that
// fulfils them calls it in the same transaction. It returns the requests
// it moved; none is not an error.
func SetStatusTx(tx *store.Tx, contactID, kind, status, reason string, actor consent.Actor, now time.Time) ([]*Request, error) {
	open, err := OpenTx(tx, contactID, kind, now)
	if err != nil {
		return nil, err
	}
	for _, r := range open {
		if r.Status == status && r.Reason == reason {
			continue
		}
		r.Status, r.Reason = status, reason
		if err := save(tx, r, now); err != nil {
			return nil, err
		}
		if err := appendEvent(tx, r, actor, now); err != nil {
			return nil, err
		}
		r.fill(now)
	}
	return open, nil
}

// OpenTx returns the contact's open requests of kind (any kind when kind
// is empty) inside tx, oldest first; none is an empty slice.
func OpenTx(tx *store.Tx, contactID, kind string, now time.Time) ([]*Request, error) {
	out, err := store.QueryAll(context.Background(), tx, scan, `SELECT `+columns+` FROM subject_requests
		WHERE contact_id = $1 AND closed_at IS NULL AND ($2 = '' OR kind = $2) ORDER BY received_at, id`, contactID, kind)
	if err != nil {
		return nil, fmt.Errorf("requests: read open: %w", err)
	}
	for _, r := range out {
		r.fill(now)
	}
	return out, nil
}

// CountOpen counts open requests, and of them those overdue as of now,
// for the dashboard.
func CountOpen(ctx context.Context, q store.Querier, now time.Time) (open, overdue int, err error) {
	err = q.QueryRowContext(ctx, `SELECT count(*), COALESCE(SUM(CASE WHEN due_at < $1 THEN 1 ELSE 0 END), 0)
		FROM subject_requests WHERE closed_at IS NULL`, store.Micros(now)).Scan(&open, &overdue)
	if err != nil {
		err = fmt.Errorf("requests: count: %w", err)
	}
	return open, overdue, err
}
