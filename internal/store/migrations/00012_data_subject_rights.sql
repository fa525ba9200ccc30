-- Data subject rights: requests with their legal deadlines, legal holds,
-- suppression entries for erased addresses, and the erasure log.
--
-- subject_requests: one row per request a contact (or someone writing from
-- an address) made. contact_id is empty while the sender is unknown or not
-- yet verified; address holds the sender's address only until the request
-- is closed or the contact erased. Every step is also a ledger event (kind
-- "request", no personal data).
--
-- legal_holds: a hold keeps a contact's data from being erased while a duty
-- (bookkeeping, a dispute) lasts. A hold is never deleted: lifting it
-- records who and when.
--
-- suppressions: a keyed hash of an erased or deleted contact's normalised
-- address, and nothing else, so that the address cannot come back
-- silently. The key is in erasure_keys.
--
-- erasure_log: every erasure or deletion, with the rule or user that did
-- it, never with personal data.

-- +goose Up
CREATE TABLE subject_requests (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    channel          TEXT NOT NULL,
    contact_id       TEXT NOT NULL DEFAULT '',
    contact_ref      TEXT NOT NULL,
    address          TEXT NOT NULL DEFAULT '',
    address_key      TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL,
    reason           TEXT NOT NULL DEFAULT '',
    note             TEXT NOT NULL DEFAULT '',
    received_at      BIGINT NOT NULL,
    due_at           BIGINT NOT NULL,
    extended_at      BIGINT,
    extension_reason TEXT NOT NULL DEFAULT '',
    actor_kind       TEXT NOT NULL,
    actor_id         TEXT NOT NULL DEFAULT '',
    updated_at       BIGINT NOT NULL,
    closed_at        BIGINT
);
CREATE INDEX subject_requests_open ON subject_requests (closed_at, due_at);
CREATE INDEX subject_requests_by_contact ON subject_requests (contact_id, received_at);
CREATE INDEX subject_requests_by_address ON subject_requests (address_key, received_at);

CREATE TABLE legal_holds (
    id           TEXT PRIMARY KEY,
    contact_id   TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    reason       TEXT NOT NULL,
    legal_basis  TEXT NOT NULL,
    set_by_kind  TEXT NOT NULL,
    set_by_id    TEXT NOT NULL DEFAULT '',
    set_at       BIGINT NOT NULL,
    until_at     BIGINT,
    lifted_at    BIGINT,
    lifted_by_id TEXT NOT NULL DEFAULT '',
    lift_reason  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX legal_holds_by_contact ON legal_holds (contact_id, lifted_at);
CREATE INDEX legal_holds_ending ON legal_holds (lifted_at, until_at);

CREATE TABLE erasure_keys (
    id         TEXT PRIMARY KEY,
    key        TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE suppressions (
    address_hash TEXT PRIMARY KEY,
    reason       TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE erasure_log (
    id         TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL,
    at         BIGINT NOT NULL,
    action     TEXT NOT NULL,
    rule       TEXT NOT NULL DEFAULT '',
    request_id TEXT NOT NULL DEFAULT '',
    actor_kind TEXT NOT NULL,
    actor_id   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX erasure_log_by_time ON erasure_log (at);
CREATE INDEX erasure_log_by_contact ON erasure_log (contact_id);

-- previously_erased_at: this contact's address was erased before, on that
-- date; it came back with a new explicit consent. retention_due_at: every
-- purpose has passed its retention period (set and cleared by the
-- retention job).
ALTER TABLE contacts ADD COLUMN previously_erased_at BIGINT;
ALTER TABLE contacts ADD COLUMN retention_due_at BIGINT;
CREATE INDEX contacts_retention_due ON contacts (id) WHERE retention_due_at IS NOT NULL;

-- What retention does once a purpose's period has passed: erase the
-- personal data (as an erasure request would) or anonymise.
ALTER TABLE purposes ADD COLUMN retention_action TEXT NOT NULL DEFAULT 'erase';

-- +goose Down
ALTER TABLE purposes DROP COLUMN retention_action;
DROP INDEX contacts_retention_due;
ALTER TABLE contacts DROP COLUMN retention_due_at;
ALTER TABLE contacts DROP COLUMN previously_erased_at;
DROP TABLE erasure_log;
DROP TABLE suppressions;
DROP TABLE erasure_keys;
DROP TABLE legal_holds;
DROP TABLE subject_requests;
