-- The personal links an email carries, made as it is sent: the outbox
-- keeps a placeholder for each, and what its token is for, never a
-- working link.

-- +goose Up
ALTER TABLE outbox ADD COLUMN links TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE outbox DROP COLUMN links;
