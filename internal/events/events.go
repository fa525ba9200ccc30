// Package events writes an event for every state change, in the change's
// own transaction, and lets consumers (webhook deliveries, workflow rules)
// read them in order, exactly once per consumer.
//
// An event is a type ("consent.granted"), the contact it is about, when it
// happened, and a small JSON document of ids and references: what a
// receiver needs to act or to fetch more through the API, never a
// sensitive value and no more personal data than that (docs/events.md).
// The shape of each type is versioned: a change that could break a
// receiver gets a new version number, and the old shape is kept until
// receivers have moved.
//
// Writers take turns on both databases (package store), so events commit in
// the order of their sequence number. A consumer keeps its position in
// event_cursors and moves it in the same transaction that acts on what it
// read (Next): a crash before that commit leaves the events unread, one
// after leaves them acted on, and none is skipped.
package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// Event is one stored event.
type Event struct {
	Seq       int64  `json:"seq"`
	Type      string `json:"type"`
	Version   int    `json:"version"`
	ContactID string `json:"contact_id,omitempty"`
	// Depth counts the workflow actions that led to the event: 0 for a
	// change made by a person, the API or the service itself.
	Depth      int             `json:"-"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

// ID is the event's public id, "evt_" and its sequence number: the
// webhook-id of every delivery of it, so that a receiver can drop a
// repeat.
func (e Event) ID() string { return "evt_" + strconv.FormatInt(e.Seq, 10) }

// wakeTopic is the store signal that new events were committed.
const wakeTopic = "events"

// Wakes returns a channel of the caller's own on which this process's
// commits of new events are signalled, for a consumer that would rather
// not wait for its poll. Every consumer gets every signal; call it once
// per consumer.
func Wakes(db *store.DB) <-chan struct{} { return db.Subscribe(wakeTopic) }

// Emit writes the event typ about contactID (empty for none) inside tx, so
// that it exists exactly when the change commits. data is encoded as JSON;
// typ must be one of Types, and data of its Data type, so that what is
// written is what docs/events.md and the OpenAPI document describe.
// Consumers in this process are woken after the commit.
func Emit(tx *store.Tx, typ, contactID string, data any, now time.Time) error {
	t, ok := typeByName[typ]
	if !ok {
		return fmt.Errorf("events: unknown event type %q", typ)
	}
	if reflect.TypeOf(data) != reflect.TypeOf(t.Data) {
		return fmt.Errorf("events: %s takes %T, not %T", typ, t.Data, data)
	}
	if id, _ := tx.Local(importKey{}).(string); id != "" {
		data = withImport(data, id)
	}
	body, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("events: encode %s: %w", typ, err)
	}
	var contact any
	if contactID != "" {
		contact = contactID
	}
	depth, _ := tx.Local(depthKey{}).(int)
	if err := tx.ExecLater(store.Prefix("events: write "+typ),
		`INSERT INTO events (type, version, contact_id, depth, occurred_at, data) VALUES ($1, $2, $3, $4, $5, $6)`,
		typ, t.Version, contact, depth, store.Micros(now), string(body)); err != nil {
		return err
	}
	if tx.Local(wakeTopic) == nil {
		tx.SetLocal(wakeTopic, true)
		tx.WakeAfterCommit(wakeTopic)
	}
	return nil
}

type depthKey struct{}

type importKey struct{}

// SetImport makes the events tx writes from now on say that the import id
// wrote them, in their data's import_id: a receiver keeping a CRM in step
// tells a contact, consent or list change that came with an import (and
// the removals of its undo) from any other. An import sets it for the
// rows of a chunk, and its undo for the contacts it removes; each sets it
// back to "" after, as other changes may share the transaction.
func SetImport(tx *store.Tx, id string) { tx.SetLocal(importKey{}, id) }

// withImport returns data, a value of a Types data type, with its ImportID
// set to id when the type has one and it is empty; a type without one
// (no import writes it) is returned as it is.
func withImport(data any, id string) any {
	v := reflect.New(reflect.TypeOf(data)).Elem()
	v.Set(reflect.ValueOf(data))
	f := v.FieldByName("ImportID")
	if !f.IsValid() || f.Kind() != reflect.String || f.String() != "" {
		return data
	}
	f.SetString(id)
	return v.Interface()
}

// SetDepth makes the events tx writes from now on count depth workflow
// actions behind them; a workflow sets it to its event's depth + 1 before
// it acts, and back after.
func SetDepth(tx *store.Tx, depth int) { tx.SetLocal(depthKey{}, depth) }

const columns = `seq, type, version, COALESCE(contact_id, ''), depth, occurred_at, data`

func scan(row store.Scanner) (Event, error) {
	var e Event
	var at int64
	var data string
	if err := row.Scan(&e.Seq, &e.Type, &e.Version, &e.ContactID, &e.Depth, &at, &data); err != nil {
		return e, err
	}
	e.OccurredAt = store.FromMicros(at)
	e.Data = json.RawMessage(data)
	return e, nil
}

// Next returns up to limit events after consumer's position, oldest first,
// and moves the position past them inside tx: whatever the caller writes in
// tx about these events commits with the move. A consumer never seen
// before starts after the newest event, so that it acts only on what
// happens from now on. It returns an empty slice when nothing is new.
func Next(tx *store.Tx, consumer string, limit int) ([]Event, error) {
	pos, err := Position(tx, consumer)
	if err != nil {
		return nil, err
	}
	rows, err := tx.Query(`SELECT `+columns+` FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, pos, limit)
	if err != nil {
		return nil, fmt.Errorf("events: read for %s: %w", consumer, err)
	}
	var out []Event
	for rows.Next() {
		e, err := scan(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("events: read for %s: %w", consumer, err)
		}
		out = append(out, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events: read for %s: %w", consumer, err)
	}
	if len(out) > 0 {
		if _, err := tx.Exec(`UPDATE event_cursors SET position = $2 WHERE consumer = $1`, consumer, out[len(out)-1].Seq); err != nil {
			return nil, fmt.Errorf("events: move %s: %w", consumer, err)
		}
	}
	return out, nil
}

// Skip moves consumer past every event there is, inside tx, without
// reading them: for a consumer that has nothing to do about any event for
// now (the webhook dispatcher while no endpoint exists). A consumer never
// seen before starts there too.
func Skip(tx *store.Tx, consumer string) error {
	if _, err := Position(tx, consumer); err != nil {
		return err
	}
	if _, err := tx.Exec(`UPDATE event_cursors SET position = n.seq FROM (SELECT COALESCE(MAX(seq), 0) AS seq FROM events) AS n
		WHERE consumer = $1 AND position < n.seq`, consumer); err != nil {
		return fmt.Errorf("events: move %s past every event: %w", consumer, err)
	}
	return nil
}

// Position returns consumer's position inside tx, creating it after the
// newest event when the consumer is new.
func Position(tx *store.Tx, consumer string) (int64, error) {
	var pos int64
	err := tx.QueryRow(`SELECT position FROM event_cursors WHERE consumer = $1`, consumer).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		if err := tx.QueryRow(`SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&pos); err != nil {
			return 0, fmt.Errorf("events: start %s: %w", consumer, err)
		}
		if _, err := tx.Exec(`INSERT INTO event_cursors (consumer, position) VALUES ($1, $2)`, consumer, pos); err != nil {
			return 0, fmt.Errorf("events: start %s: %w", consumer, err)
		}
		return pos, nil
	}
	if err != nil {
		return 0, fmt.Errorf("events: position of %s: %w", consumer, err)
	}
	return pos, nil
}

// Query selects events for List: those after a sequence number, of one type
// and about one contact when set, oldest first.
type Query struct {
	After     int64
	Type      string
	ContactID string
	Limit     int // 1 to 500
}

// MaxList is the most events one List returns.
const MaxList = 500

// List returns up to q.Limit events after q.After that match q, oldest
// first, read through rq, and the sequence number to pass as After for the
// next page: the last one returned, or q.After when none was. It reads
// without moving any consumer's position. An unknown type or a limit out of
// range is an invalid-input error naming the field.
func List(ctx context.Context, rq store.Querier, q Query) ([]Event, int64, error) {
	if q.Limit < 1 || q.Limit > MaxList {
		return nil, 0, errs.Invalid("limit", "must be 1 to %d", MaxList)
	}
	if q.After < 0 {
		return nil, 0, errs.Invalid("after", "must be a sequence number, 0 or more")
	}
	if q.Type != "" && !Known(q.Type) {
		return nil, 0, errs.Invalid("type", "is not an event type; see docs/events.md")
	}
	var where store.Where
	where.And("seq >", q.After)
	if q.Type != "" {
		where.And("type =", q.Type)
	}
	if q.ContactID != "" {
		where.And("contact_id =", q.ContactID)
	}
	limit := where.Arg(q.Limit)
	out, err := store.QueryAll(ctx, rq, scan, `SELECT `+columns+` FROM events WHERE `+where.String()+` ORDER BY seq LIMIT `+limit, where.Args...)
	if err != nil {
		return nil, 0, fmt.Errorf("events: list: %w", err)
	}
	next := q.After
	if len(out) > 0 {
		next = out[len(out)-1].Seq
	}
	return out, next, nil
}

// Envelope is an event as it is delivered to a receiver: its public id,
// type, version of the data's shape, time, and data (docs/events.md).
type Envelope struct {
	ID        string    `json:"id" doc:"evt_ and the event's sequence number; the same in every delivery of the event"`
	Type      string    `json:"type"`
	Version   int       `json:"version" doc:"the version of the data's shape for this type"`
	Timestamp time.Time `json:"timestamp" doc:"when the change happened (RFC 3339)"`
	Data      any       `json:"data"`
}

// Envelope returns e as it is delivered, with its data as stored.
func (e Event) Envelope() Envelope {
	return Envelope{ID: e.ID(), Type: e.Type, Version: e.Version, Timestamp: e.OccurredAt, Data: e.Data}
}
