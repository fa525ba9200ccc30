-- Re-permission (R24): contacts without a valid marketing consent, from an
-- import or a condition, are sent the double opt-in email again; those who
-- do not confirm within the run's days are flagged (package repermission).
--
-- repermission_runs is one run: its audience (import_id, or condition: the
-- other is ''), the days a contact has to confirm, the double opt-in run
-- that sends the emails (bulk_id, '' when nobody was to be invited), and
-- its counts, written in the transaction of each change that moves them:
-- skipped is a JSON object of counts by reason, those skipped when the
-- run started and those the invitation skipped when it came to them.
-- lapsed counts the contacts lapsed and not confirmed since.
--
-- repermission_contacts is each contact of the run that was to be
-- invited: invited_at once the email was queued (lapse_due_at is then
-- invited_at + days), or skip_reason when the invitation skipped them;
-- confirmed_at when they confirmed a double opt-in; lapsed_at when the
-- days ran out first. No personal data: contact_id is a random id.
--
-- contacts.repermission_lapsed_at is the flag conditions and retention
-- read (repermission_lapsed), written by package contactstate: set when a
-- contact lapses, cleared when they confirm.

-- +goose Up
CREATE TABLE repermission_runs (
    id         TEXT PRIMARY KEY,
    import_id  TEXT NOT NULL DEFAULT '',
    condition  TEXT NOT NULL DEFAULT '',
    days       INTEGER NOT NULL,
    bulk_id    TEXT NOT NULL DEFAULT '',
    status     TEXT NOT NULL,
    total      INTEGER NOT NULL DEFAULT 0,
    invited    INTEGER NOT NULL DEFAULT 0,
    skipped    TEXT NOT NULL DEFAULT '{}',
    confirmed  INTEGER NOT NULL DEFAULT 0,
    lapsed     INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    invited_at BIGINT,
    finished_at BIGINT
);
CREATE INDEX repermission_runs_by_bulk ON repermission_runs (bulk_id);

CREATE TABLE repermission_contacts (
    run_id       TEXT NOT NULL REFERENCES repermission_runs(id) ON DELETE CASCADE,
    contact_id   TEXT NOT NULL,
    invited_at   BIGINT,
    lapse_due_at BIGINT,
    skip_reason  TEXT NOT NULL DEFAULT '',
    confirmed_at BIGINT,
    lapsed_at    BIGINT,
    PRIMARY KEY (run_id, contact_id)
);
CREATE INDEX repermission_contacts_by_contact ON repermission_contacts (contact_id);
CREATE INDEX repermission_contacts_lapse_due ON repermission_contacts (lapse_due_at) WHERE confirmed_at IS NULL AND lapsed_at IS NULL;

ALTER TABLE contacts ADD COLUMN repermission_lapsed_at BIGINT;

-- +goose Down
ALTER TABLE contacts DROP COLUMN repermission_lapsed_at;
DROP TABLE repermission_contacts;
DROP TABLE repermission_runs;
