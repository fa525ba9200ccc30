-- A list may be bound to a purpose: its email is sent on the strength of
-- the contact's consent to that purpose, so unsubscribing from the list
-- withdraws that consent, as an opt-out withdraws the consents that
-- govern marketing email. Empty (NULL): the list is bound to none, and
-- unsubscribing from it changes no consent.

-- +goose Up
ALTER TABLE lists ADD COLUMN purpose_id TEXT REFERENCES purposes(id);

-- +goose Down
ALTER TABLE lists DROP COLUMN purpose_id;
