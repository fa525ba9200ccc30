-- Webforms: a form's definition (fields, lists offered, consent boxes, the
-- marketing box, the privacy policy link) is kept as JSON text, read whole
-- and validated by internal/webform; the name is unique regardless of case.
-- The per-address rate limit of submissions is kept in memory by each
-- instance (see docs/webforms.md), so it needs no table.

-- +goose Up
CREATE TABLE webforms (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE webforms;
