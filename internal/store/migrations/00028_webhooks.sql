-- Webhooks (docs/webhooks.md): endpoints that receive events, one
-- delivery per event and endpoint made by the "webhooks" consumer of
-- events in the transaction that moves its cursor, and every attempt to
-- send a delivery.
--
-- secret is the endpoint's signing secret as shown at creation
-- ("whsec_..."); previous_secret keeps signing beside it until
-- previous_until after a rotation. They are kept as they are, not under
-- the keyset: each attempt needs them, and the keyset is for contacts'
-- data (see package webhook).
--
-- event_types is a JSON array of event types; [] means every type.
-- failing_since is the first failed attempt since the last success (NULL
-- while the endpoint succeeds), which disables the endpoint after days.

-- +goose Up
CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    event_types     TEXT NOT NULL DEFAULT '[]',
    enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason TEXT NOT NULL DEFAULT '',
    secret          TEXT NOT NULL,
    previous_secret TEXT NOT NULL DEFAULT '',
    previous_until  BIGINT NOT NULL DEFAULT 0,
    last_success_at BIGINT,
    failing_since   BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- A delivery is pending until it succeeds (delivered) or gives up
-- (failed). While an attempt is under way locked_by names the instance
-- and locked_until when another may take it over. contact_id ('' for
-- none) orders the deliveries to one endpoint about one contact.
CREATE TABLE webhook_deliveries (
    id               {{.Serial}},
    endpoint_id      TEXT NOT NULL,
    event_seq        BIGINT NOT NULL,
    event_type       TEXT NOT NULL,
    contact_id       TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_at          BIGINT NOT NULL,
    first_attempt_at BIGINT,
    locked_by        TEXT NOT NULL DEFAULT '',
    locked_until     BIGINT NOT NULL DEFAULT 0,
    last_status      INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    finished_at      BIGINT
) {{.Churn}};
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (endpoint_id, event_seq);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, status, next_at, id);
CREATE INDEX webhook_deliveries_held ON webhook_deliveries (locked_until);
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, contact_id, status, event_seq);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at);

CREATE TABLE webhook_attempts (
    id           {{.Serial}},
    delivery_id  BIGINT NOT NULL,
    attempted_at BIGINT NOT NULL,
    status_code  INTEGER NOT NULL,
    error        TEXT NOT NULL,
    latency_us   BIGINT NOT NULL,
    response     TEXT NOT NULL
);
CREATE INDEX webhook_attempts_of ON webhook_attempts (delivery_id, id);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
