-- Users of the admin web UI with their roles, their sessions, the one-time
-- link that creates the first admin, and the results of ledger
-- verifications.

-- +goose Up
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL DEFAULT '',
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);

CREATE TABLE user_sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX user_sessions_by_user ON user_sessions (user_id);

CREATE TABLE setup_links (
    hash       TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- The outcome of each ledger verification, whoever ran it, so that the
-- admin UI can show the last one.
CREATE TABLE ledger_verifications (
    checked_at BIGINT NOT NULL,
    report     TEXT NOT NULL
);
CREATE INDEX ledger_verifications_by_time ON ledger_verifications (checked_at);

-- +goose Down
DROP TABLE ledger_verifications;
DROP TABLE setup_links;
DROP TABLE user_sessions;
DROP TABLE users;
