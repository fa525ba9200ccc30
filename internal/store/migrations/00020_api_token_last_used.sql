-- When each API token was last used, to the minute: the tokens page shows
-- it, so an operator can see which tokens are still in use before
-- revoking one. Empty: never used since this column came.

-- +goose Up
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;

-- +goose Down
ALTER TABLE api_tokens DROP COLUMN last_used_at;
