-- Requests by email (R19).
--
-- request_tokens: the tokens of the links that confirm a request emailed
-- to the privacy address. A sender's address may belong to no contact, so
-- these tokens are bound to the request, not to a contact (tokens.contact_id
-- is required there). Only a SHA-256 of each token is kept.
--
-- inbound_confirmations: when a confirmation link was last emailed to an
-- address, so that at most one goes to it a day, whoever forges mail in its
-- name. The address is kept only as a SHA-256 of its normalised form, and
-- only for the day the limit needs it.

-- +goose Up
CREATE TABLE request_tokens (
    id         TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES subject_requests(id) ON DELETE CASCADE,
    hash       TEXT NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX request_tokens_by_request ON request_tokens (request_id);

CREATE TABLE inbound_confirmations (
    address_hash TEXT PRIMARY KEY,
    sent_at      BIGINT NOT NULL
);
CREATE INDEX inbound_confirmations_by_time ON inbound_confirmations (sent_at);

-- +goose Down
DROP TABLE inbound_confirmations;
DROP TABLE request_tokens;
