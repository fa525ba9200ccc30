-- The audit log covers every change of how the service treats contacts,
-- not only settings: purposes, users, API tokens, webhook endpoints and
-- webforms (package audit). kind is the kind of object an entry is about,
-- object_id its id and object_name its name when it was changed, so that
-- an entry reads on its own once the object is renamed or gone. The
-- entries written before are all of settings, which have neither id nor
-- name. The indexes serve the log's filters, newest first.

-- +goose Up
ALTER TABLE audit_log ADD COLUMN kind TEXT NOT NULL DEFAULT 'setting';
ALTER TABLE audit_log ADD COLUMN object_id TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN object_name TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_log_kind ON audit_log (kind, seq);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);

-- +goose Down
DROP INDEX audit_log_actor;
DROP INDEX audit_log_kind;
ALTER TABLE audit_log DROP COLUMN object_name;
ALTER TABLE audit_log DROP COLUMN object_id;
ALTER TABLE audit_log DROP COLUMN kind;
