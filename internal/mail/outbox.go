// Package mail is the only way email leaves Consentry. Every email of every
// kind is written to the outbox in the same transaction as the change that
// causes it, and leaves only through one gate (Gate) that looks at the
// contact when the message is taken for sending, a batch at a time, moments
// before it is handed to the mail server: a contact who opted out, bounced,
// was blocklisted, stopped processing or was erased gets nothing the rules
// forbid, however the email was queued. Each message that is not sent keeps
// the reason.
package mail

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/auth"
	"github.com/consentry/consentry/internal/store"
)

// Kinds of email.
const (
	KindDoubleOptIn  = "double_opt_in"        // a double opt-in invitation or its reminder
	KindConfirmation = "confirmation"         // a link confirming a change the contact asked for
	KindInformed     = "right_to_be_informed" // what is stored and why, to a new contact
	KindNotification = "notification"         // news about the contact's own data, e.g. access to the preferences page
	KindWorkflow     = "workflow"             // sent by a workflow rule
	KindAdHoc        = "adhoc"                // written by a user
	KindReply        = "reply"                // a user's reply in a conversation
	KindCampaign     = "campaign"             // marketing to many
	KindOperator     = "operator"             // to the operator's own address (Message.To), e.g. a data subject request arrived
	// KindRequestConfirmation is the link confirming a request emailed to
	// the privacy address from an address that is no contact's: it goes
	// to Message.To, and its one link is bound to the request
	// (auth.PurposeRequestConfirmation). A request from a contact's
	// address is confirmed by a KindConfirmation message to the contact.
	KindRequestConfirmation = "request_confirmation"
	// KindPartner is an email about a contact to a fixed address
	// (Message.To), a partner's, with the contact's details that a
	// workflow rule picked: it has both To and ContactID, and never
	// personal links. The gate stops it once the contact stopped
	// processing, asked to be erased or was erased (GatePartner).
	KindPartner = "partner"
)

// Kinds lists every kind.
var Kinds = []string{KindDoubleOptIn, KindConfirmation, KindInformed, KindNotification, KindWorkflow, KindAdHoc, KindReply, KindCampaign, KindOperator, KindRequestConfirmation, KindPartner}

// Outbox statuses.
const (
	StatusQueued     = "queued"
	StatusSending    = "sending"
	StatusSent       = "sent"
	StatusSuppressed = "suppressed"
	StatusFailed     = "failed"
)

// wakeTopic is the store signal that messages are waiting.
const wakeTopic = "outbox"

// Message is an email to queue for a contact, or, with To, for the
// operator.
type Message struct {
	ContactID string
	// To, for a message of KindOperator, is the address it goes to: one
	// of the operator's own (the privacy address), not a contact's, so
	// the contact gate does not apply. Such a message has no ContactID
	// and no personal links. For KindRequestConfirmation it is the
	// sender of an emailed request, who is no contact (as the message was
	// queued); its only links are request confirmations.
	To       string
	Kind     string
	Language string
	Subject  string
	Text     string
	HTML     string
	// Headers are added to the email as they are (List-Unsubscribe, say).
	Headers map[string]string
	// ConversationID, for a reply, is the conversation it answers.
	ConversationID string
	// SubjectID names what the message is about (a double opt-in
	// invitation, say), so that it can be cancelled when that ends.
	SubjectID string
	// Links are the personal links in the bodies, each written there as
	// its placeholder (see NewLink). A message with links needs a
	// ContactID, the links being the contact's, except a request
	// confirmation, whose link is the request's.
	Links []Link
	// Consent, when set, is the consent the message rests on (an email a
	// workflow rule queued on a consent event): the gate sets the message
	// aside when the contact's consent is no longer in that state as it is
	// taken for sending (ReasonConsentWithdrawn, ReasonConsentChanged).
	Consent *ConsentState
	// Attachments go with the message beside its bodies, in order. They
	// are content: removed with the subject and bodies (Pruner,
	// EraseContactsTx) and deleted with the message.
	Attachments []Attachment
}

// ConsentState is a contact's consent to a purpose in one state: granted
// (and not expired) or withdrawn.
type ConsentState struct {
	PurposeID string
	State     string // "granted" or "withdrawn"
}

// Attachment is a file an email carries.
type Attachment struct {
	Filename    string // as the recipient sees it; required
	ContentType string // a media type; empty: application/octet-stream
	Data        []byte
}

// defaultContentType is an attachment's when its message names none.
const defaultContentType = "application/octet-stream"

// Link is a personal link in an email: a link whose token lets the contact
// act (confirm a double opt-in, open their preferences page). Its token is
// issued as the email is sent, and the bodies hold a placeholder where the
// token goes until then, so that the outbox, which keeps messages after
// they are sent, never holds a working link: tokens are stored only as
// hashes.
type Link struct {
	Placeholder string    `json:"placeholder"`
	Purpose     string    `json:"purpose"` // the token's (auth.Purpose...)
	SubjectID   string    `json:"subject_id,omitempty"`
	Expires     time.Time `json:"expires"`
}

// NewLink returns a link whose token will be for purpose and subjectID and
// work until expires. Its Placeholder, which the caller writes into the
// bodies where the token goes (BaseURL + "/confirm/" + l.Placeholder, say),
// is random, and made of characters no template escapes.
func NewLink(purpose, subjectID string, expires time.Time) Link {
	b := make([]byte, 12)
	rand.Read(b)
	return Link{Placeholder: "link-" + hex.EncodeToString(b), Purpose: purpose, SubjectID: subjectID, Expires: expires.UTC()}
}

// fixedAddress reports whether messages of kind go to Message.To rather
// than to a contact.
func fixedAddress(kind string) bool { return kind == KindOperator || kind == KindRequestConfirmation }

// checkAddressing refuses a message whose recipient and links do not fit
// its kind: a fixed address only for the kinds that have one, never with a
// contact; personal links only for a contact, or a request confirmation's
// own link.
func (m *Message) checkAddressing() error {
	if m.Kind == KindPartner {
		if m.To == "" || m.ContactID == "" || len(m.Links) > 0 {
			return fmt.Errorf("mail: a message of kind %s has an address and a contact, and no personal links", KindPartner)
		}
		return nil
	}
	if fixedAddress(m.Kind) != (m.To != "") || (m.To != "" && m.ContactID != "") {
		return fmt.Errorf("mail: a message to a fixed address is of kind %s or %s and has no contact", KindOperator, KindRequestConfirmation)
	}
	for _, l := range m.Links {
		if m.ContactID == "" && (m.Kind != KindRequestConfirmation || l.Purpose != auth.PurposeRequestConfirmation) {
			return fmt.Errorf("mail: a message with personal links needs a contact")
		}
	}
	return nil
}

// Enqueue writes m to the outbox inside tx and returns its id. The address
// is read when the message is sent, so it goes to the address on file then.
func Enqueue(tx *store.Tx, m Message, now time.Time) (string, error) {
	ids, err := EnqueueMany(tx, []Message{m}, now)
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// outboxColumns are the columns EnqueueMany writes, and outboxTypes their
// types, in the order of outboxRow's values.
const outboxColumns = `INSERT INTO outbox (id, contact_id, kind, to_address, language, subject, text_body, html_body, headers, links,
	conversation_id, subject_id, status, run_at, created_at, consent_purpose_id, consent_state)`

var outboxTypes = []string{"text", "text", "text", "text", "text", "text", "text", "text", "text", "text", "text", "text", "text", "bigint", "bigint",
	"text", "text"}

// EnqueueMany is Enqueue for many messages, for work done in bulk (double
// opt-in for many contacts, say), in as few statements as the database
// allows (store.Tx.InsertRows). It returns the ids in the order of msgs;
// nothing is written when one is refused.
func EnqueueMany(tx *store.Tx, msgs []Message, now time.Time) ([]string, error) {
	rows := make([][]any, len(msgs))
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		var err error
		if ids[i], rows[i], err = outboxRow(m, now); err != nil {
			return nil, err
		}
	}
	// Queued on PostgreSQL for the transaction's next round trip
	// (store.Tx.ExecLater): the caller gets the ids it needs from here.
	if err := tx.InsertRows(store.Prefix("mail: enqueue"), outboxColumns, outboxTypes, rows); err != nil {
		return nil, err
	}
	for i, m := range msgs {
		for n, a := range m.Attachments {
			if err := tx.ExecLater(store.Prefix("mail: enqueue attachment"), `INSERT INTO outbox_attachments (outbox_id, n, filename, content_type, data)
				VALUES ($1, $2, $3, $4, $5)`, ids[i], n, a.Filename, cmp.Or(a.ContentType, defaultContentType), a.Data); err != nil {
				return nil, err
			}
		}
	}
	if len(msgs) > 0 {
		tx.WakeAfterCommit(wakeTopic)
	}
	return ids, nil
}

// outboxRow checks m and returns its new id and the values of its outbox
// row, in the order of EnqueueMany's columns.
func outboxRow(m Message, now time.Time) (string, []any, error) {
	if !slices.Contains(Kinds, m.Kind) {
		return "", nil, fmt.Errorf("mail: unknown kind %q", m.Kind)
	}
	headers, err := json.Marshal(m.Headers)
	if err != nil {
		return "", nil, fmt.Errorf("mail: encode headers: %w", err)
	}
	if err := m.checkAddressing(); err != nil {
		return "", nil, err
	}
	for i, a := range m.Attachments {
		if a.Filename == "" || strings.ContainsAny(a.Filename, "\r\n") {
			return "", nil, fmt.Errorf("mail: attachment %d has no file name, or one of several lines", i)
		}
		if _, _, err := mime.ParseMediaType(cmp.Or(a.ContentType, defaultContentType)); err != nil {
			return "", nil, fmt.Errorf("mail: attachment %q: content type %q: %w", a.Filename, a.ContentType, err)
		}
	}
	var contactID any = m.ContactID
	if m.ContactID == "" {
		contactID = nil
	}
	if m.Links == nil {
		m.Links = []Link{}
	}
	links, err := json.Marshal(m.Links)
	if err != nil {
		return "", nil, fmt.Errorf("mail: encode links: %w", err)
	}
	if m.Language == "" {
		m.Language = "en"
	}
	var purposeID, state string
	if c := m.Consent; c != nil {
		if m.ContactID == "" || c.PurposeID == "" || (c.State != consentGranted && c.State != consentWithdrawn) {
			return "", nil, fmt.Errorf("mail: a message resting on a consent needs a contact, a purpose and the state granted or withdrawn")
		}
		purposeID, state = c.PurposeID, c.State
	}
	id := uuid.Must(uuid.NewV7()).String()
	return id, []any{id, contactID, m.Kind, m.To, m.Language, m.Subject, m.Text, m.HTML, string(headers), string(links), m.ConversationID,
		m.SubjectID, StatusQueued, store.Micros(now), store.Micros(now), purposeID, state}, nil
}

// Cancel suppresses, inside tx, the messages about subjectID that have not
// gone out yet, with the reason: a reminder for an invitation that was
// confirmed meanwhile, say.
func Cancel(tx *store.Tx, subjectID, reason string) error {
	return CancelMany(tx, []string{subjectID}, reason)
}

// CancelMany is Cancel for the messages about any of subjectIDs, in one
// statement.
func CancelMany(tx *store.Tx, subjectIDs []string, reason string) error {
	if len(subjectIDs) == 0 {
		return nil
	}
	ph, args := store.In(2, subjectIDs)
	return tx.ExecLater(store.Prefix("mail: cancel messages"), `UPDATE outbox SET status = 'suppressed', reason = $1
		WHERE subject_id IN (`+ph+`) AND status = 'queued'`, append([]any{reason}, args...)...)
}

// ForgetContact deletes, inside tx, every message to or about a contact
// from the outbox and the dev mailbox, when the contact is deleted: their
// address and the text written to them go with them, and the messages'
// attachments with the messages (ON DELETE CASCADE).
func ForgetContact(tx *store.Tx, contactID string) error {
	if _, err := tx.Exec(`DELETE FROM mailbox WHERE outbox_id IN (SELECT id FROM outbox WHERE contact_id = $1)`, contactID); err != nil {
		return fmt.Errorf("mail: forget contact: %w", err)
	}
	if _, err := tx.Exec(`DELETE FROM outbox WHERE contact_id = $1`, contactID); err != nil {
		return fmt.Errorf("mail: forget contact: %w", err)
	}
	return nil
}

// EraseContactsTx erases, inside tx, what the outbox and the dev mailbox
// hold about the contacts in ids, whose personal data is erased: the dev
// mailbox's copies go, and each outbox row keeps only what identifies no
// one (kind, status, dates), its address, subject, bodies, headers and
// links blanked, its attachments deleted. Messages not yet sent are
// suppressed (ReasonErased). The contacts' conversations go too: their
// subjects are the contacts' words.
func EraseContactsTx(tx *store.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ph, args := store.In(1, ids)
	for _, q := range []string{
		`DELETE FROM mailbox WHERE outbox_id IN (SELECT id FROM outbox WHERE contact_id IN (` + ph + `))`,
		`DELETE FROM outbox_attachments WHERE outbox_id IN (SELECT id FROM outbox WHERE contact_id IN (` + ph + `))`,
		`UPDATE outbox SET status = CASE WHEN status IN ('queued', 'sending') THEN 'suppressed' ELSE status END,
			reason = CASE WHEN status IN ('queued', 'sending') THEN '` + ReasonErased + `' ELSE reason END,
			to_address = '', subject = '', text_body = '', html_body = '', headers = '{}', links = '[]', locked_until = 0
			WHERE contact_id IN (` + ph + `) AND (to_address <> '' OR subject <> '' OR text_body <> '')`,
		`DELETE FROM conversations WHERE contact_id IN (` + ph + `)`,
	} {
		if err := tx.ExecLater(store.Prefix("mail: erase contacts"), q, args...); err != nil {
			return err
		}
	}
	return nil
}

// PurgeRequestConfirmationsTx deletes, inside tx, the request
// confirmations to addresses that were no contact's (KindRequestConfirmation)
// queued before before and done with (sent, suppressed or failed), with
// their dev-mailbox copies: they hold a stranger's address, which the
// request keeps itself for as long as it needs it.
func PurgeRequestConfirmationsTx(tx *store.Tx, before time.Time) error {
	const done = `SELECT id FROM outbox WHERE kind = '` + KindRequestConfirmation + `' AND status IN ('sent', 'suppressed', 'failed') AND created_at < $1`
	if _, err := tx.Exec(`DELETE FROM mailbox WHERE outbox_id IN (`+done+`)`, store.Micros(before)); err != nil {
		return fmt.Errorf("mail: purge request confirmations: %w", err)
	}
	if _, err := tx.Exec(`DELETE FROM outbox WHERE id IN (`+done+`)`, store.Micros(before)); err != nil {
		return fmt.Errorf("mail: purge request confirmations: %w", err)
	}
	return nil
}

// Entry is a message in the outbox, for the API and status pages.
type Entry struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Subject   string     `json:"subject"`
	Status    string     `json:"status" enum:"queued,sending,sent,suppressed,failed"`
	Reason    string     `json:"reason,omitempty" doc:"why it was suppressed, or the last delivery error"`
	To        string     `json:"to,omitempty" doc:"the address it was sent to"`
	Attempts  int        `json:"attempts"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
	// ContentRemovedAt is set once the subject and bodies were removed
	// (see Pruner); the rest of the entry stays as it was.
	ContentRemovedAt *time.Time `json:"content_removed_at,omitempty" doc:"when the subject and bodies were removed, the setting sent_body_days after the email was queued; the rest stays"`
}

// ContactEntries lists the messages queued for a contact, newest first; an
// empty list when there are none.
func ContactEntries(ctx context.Context, db *store.DB, contactID string) ([]Entry, error) {
	return ContactEntriesIn(ctx, db.Read, contactID)
}

// ContactEntriesIn is ContactEntries reading through q, a snapshot say.
func ContactEntriesIn(ctx context.Context, q store.Querier, contactID string) ([]Entry, error) {
	return store.QueryAll(ctx, q, scanEntry, entrySelect+` WHERE contact_id = $1 ORDER BY created_at DESC, id DESC`, contactID)
}

// ContactEntryIn returns the message id queued for contactID, reading
// through q; nil when there is none.
func ContactEntryIn(ctx context.Context, q store.Querier, contactID, id string) (*Entry, error) {
	return oneEntry(ctx, q, entrySelect+` WHERE contact_id = $1 AND id = $2`, contactID, id)
}

// LastContactEntryIn returns the newest message of kind queued for
// contactID no later than notAfter, reading through q; nil when there is
// none.
func LastContactEntryIn(ctx context.Context, q store.Querier, contactID, kind string, notAfter time.Time) (*Entry, error) {
	return oneEntry(ctx, q, entrySelect+` WHERE contact_id = $1 AND kind = $2 AND created_at <= $3
		ORDER BY created_at DESC, id DESC LIMIT 1`, contactID, kind, store.Micros(notAfter))
}

func oneEntry(ctx context.Context, q store.Querier, query string, args ...any) (*Entry, error) {
	out, err := store.QueryAll(ctx, q, scanEntry, query, args...)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return &out[0], nil
}

const entrySelect = `SELECT id, kind, subject, status, reason, to_address, attempts, created_at, sent_at, content_removed_at FROM outbox`

func scanEntry(row store.Scanner) (Entry, error) {
	var e Entry
	var created int64
	var sent, removed sql.NullInt64
	err := row.Scan(&e.ID, &e.Kind, &e.Subject, &e.Status, &e.Reason, &e.To, &e.Attempts, &created, &sent, &removed)
	e.CreatedAt = store.FromMicros(created)
	if sent.Valid {
		t := store.FromMicros(sent.Int64)
		e.SentAt = &t
	}
	if removed.Valid {
		t := store.FromMicros(removed.Int64)
		e.ContentRemovedAt = &t
	}
	return e, err
}

// OutboxQuery selects outbox entries; an empty Status matches every status.
type OutboxQuery struct {
	Status string
	Limit  int
	After  string // the id of the last entry of the previous page
}

// CountEntries counts the outbox entries q selects, on every page: the
// total the outbox page shows.
func CountEntries(ctx context.Context, db *store.DB, q OutboxQuery) (int64, error) {
	where, args := q.where(false)
	var n int64
	if err := db.Read.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE `+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("mail: count outbox: %w", err)
	}
	return n, nil
}

// where is the condition q selects entries by, with its arguments; page
// adds the start of the page (After).
func (q OutboxQuery) where(page bool) (string, []any) {
	where, args := "TRUE", []any{}
	if q.Status != "" {
		args = append(args, q.Status)
		where += fmt.Sprintf(" AND status = $%d", len(args))
	}
	if page && q.After != "" {
		args = append(args, q.After)
		where += fmt.Sprintf(" AND id < $%d", len(args))
	}
	return where, args
}

// Entries lists outbox messages newest first, one page at a time by key,
// with the cursor of the next page (empty on the last).
func Entries(ctx context.Context, db *store.DB, q OutboxQuery) ([]Entry, string, error) {
	if q.Limit <= 0 || q.Limit > 500 {
		q.Limit = 100
	}
	where, args := q.where(true)
	args = append(args, q.Limit+1)
	out, err := store.QueryAll(ctx, db.Read, scanEntry, entrySelect+` WHERE `+where+fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, "", fmt.Errorf("mail: list outbox: %w", err)
	}
	next := ""
	if len(out) > q.Limit {
		out = out[:q.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, nil
}
