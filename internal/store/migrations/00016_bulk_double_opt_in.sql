-- Bulk double opt-in and idempotent requests.
--
-- Open invitations by contact: every invitation looks up the contact's
-- open invitations (to supersede them). With an index on status alone
-- (optin_invitations_open, status and invited_at) PostgreSQL, whose
-- statistics lag behind a table that grows fast, ANDed it with the index
-- by contact, reading every open invitation for each contact invited. The
-- partial indexes answer each question with one index and no status-only
-- index is left: open invitations by contact (invite, supersede), open
-- ones by expiry (the sweep expires them), and those waiting for a reminder
-- by invitation time (the sweep reminds them).
--
-- optin_bulk: a double opt-in run for many contacts, done by a job a batch
-- at a time. contact_ids is the audience as chosen when the run was asked
-- for (a JSON array, in order), position how many of them the committed
-- batches have handled; invited and skipped (a JSON object of counts by
-- reason) are written with each batch, in its transaction, so progress is
-- exact and a batch is never done twice.
--
-- idempotency_keys: the answer to a request sent with an Idempotency-Key
-- header, by the API token that sent it and the key, with a fingerprint of
-- the request (method, path and body). status is 0 while the first request
-- is being processed; the record is written with the work the request
-- starts, and kept until expires_at.

-- +goose Up
DROP INDEX optin_invitations_open;
CREATE INDEX optin_invitations_open_by_contact ON optin_invitations (contact_id) WHERE status IN ('invited', 'reminded');
CREATE INDEX optin_invitations_open_by_expiry ON optin_invitations (expires_at) WHERE status IN ('invited', 'reminded');
CREATE INDEX optin_invitations_reminders_due ON optin_invitations (invited_at) WHERE status = 'invited';

CREATE TABLE optin_bulk (
    id          TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    trigger     TEXT NOT NULL,
    contact_ids TEXT NOT NULL,
    total       INTEGER NOT NULL,
    position    INTEGER NOT NULL DEFAULT 0,
    invited     INTEGER NOT NULL DEFAULT 0,
    skipped     TEXT NOT NULL DEFAULT '{}',
    error       TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT
);

CREATE TABLE idempotency_keys (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL DEFAULT 0,
    body        TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE optin_bulk;
DROP INDEX optin_invitations_reminders_due;
DROP INDEX optin_invitations_open_by_expiry;
DROP INDEX optin_invitations_open_by_contact;
CREATE INDEX optin_invitations_open ON optin_invitations (status, invited_at);
