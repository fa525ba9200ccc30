-- Webform posts about a known address, held until the owner of the address
-- confirms them by the link emailed to it: the fields (sensitive values
-- sealed with the contact's data key), consents, lists and marketing box
-- as posted, as JSON text. Nothing of it reaches the contact before then.

-- +goose Up
CREATE TABLE webform_confirmations (
    id           TEXT PRIMARY KEY,
    contact_id   TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    webform_id   TEXT NOT NULL,
    submission   TEXT NOT NULL,
    status       TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ip           TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT '',
    ended_at     BIGINT
);
CREATE INDEX webform_confirmations_by_contact ON webform_confirmations (contact_id, requested_at);

-- +goose Down
DROP TABLE webform_confirmations;
