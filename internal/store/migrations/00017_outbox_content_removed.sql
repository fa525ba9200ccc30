-- An email's content (subject, bodies, headers, link placeholders) is kept
-- for the setting sent_body_days after it was queued; then it is removed
-- and the row keeps what proof and reports need: who, what kind, when,
-- whether it went and why not, and the address it went to.
-- content_removed_at is when that happened (empty: the content is whole).
--
-- The partial index holds only the messages whose content is still there,
-- oldest first, so that each removal batch reads its rows from the front
-- of a small index rather than the whole table; the rows it removes leave
-- the index.

-- +goose Up
ALTER TABLE outbox ADD COLUMN content_removed_at BIGINT;
CREATE INDEX outbox_content_kept ON outbox (created_at) WHERE content_removed_at IS NULL;

-- +goose Down
DROP INDEX outbox_content_kept;
ALTER TABLE outbox DROP COLUMN content_removed_at;
