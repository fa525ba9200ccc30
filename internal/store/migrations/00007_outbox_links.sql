-- The personal links an email carries, made as it is sent: the outbox
-- keeps a placeholder for each, and what its token is for, never a
-- working link.

-- +goose Up
ALTER TABLE outbox ADD COLUMN links TEXT NOT NULL DEFAULT '[]';

-- +goose Down
-- Messages not yet sent hold placeholders that only this version fills in:
-- they are set aside rather than sent with dead links.
UPDATE outbox SET status = 'suppressed', reason = 'links_dropped', locked_until = 0
    WHERE links <> '[]' AND status IN ('queued', 'sending');
ALTER TABLE outbox DROP COLUMN links;
