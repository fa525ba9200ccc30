-- The audit log: who changed how the service works, and from what to
-- what (package audit). A settings change writes one row per setting it
-- changed, in its own transaction. Values are the settings' JSON; a
-- secret's are never written. Rows are not changed or deleted.

-- +goose Up
CREATE TABLE audit_log (
    seq        {{.Serial}},
    at         BIGINT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    old_value  TEXT NOT NULL,
    new_value  TEXT NOT NULL
);

-- +goose Down
DROP TABLE audit_log;
