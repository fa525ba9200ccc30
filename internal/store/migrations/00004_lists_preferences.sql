-- Email lists and subscriptions, changes asked for on the preferences page
-- (kept pending until the contact confirms them by email), and the
-- contact's erasure request.

-- +goose Up
ALTER TABLE contacts ADD COLUMN erasure_requested_at BIGINT;

CREATE TABLE lists (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    public      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE list_subscriptions (
    list_id    TEXT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    status     TEXT NOT NULL,
    source     TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (list_id, contact_id)
);
CREATE INDEX list_subscriptions_by_contact ON list_subscriptions (contact_id);

CREATE TABLE preference_changes (
    id           TEXT PRIMARY KEY,
    contact_id   TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    change       TEXT NOT NULL,
    status       TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    ip           TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT '',
    ended_at     BIGINT
);
CREATE INDEX preference_changes_by_contact ON preference_changes (contact_id, requested_at);

-- Links are ended by what they are about (a replaced change, say).
CREATE INDEX tokens_by_subject ON tokens (subject_id);

-- Who has been emailed a link to the preferences page since gaining
-- access to it (R15), so that each contact is told once.
CREATE TABLE preference_access (
    contact_id  TEXT PRIMARY KEY REFERENCES contacts(id) ON DELETE CASCADE,
    notified_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE preference_access;
DROP INDEX tokens_by_subject;
DROP TABLE preference_changes;
DROP TABLE list_subscriptions;
DROP TABLE lists;
ALTER TABLE contacts DROP COLUMN erasure_requested_at;
