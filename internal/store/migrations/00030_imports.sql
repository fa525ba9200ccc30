-- Imports (R24): contacts brought in from a CSV or Excel file, each with
-- where it came from and on what basis.
--
-- Consent records gain their provenance: the import they came with, when
-- the consent was collected by the file's account (collected_at, NULL when
-- not known) and the notice the person was shown, when no consent text
-- version says it. The ledger's evidence commitment covers them.
--
-- imports is one row per file: its reading (format, encoding, delimiter,
-- header, and how many data rows it has), the definition it runs with (mapping, source, consents and
-- their provenance, the duplicate policy; JSON text read and written by
-- package imports only), and its progress. position is how many data rows
-- were taken, moved in the transaction that writes them, so an import
-- interrupted by a restart resumes at the first row not written.
--
-- The file itself is kept in import_file_chunks, in the database, so that
-- any instance can take the import up; the chunks are deleted when the
-- import ends. import_rows keeps each row that failed or was skipped, with
-- its reason and its cells, for the report; import_contacts each contact
-- the import created or changed, for undo. Both are deleted with the
-- import, 30 days after it ended.

-- +goose Up
ALTER TABLE consent_records ADD COLUMN import_id TEXT NOT NULL DEFAULT '';
ALTER TABLE consent_records ADD COLUMN collected_at BIGINT;
ALTER TABLE consent_records ADD COLUMN notice TEXT NOT NULL DEFAULT '';

CREATE TABLE imports (
    id               TEXT PRIMARY KEY,
    file_name        TEXT NOT NULL,
    format           TEXT NOT NULL,
    encoding         TEXT NOT NULL DEFAULT '',
    delimiter        TEXT NOT NULL DEFAULT '',
    header           TEXT NOT NULL,
    file_size        BIGINT NOT NULL,
    total_rows       BIGINT NOT NULL DEFAULT 0,
    definition       TEXT NOT NULL DEFAULT '',
    dry_run          BOOLEAN NOT NULL DEFAULT FALSE,
    status           TEXT NOT NULL,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    position         BIGINT NOT NULL DEFAULT 0,
    created          BIGINT NOT NULL DEFAULT 0,
    updated          BIGINT NOT NULL DEFAULT 0,
    unchanged        BIGINT NOT NULL DEFAULT 0,
    skipped          BIGINT NOT NULL DEFAULT 0,
    failed           BIGINT NOT NULL DEFAULT 0,
    skipped_by       TEXT NOT NULL DEFAULT '{}',
    removed          BIGINT NOT NULL DEFAULT 0,
    actor_kind       TEXT NOT NULL,
    actor_id         TEXT NOT NULL DEFAULT '',
    error            TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    undone_at        BIGINT
);
CREATE INDEX imports_by_time ON imports (created_at);

CREATE TABLE import_file_chunks (
    import_id TEXT NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
    n         INTEGER NOT NULL,
    data      {{.Blob}} NOT NULL,
    PRIMARY KEY (import_id, n)
);

CREATE TABLE import_rows (
    import_id  TEXT NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
    row_number BIGINT NOT NULL,
    outcome    TEXT NOT NULL,
    code       TEXT NOT NULL,
    field      TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL,
    cells      TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (import_id, row_number)
);

CREATE TABLE import_contacts (
    import_id  TEXT NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL,
    created    INTEGER NOT NULL, -- 1: the import created the contact; 0: it changed one
    written_at BIGINT NOT NULL,
    PRIMARY KEY (import_id, contact_id)
);
CREATE INDEX import_contacts_by_contact ON import_contacts (contact_id);

CREATE TABLE import_mappings (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE import_mappings;
DROP TABLE import_contacts;
DROP TABLE import_rows;
DROP TABLE import_file_chunks;
DROP TABLE imports;
ALTER TABLE consent_records DROP COLUMN notice;
ALTER TABLE consent_records DROP COLUMN collected_at;
ALTER TABLE consent_records DROP COLUMN import_id;
