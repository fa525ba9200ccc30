// Package webhook sends events to the operator's own systems over HTTPS,
// signed after the Standard Webhooks scheme (B5, docs/webhooks.md).
//
// An endpoint is a URL that wants some or all event types. The "webhooks"
// consumer of events (Dispatch) writes one delivery per event and
// endpoint that wants it, in the transaction that moves its cursor, so
// none is made twice or skipped. Workers (Worker) claim due deliveries
// with a lease, POST them and record each attempt; a failure is tried
// again with backoff for three days. Deliveries to one endpoint about one
// contact are sent in the order of their events; others go in parallel.
// A crash may repeat a delivery (with the same webhook-id, so a receiver
// can drop it) but never loses one.
//
// Signing secrets are kept in the database as they are shown
// ("whsec_..."), not under the keyset of package vault: every attempt
// needs the secret itself, a keyset is optional on PostgreSQL, and the
// keyset's rotation and retirement only know contacts' data keys. The
// secret authenticates Consentry to the receiver, so whoever can read the
// database could forge a webhook, not read contacts' sensitive values.
package webhook

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/audit"
	"github.com/consentry/consentry/internal/errs"
	"github.com/consentry/consentry/internal/events"
	"github.com/consentry/consentry/internal/mail"
	"github.com/consentry/consentry/internal/store"
)

// Consumer is the name under which deliveries are made from events.
const Consumer = "webhooks"

// Defaults of the Service's tunables.
const (
	DefaultRotationOverlap = 24 * time.Hour
	DefaultDisableAfter    = 5 * 24 * time.Hour
)

// Service keeps endpoints and their deliveries.
type Service struct {
	DB  *store.DB
	Now func() time.Time
	Log *slog.Logger
	// Policy says which addresses endpoints may have and be called at.
	Policy Policy
	// Mail, BaseURL and Sender write the email that tells the operator an
	// endpoint was turned off (to the privacy address in the settings).
	Mail    *mail.Templates
	BaseURL string
	Sender  string
	// RotationOverlap is how long a rotated-out secret keeps signing
	// beside the new one (0: DefaultRotationOverlap).
	RotationOverlap time.Duration
	// DisableAfter is how long an endpoint may go without a success while
	// its deliveries fail before it is turned off (0: DefaultDisableAfter).
	DisableAfter time.Duration

	analyzed struct { // see analyzeAfter
		mu            sync.Mutex
		written, base int64
		at            time.Time
	}
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return store.Now(time.Now)
	}
	return store.Now(s.Now)
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// Endpoint is where deliveries go. Its secret is never read back: it is
// returned once, by Create and RotateSecret.
type Endpoint struct {
	ID          string `json:"id"`
	URL         string `json:"url"`
	Description string `json:"description"`
	// EventTypes are the event types it wants; empty means every type,
	// including types added later.
	EventTypes []string `json:"event_types"`
	Enabled    bool     `json:"enabled"`
	// DisabledReason says why Consentry turned it off, or "".
	DisabledReason string     `json:"disabled_reason,omitempty"`
	LastSuccessAt  *time.Time `json:"last_success_at,omitempty"`
	// FailingSince is its first failed attempt since the last success.
	FailingSince *time.Time `json:"failing_since,omitempty"`
	// PreviousSecretUntil is when a rotated-out secret stops signing
	// (nil when none signs).
	PreviousSecretUntil *time.Time `json:"previous_secret_until,omitempty"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

// Wants reports whether the endpoint wants events of type typ.
func (e *Endpoint) Wants(typ string) bool {
	return len(e.EventTypes) == 0 || slices.Contains(e.EventTypes, typ)
}

// EndpointInput is a new endpoint. Enabled nil means enabled.
type EndpointInput struct {
	URL         string
	Description string
	EventTypes  []string
	Enabled     *bool
}

// EndpointPatch changes some of an endpoint; nil fields stay. Turning an
// endpoint on again clears why it was turned off and its failing streak,
// and makes its pending deliveries due at once: those of the events that
// happened while it was off, and those it was retrying.
type EndpointPatch struct {
	URL         *string
	Description *string
	EventTypes  *[]string
	Enabled     *bool
}

const maxDescription = 500

// checkTypes returns the event types sorted without repeats, or an error
// naming the field event_types.
func checkTypes(types []string) ([]string, error) {
	out := []string{}
	for _, t := range types {
		if !events.Known(t) {
			return nil, errs.Invalid("event_types", "%q is not an event type", t)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Create adds an endpoint and returns it with its signing secret, which is
// shown this once. Bad input is an error naming the field, and nothing is
// written. Events that happen from its creation on are delivered to it.
// The audit log names by as its maker, and the secret with no value.
func (s *Service) Create(ctx context.Context, by audit.Actor, in EndpointInput) (Endpoint, string, error) {
	u, err := s.Policy.CheckURL(in.URL)
	if err != nil {
		return Endpoint{}, "", err
	}
	if err := errs.OptionalLine("description", &in.Description, maxDescription); err != nil {
		return Endpoint{}, "", err
	}
	types, err := checkTypes(in.EventTypes)
	if err != nil {
		return Endpoint{}, "", err
	}
	secret := NewSecret()
	now := s.now()
	e := Endpoint{ID: uuid.Must(uuid.NewV7()).String(), URL: u, Description: in.Description, EventTypes: types,
		Enabled: in.Enabled == nil || *in.Enabled, CreatedAt: now, UpdatedAt: now}
	typesJSON, _ := json.Marshal(types)
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		// The consumer's cursor exists from now on, so that every event
		// after this endpoint was made reaches it.
		if _, err := events.Position(tx, Consumer); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO webhook_endpoints (id, url, description, event_types, enabled, secret, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, e.ID, e.URL, e.Description, string(typesJSON), e.Enabled, secret, store.Micros(now))
		if err != nil {
			return fmt.Errorf("webhook: create endpoint: %w", err)
		}
		return e.auditTx(tx, by, audit.ActionWebhookCreated, append(audit.Changes(nil, e.audited()), audit.Change{Name: "secret"}), now)
	})
	if err != nil {
		return Endpoint{}, "", err
	}
	return e, secret, nil
}

// auditedEndpoint is what the audit log keeps of an endpoint: where
// contacts' data goes, and which of it. Its secret is not here: an entry
// names it, with no value.
type auditedEndpoint struct {
	URL         string   `json:"url"`
	Description string   `json:"description"`
	EventTypes  []string `json:"event_types"`
	Enabled     bool     `json:"enabled"`
}

func (e *Endpoint) audited() auditedEndpoint {
	return auditedEndpoint{URL: e.URL, Description: e.Description, EventTypes: e.EventTypes, Enabled: e.Enabled}
}

// auditTx writes the audit log's entries of changes of e by by; the
// endpoint's name is its URL.
func (e *Endpoint) auditTx(tx *store.Tx, by audit.Actor, action string, changes []audit.Change, now time.Time) error {
	return audit.RecordTx(tx, by, audit.Object{Kind: audit.KindWebhook, ID: e.ID, Name: e.URL}, action, changes, now)
}

const endpointColumns = `id, url, description, event_types, enabled, disabled_reason, previous_secret, previous_until,
	last_success_at, failing_since, created_at, updated_at`

func scanEndpoint(row store.Scanner) (Endpoint, error) {
	var e Endpoint
	var types, previous string
	var until, created, updated int64
	var success, failing sql.NullInt64
	if err := row.Scan(&e.ID, &e.URL, &e.Description, &types, &e.Enabled, &e.DisabledReason, &previous, &until,
		&success, &failing, &created, &updated); err != nil {
		return e, err
	}
	if err := json.Unmarshal([]byte(types), &e.EventTypes); err != nil {
		return e, fmt.Errorf("webhook: event types of %s: %w", e.ID, err)
	}
	e.CreatedAt, e.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	e.LastSuccessAt, e.FailingSince = optTime(success), optTime(failing)
	if previous != "" {
		t := store.FromMicros(until)
		e.PreviousSecretUntil = &t
	}
	return e, nil
}

func optTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := store.FromMicros(v.Int64)
	return &t
}

// Get returns the endpoint id, or errs.NotFound("webhook_endpoint") when
// there is none.
func (s *Service) Get(ctx context.Context, id string) (Endpoint, error) {
	return getEndpoint(ctx, s.DB.Read, id)
}

func getEndpoint(ctx context.Context, q store.Querier, id string) (Endpoint, error) {
	e, err := scanEndpoint(q.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, errs.NotFound("webhook_endpoint", "id")
	}
	if err != nil {
		return e, fmt.Errorf("webhook: read endpoint %s: %w", id, err)
	}
	return e, nil
}

// List returns every endpoint, oldest first (an installation has a few);
// an empty slice when there are none.
func (s *Service) List(ctx context.Context) ([]Endpoint, error) {
	out, err := store.QueryAll(ctx, s.DB.Read, scanEndpoint, `SELECT `+endpointColumns+` FROM webhook_endpoints ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("webhook: list endpoints: %w", err)
	}
	return out, nil
}

// Update applies p to the endpoint id and returns it, or
// errs.NotFound("webhook_endpoint") when there is none. Bad input is an
// error naming the field, and nothing is written. The audit log names by
// for each field that changed.
func (s *Service) Update(ctx context.Context, by audit.Actor, id string, p EndpointPatch) (Endpoint, error) {
	if p.URL != nil {
		u, err := s.Policy.CheckURL(*p.URL)
		if err != nil {
			return Endpoint{}, err
		}
		p.URL = &u
	}
	if p.Description != nil {
		if err := errs.OptionalLine("description", p.Description, maxDescription); err != nil {
			return Endpoint{}, err
		}
	}
	if p.EventTypes != nil {
		types, err := checkTypes(*p.EventTypes)
		if err != nil {
			return Endpoint{}, err
		}
		p.EventTypes = &types
	}
	var out Endpoint
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		e, err := getEndpoint(ctx, tx, id)
		if err != nil {
			return err
		}
		before := e.audited()
		if p.URL != nil {
			e.URL = *p.URL
		}
		if p.Description != nil {
			e.Description = *p.Description
		}
		if p.EventTypes != nil {
			e.EventTypes = *p.EventTypes
		}
		turnedOn := false
		if p.Enabled != nil && *p.Enabled != e.Enabled {
			e.Enabled = *p.Enabled
			e.DisabledReason = ""
			if e.Enabled {
				e.FailingSince, turnedOn = nil, true
			}
		}
		e.UpdatedAt = s.now()
		types, _ := json.Marshal(e.EventTypes)
		var failing any
		if e.FailingSince != nil {
			failing = store.Micros(*e.FailingSince)
		}
		if _, err := tx.Exec(`UPDATE webhook_endpoints SET url = $2, description = $3, event_types = $4, enabled = $5,
			disabled_reason = $6, failing_since = $7, updated_at = $8 WHERE id = $1`,
			id, e.URL, e.Description, string(types), e.Enabled, e.DisabledReason, failing, store.Micros(e.UpdatedAt)); err != nil {
			return fmt.Errorf("webhook: update endpoint %s: %w", id, err)
		}
		if err := e.auditTx(tx, by, audit.ActionWebhookChanged, audit.Changes(before, e.audited()), e.UpdatedAt); err != nil {
			return err
		}
		out = e
		if turnedOn {
			// What waited while it was off goes now, in order: a delivery
			// it was retrying when it was turned off would otherwise hold
			// back the later ones about its contact until its next try.
			if _, err := tx.Exec(`UPDATE webhook_deliveries SET next_at = $2 WHERE endpoint_id = $1 AND status = 'pending' AND next_at > $2`,
				id, store.Micros(e.UpdatedAt)); err != nil {
				return fmt.Errorf("webhook: make the deliveries to %s due: %w", id, err)
			}
		}
		if e.Enabled {
			tx.WakeAfterCommit(wakeTopic) // its waiting deliveries may go
		}
		return nil
	})
	return out, err
}

// Delete removes the endpoint id with its deliveries and their attempts,
// or returns errs.NotFound("webhook_endpoint") when there is none. The
// audit log names by, and keeps what the endpoint was.
func (s *Service) Delete(ctx context.Context, by audit.Actor, id string) error {
	return s.DB.Write(ctx, func(tx *store.Tx) error {
		e, err := getEndpoint(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM webhook_endpoints WHERE id = $1`, id); err != nil {
			return fmt.Errorf("webhook: delete endpoint %s: %w", id, err)
		}
		if err := e.auditTx(tx, by, audit.ActionWebhookDeleted, audit.Changes(e.audited(), nil), s.now()); err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE endpoint_id = $1)`, id); err != nil {
			return fmt.Errorf("webhook: delete attempts of %s: %w", id, err)
		}
		if _, err := tx.Exec(`DELETE FROM webhook_deliveries WHERE endpoint_id = $1`, id); err != nil {
			return fmt.Errorf("webhook: delete deliveries of %s: %w", id, err)
		}
		return nil
	})
}

// RotateSecret gives the endpoint id a new signing secret and returns it,
// shown this once. The secret it replaces keeps signing beside the new one
// (two signatures in webhook-signature) for RotationOverlap, so that the
// receiver can switch without losing a delivery; a secret rotated out
// earlier stops at once. It returns errs.NotFound("webhook_endpoint") when
// there is no such endpoint. The audit log names by, and the secret with
// no value.
func (s *Service) RotateSecret(ctx context.Context, by audit.Actor, id string) (string, error) {
	overlap := s.RotationOverlap
	if overlap <= 0 {
		overlap = DefaultRotationOverlap
	}
	secret := NewSecret()
	err := s.DB.Write(ctx, func(tx *store.Tx) error {
		e, err := getEndpoint(ctx, tx, id)
		if err != nil {
			return err
		}
		now := s.now()
		if _, err := tx.Exec(`UPDATE webhook_endpoints SET previous_secret = secret, previous_until = $2, secret = $3, updated_at = $4
			WHERE id = $1`, id, store.Micros(now.Add(overlap)), secret, store.Micros(now)); err != nil {
			return fmt.Errorf("webhook: rotate the secret of %s: %w", id, err)
		}
		return e.auditTx(tx, by, audit.ActionWebhookSecretRotated, []audit.Change{{Name: "secret"}}, now)
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}
