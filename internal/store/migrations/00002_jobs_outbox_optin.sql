-- Jobs, the email outbox and dev mailbox, purpose-bound tokens, double
-- opt-in invitations, settings, conversations, and the contact states the
-- send gate checks.

-- +goose Up
ALTER TABLE contacts ADD COLUMN deliverability TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE contacts ADD COLUMN soft_bounces INTEGER NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN processing_stopped_at BIGINT;
ALTER TABLE contacts ADD COLUMN erased_at BIGINT;

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL DEFAULT '{}',
    unique_key   TEXT UNIQUE,
    status       TEXT NOT NULL,
    run_at       BIGINT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    last_error   TEXT NOT NULL DEFAULT '',
    locked_by    TEXT NOT NULL DEFAULT '',
    locked_until BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    finished_at  BIGINT
);
CREATE INDEX jobs_due ON jobs (status, run_at);

CREATE TABLE conversations (
    id         TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    started_by TEXT NOT NULL,
    subject    TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    contact_id      TEXT REFERENCES contacts(id) ON DELETE SET NULL,
    kind            TEXT NOT NULL,
    to_address      TEXT NOT NULL,
    language        TEXT NOT NULL DEFAULT 'en',
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL DEFAULT '',
    headers         TEXT NOT NULL DEFAULT '{}',
    conversation_id TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    run_at          BIGINT NOT NULL,
    locked_until    BIGINT NOT NULL DEFAULT 0,
    claimed_by      TEXT NOT NULL DEFAULT '',
    subject_id      TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    message_id      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox (status, run_at);
CREATE INDEX outbox_by_contact ON outbox (contact_id, created_at);
CREATE INDEX outbox_by_subject ON outbox (subject_id);

CREATE TABLE mailbox (
    id           TEXT PRIMARY KEY,
    outbox_id    TEXT NOT NULL,
    to_address   TEXT NOT NULL,
    from_address TEXT NOT NULL,
    subject      TEXT NOT NULL,
    text_body    TEXT NOT NULL,
    html_body    TEXT NOT NULL DEFAULT '',
    headers      TEXT NOT NULL DEFAULT '{}',
    delivered_at BIGINT NOT NULL
);
CREATE INDEX mailbox_by_time ON mailbox (delivered_at);

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    hash       TEXT NOT NULL UNIQUE,
    subject_id TEXT NOT NULL DEFAULT '',
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE optin_invitations (
    id           TEXT PRIMARY KEY,
    contact_id   TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    purpose_id   TEXT NOT NULL REFERENCES purposes(id),
    text_version INTEGER NOT NULL,
    status       TEXT NOT NULL,
    trigger      TEXT NOT NULL,
    invited_at   BIGINT NOT NULL,
    reminded_at  BIGINT,
    expires_at   BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE INDEX optin_invitations_open ON optin_invitations (status, invited_at);
CREATE INDEX optin_invitations_by_contact ON optin_invitations (contact_id, invited_at);

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE settings;
DROP TABLE optin_invitations;
DROP TABLE tokens;
DROP TABLE mailbox;
DROP TABLE outbox;
DROP TABLE conversations;
DROP TABLE jobs;
ALTER TABLE contacts DROP COLUMN erased_at;
ALTER TABLE contacts DROP COLUMN processing_stopped_at;
ALTER TABLE contacts DROP COLUMN soft_bounces;
ALTER TABLE contacts DROP COLUMN deliverability;
