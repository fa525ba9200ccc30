-- Why each sensitive value was revealed: the admin UI asks for a reason
-- and the access log keeps it with the reveal. Empty: no reason was asked
-- (an API client, an export, a look-up, or a reveal from before this
-- column came).
--
-- One-time grants carry something a form's post made to the page its
-- redirect shows, once: the reason a reveal was asked with (the value is
-- decrypted, and the reveal logged, as the grant is claimed), the secret
-- of a new API token. The row is found by the SHA-256 of a secret
-- that only the user's browser holds (in the redirect's address), and
-- what it carries is sealed with a key derived from that secret, so a copy
-- of the database shows neither; claiming a grant deletes it.

-- +goose Up
ALTER TABLE access_log ADD COLUMN reason TEXT NOT NULL DEFAULT '';

CREATE TABLE one_time_grants (
    hash       TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    subject    TEXT NOT NULL,
    sealed     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX one_time_grants_by_expiry ON one_time_grants (expires_at);

-- +goose Down
DROP TABLE one_time_grants;
ALTER TABLE access_log DROP COLUMN reason;
