package webhook

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/store"
)

// Delivery statuses: pending until it succeeds (delivered) or is given up
// (failed) GiveUpAfter after its first attempt.
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
)

// Delivery is one event sent, or to be sent, to one endpoint.
type Delivery struct {
	ID         int64  `json:"id"`
	EndpointID string `json:"endpoint_id"`
	// EventID is the event's id ("evt_<seq>"), the webhook-id of every
	// attempt and replay.
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	ContactID string `json:"contact_id,omitempty"`
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
	// NextAttemptAt is when a pending delivery is tried next.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	// LastStatus and LastError are the last attempt's HTTP status (0 for
	// none) and why it failed ("" when it did not).
	LastStatus int        `json:"last_status"`
	LastError  string     `json:"last_error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Attempt is one try at sending a delivery.
type Attempt struct {
	ID         int64     `json:"id"`
	DeliveryID int64     `json:"delivery_id"`
	At         time.Time `json:"at"`
	// StatusCode is the HTTP status of the answer, 0 when none came.
	StatusCode int `json:"status_code"`
	// Error says why it failed, "" when it succeeded.
	Error   string        `json:"error,omitempty"`
	Latency time.Duration `json:"latency"`
	// Response is the first KiB of the answer's body, as text.
	Response string `json:"response"`
}

// Page selects one page of a log, newest first: the items before Before
// (0: from the newest), at most Limit of them (0: 50; at most 200). The
// next page's Before is the last item's ID.
type Page struct {
	Before int64
	Limit  int
}

func (p Page) bound() (int64, int) {
	before, limit := p.Before, p.Limit
	if before <= 0 {
		before = 1<<63 - 1
	}
	if limit <= 0 {
		limit = 50
	}
	return before, min(limit, 200)
}

const deliveryColumns = `id, endpoint_id, event_seq, event_type, contact_id, status, attempts, next_at, last_status, last_error, created_at, finished_at`

func scanDelivery(row store.Scanner) (Delivery, error) {
	var d Delivery
	var seq, next, created int64
	var finished sql.NullInt64
	if err := row.Scan(&d.ID, &d.EndpointID, &seq, &d.EventType, &d.ContactID, &d.Status, &d.Attempts, &next,
		&d.LastStatus, &d.LastError, &created, &finished); err != nil {
		return d, err
	}
	d.EventID = "evt_" + strconv.FormatInt(seq, 10)
	d.CreatedAt, d.FinishedAt = store.FromMicros(created), optTime(finished)
	if d.Status == StatusPending {
		t := store.FromMicros(next)
		d.NextAttemptAt = &t
	}
	return d, nil
}

// Deliveries returns a page of the deliveries to the endpoint id, newest
// first; an empty slice when there are none (or no such endpoint).
func (s *Service) Deliveries(ctx context.Context, endpointID string, p Page) ([]Delivery, error) {
	before, limit := p.bound()
	out, err := store.QueryAll(ctx, s.DB.Read, scanDelivery, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE endpoint_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, endpointID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("webhook: list deliveries of %s: %w", endpointID, err)
	}
	return out, nil
}

// Delivery returns the delivery id, or errs.NotFound("webhook_delivery").
func (s *Service) Delivery(ctx context.Context, id int64) (Delivery, error) {
	return getDelivery(ctx, s.DB.Read, id)
}

func getDelivery(ctx context.Context, q store.Querier, id int64) (Delivery, error) {
	d, err := scanDelivery(q.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, errs.NotFound("webhook_delivery", "id")
	}
	if err != nil {
		return d, fmt.Errorf("webhook: read delivery %d: %w", id, err)
	}
	return d, nil
}

// Attempts returns a page of the attempts at the delivery id, newest
// first; an empty slice when there are none (or no such delivery).
func (s *Service) Attempts(ctx context.Context, deliveryID int64, p Page) ([]Attempt, error) {
	before, limit := p.bound()
	out, err := store.QueryAll(ctx, s.DB.Read, func(row store.Scanner) (Attempt, error) {
		var a Attempt
		var at, latency int64
		err := row.Scan(&a.ID, &a.DeliveryID, &at, &a.StatusCode, &a.Error, &latency, &a.Response)
		a.At, a.Latency = store.FromMicros(at), time.Duration(latency)*time.Microsecond
		return a, err
	}, `SELECT id, delivery_id, attempted_at, status_code, error, latency_us, response FROM webhook_attempts
		WHERE delivery_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, deliveryID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("webhook: list attempts of %d: %w", deliveryID, err)
	}
	return out, nil
}

// requeue is the change that makes deliveries new again: due now, with a
// fresh GiveUpAfter from their next first attempt. Their attempts so far
// stay in the log.
const requeue = `UPDATE webhook_deliveries SET status = 'pending', attempts = 0, first_attempt_at = NULL, next_at = $1,
	finished_at = NULL`

// Replay queues the delivery id to be sent again, with the same
// webhook-id, whatever its status, and returns it; or
// errs.NotFound("webhook_delivery"). It goes when its endpoint is enabled,
// after any earlier pending delivery about the same contact.
func (s *Service) Replay(ctx context.Context, id int64) (Delivery, error) {
	var out Delivery
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(requeue+` WHERE id = $2`, store.Micros(s.now()), id)
		if err != nil {
			return fmt.Errorf("webhook: replay %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.NotFound("webhook_delivery", "id")
		}
		tx.WakeAfterCommit(wakeTopic)
		out, err = getDelivery(ctx, tx, id)
		return err
	})
	return out, err
}

// ReplaySince queues again every delivery to the endpoint id of an event
// that happened at or after since, delivered ones included (a receiver that lost data needs
// those most), and returns how many; or errs.NotFound("webhook_endpoint").
// Deliveries older than the log keeps (see Prune) are gone and cannot be
// replayed. They go in the order of their events, per contact.
func (s *Service) ReplaySince(ctx context.Context, endpointID string, since time.Time) (int, error) {
	var n int64
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		if _, err := getEndpoint(ctx, tx, endpointID); err != nil {
			return err
		}
		res, err := tx.Exec(requeue+` WHERE endpoint_id = $2
			AND event_seq IN (SELECT seq FROM events WHERE occurred_at >= $3)`, store.Micros(s.now()), endpointID, store.Micros(since))
		if err != nil {
			return fmt.Errorf("webhook: replay to %s: %w", endpointID, err)
		}
		n, _ = res.RowsAffected()
		tx.WakeAfterCommit(wakeTopic)
		return nil
	})
	return int(n), err
}
