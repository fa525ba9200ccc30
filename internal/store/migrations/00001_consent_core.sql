-- The consent core: purposes with versioned consent texts, sources, field
-- definitions, contacts, consent records, opt-in changes, the ledger and API
-- tokens. Every *_at column holds microseconds since the Unix epoch (UTC).
--
-- Migrations are text/template files rendered once per database; {{.JSON}}
-- and {{.Now}} are the only differences (see migrate.go).

-- +goose Up
CREATE TABLE purposes (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    name_key         TEXT NOT NULL UNIQUE,
    legal_basis      TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    retention_days   INTEGER NOT NULL DEFAULT 0,
    default_selected BOOLEAN NOT NULL DEFAULT FALSE,
    current_version  INTEGER NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE purpose_texts (
    purpose_id TEXT NOT NULL REFERENCES purposes(id),
    version    INTEGER NOT NULL,
    text       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (purpose_id, version)
);

CREATE TABLE sources (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL UNIQUE,
    active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE field_definitions (
    name       TEXT PRIMARY KEY,
    label      TEXT NOT NULL,
    type       TEXT NOT NULL,
    personal   BOOLEAN NOT NULL DEFAULT FALSE,
    sensitive  BOOLEAN NOT NULL DEFAULT FALSE,
    mask       TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE contacts (
    id            TEXT PRIMARY KEY,
    ref           TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL UNIQUE,
    first_name    TEXT NOT NULL DEFAULT '',
    last_name     TEXT NOT NULL DEFAULT '',
    phone         TEXT NOT NULL DEFAULT '',
    country       TEXT NOT NULL DEFAULT '',
    region        TEXT NOT NULL DEFAULT '',
    language      TEXT NOT NULL DEFAULT '',
    stage         TEXT NOT NULL DEFAULT '',
    owner         TEXT NOT NULL DEFAULT '',
    fields        {{.JSON}} NOT NULL DEFAULT '{}',
    opt_in_status TEXT NOT NULL DEFAULT 'none',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE consent_records (
    id           TEXT PRIMARY KEY,
    contact_id   TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    purpose_id   TEXT NOT NULL REFERENCES purposes(id),
    state        TEXT NOT NULL,
    legal_basis  TEXT NOT NULL,
    source_id    TEXT NOT NULL REFERENCES sources(id),
    source       TEXT NOT NULL,
    text_version INTEGER NOT NULL,
    recorded_at  BIGINT NOT NULL,
    expires_at   BIGINT,
    actor_kind   TEXT NOT NULL,
    actor_id     TEXT NOT NULL DEFAULT '',
    method       TEXT NOT NULL,
    ip           TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT '',
    token_id     TEXT NOT NULL DEFAULT '',
    ledger_seq   BIGINT NOT NULL
);
CREATE INDEX consent_records_by_contact ON consent_records (contact_id, ledger_seq);
CREATE INDEX consent_records_by_position ON consent_records (ledger_seq);

CREATE TABLE consent_current (
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    purpose_id TEXT NOT NULL REFERENCES purposes(id),
    record_id  TEXT NOT NULL,
    state      TEXT NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (contact_id, purpose_id)
);
CREATE INDEX consent_current_by_purpose ON consent_current (purpose_id, state, contact_id);

CREATE TABLE opt_in_changes (
    id          TEXT PRIMARY KEY,
    contact_id  TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT NOT NULL DEFAULT '',
    method      TEXT NOT NULL,
    ip          TEXT NOT NULL DEFAULT '',
    user_agent  TEXT NOT NULL DEFAULT '',
    token_id    TEXT NOT NULL DEFAULT '',
    ledger_seq  BIGINT NOT NULL
);
CREATE INDEX opt_in_changes_by_contact ON opt_in_changes (contact_id, ledger_seq);
CREATE INDEX opt_in_changes_by_position ON opt_in_changes (ledger_seq);

CREATE TABLE ledger_events (
    seq          BIGINT PRIMARY KEY,
    recorded_at  BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    contact_ref  TEXT NOT NULL,
    purpose_id   TEXT NOT NULL DEFAULT '',
    value        TEXT NOT NULL DEFAULT '',
    legal_basis  TEXT NOT NULL DEFAULT '',
    source_id    TEXT NOT NULL DEFAULT '',
    text_version INTEGER NOT NULL DEFAULT 0,
    expires_at   BIGINT NOT NULL DEFAULT 0,
    actor_kind   TEXT NOT NULL DEFAULT '',
    actor_id     TEXT NOT NULL DEFAULT '',
    method       TEXT NOT NULL DEFAULT '',
    record_id    TEXT NOT NULL DEFAULT '',
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);

CREATE TABLE ledger_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO ledger_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes     TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

INSERT INTO purposes (id, name, name_key, legal_basis, description, retention_days, default_selected, current_version, created_at, updated_at) VALUES
    ('01930000-0000-7000-8000-000000000001', 'Sales and service', 'sales and service', 'contract',
     'To answer your questions, prepare offers, deliver what you ordered and support you afterwards.', 0, TRUE, 1,
     {{.Now}}, {{.Now}}),
    ('01930000-0000-7000-8000-000000000002', 'E-marketing', 'e-marketing', 'consent',
     'To send you newsletters and offers by email.', 0, FALSE, 1,
     {{.Now}}, {{.Now}});
INSERT INTO purpose_texts (purpose_id, version, text, created_at) VALUES
    ('01930000-0000-7000-8000-000000000001', 1, 'We use your contact details to answer your questions, prepare offers, deliver what you ordered and support you afterwards.', {{.Now}}),
    ('01930000-0000-7000-8000-000000000002', 1, 'Yes, I would like to receive newsletters and offers by email. I can unsubscribe at any time.', {{.Now}});

INSERT INTO sources (id, name, name_key, active, created_at) VALUES
    ('01930000-0000-7000-8001-000000000001', 'Web form', 'web form', TRUE, {{.Now}}),
    ('01930000-0000-7000-8001-000000000002', 'Business card', 'business card', TRUE, {{.Now}}),
    ('01930000-0000-7000-8001-000000000003', 'Meeting', 'meeting', TRUE, {{.Now}}),
    ('01930000-0000-7000-8001-000000000004', 'Email', 'email', TRUE, {{.Now}}),
    ('01930000-0000-7000-8001-000000000005', 'Phone', 'phone', TRUE, {{.Now}}),
    ('01930000-0000-7000-8001-000000000006', 'Chat', 'chat', TRUE, {{.Now}}),
    ('01930000-0000-7000-8001-000000000007', 'Import', 'import', TRUE, {{.Now}}),
    ('01930000-0000-7000-8001-000000000008', 'API', 'api', TRUE, {{.Now}}),
    ('01930000-0000-7000-8001-000000000009', 'Preferences page', 'preferences page', TRUE, {{.Now}}),
    ('01930000-0000-7000-8001-00000000000a', 'Double opt-in email', 'double opt-in email', TRUE, {{.Now}});

-- +goose Down
DROP TABLE api_tokens;
DROP TABLE ledger_head;
DROP TABLE ledger_events;
DROP TABLE opt_in_changes;
DROP TABLE consent_current;
DROP TABLE consent_records;
DROP TABLE contacts;
DROP TABLE field_definitions;
DROP TABLE sources;
DROP TABLE purpose_texts;
DROP TABLE purposes;
