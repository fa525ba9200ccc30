-- Field encryption: per-contact data keys (wrapped by the keyset), the
-- encrypted values of sensitive fields with their masks and blind indexes,
-- and the access log of reveals.

-- +goose Up
ALTER TABLE field_definitions ADD COLUMN storage_purpose_id TEXT REFERENCES purposes(id);
ALTER TABLE field_definitions ADD COLUMN encrypted_at BIGINT;

CREATE TABLE contact_keys (
    contact_id TEXT PRIMARY KEY REFERENCES contacts(id) ON DELETE CASCADE,
    wrapped    TEXT NOT NULL,
    key_id     BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX contact_keys_by_key ON contact_keys (key_id);

CREATE TABLE sensitive_values (
    contact_id  TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    field       TEXT NOT NULL,
    ciphertext  TEXT NOT NULL,
    blind_index TEXT NOT NULL,
    masked      TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (contact_id, field)
);
CREATE INDEX sensitive_values_lookup ON sensitive_values (field, blind_index);

-- The keyset key new data keys must be wrapped with, so that every
-- instance can tell whether its keyset file is current.
CREATE TABLE vault_state (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    primary_key_id BIGINT NOT NULL
);

CREATE TABLE access_log (
    id         TEXT PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    field      TEXT NOT NULL,
    ip         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX access_log_by_time ON access_log (at);
CREATE INDEX access_log_by_contact ON access_log (contact_id, at);
CREATE INDEX access_log_by_actor ON access_log (actor_id, at);

-- +goose Down
DROP TABLE access_log;
DROP TABLE vault_state;
DROP TABLE sensitive_values;
DROP TABLE contact_keys;
ALTER TABLE field_definitions DROP COLUMN encrypted_at;
ALTER TABLE field_definitions DROP COLUMN storage_purpose_id;
