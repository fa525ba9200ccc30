-- What an import wrote, and what its undo removed, name the import.
-- opt_in_changes.import_id is the import whose row changed the opt-in
-- status, as consent_records.import_id is for a consent record ('' for a
-- change that came another way); the change's ledger commitment covers
-- it. erasure_log.import_id is the import whose undo removed the contact
-- (rule import_undone); '' for every other erasure or deletion.

-- +goose Up
ALTER TABLE opt_in_changes ADD COLUMN import_id TEXT NOT NULL DEFAULT '';
ALTER TABLE erasure_log ADD COLUMN import_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE erasure_log DROP COLUMN import_id;
ALTER TABLE opt_in_changes DROP COLUMN import_id;
