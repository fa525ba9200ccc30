-- Workflow rules (R21): when an event of the trigger's type happens to a
-- contact and the condition holds, the actions run, at once or after the
-- delay. actions is the rule's list of actions as JSON text, read and
-- written by package workflow only.
--
-- workflow_runs is the log of every run: one row per rule and event,
-- written in the transaction that acted (or decided not to), so the log
-- and what was done commit together. A run with a delay waits (status
-- waiting, due_at set) until the sweep checks the condition again and acts
-- or gives up. event_data keeps the event's facts for that check. done is
-- what the run did, as JSON: outbox ids of the email queued, calls made.
-- Neither holds a field value: contact_id is a random id, as in events,
-- and has no foreign key, so a contact deleted meanwhile leaves the log
-- readable and a waiting run that finds no contact logs it. Runs are
-- pruned after 90 days.

-- +goose Up
CREATE TABLE workflow_rules (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    name_key      TEXT NOT NULL UNIQUE,
    trigger_type  TEXT NOT NULL,
    condition     TEXT NOT NULL DEFAULT '',
    actions       TEXT NOT NULL,
    delay_minutes INTEGER NOT NULL DEFAULT 0,
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX workflow_rules_by_trigger ON workflow_rules (trigger_type, enabled);

CREATE TABLE workflow_runs (
    id          TEXT PRIMARY KEY,
    rule_id     TEXT NOT NULL REFERENCES workflow_rules(id) ON DELETE CASCADE,
    contact_id  TEXT NOT NULL,
    event_seq   BIGINT NOT NULL,
    event_type  TEXT NOT NULL,
    event_depth INTEGER NOT NULL DEFAULT 0,
    event_data  TEXT NOT NULL DEFAULT '{}',
    status      TEXT NOT NULL,
    outcome     TEXT NOT NULL DEFAULT '',
    done        TEXT NOT NULL DEFAULT '[]',
    due_at      BIGINT,
    created_at  BIGINT NOT NULL,
    finished_at BIGINT
) {{.Churn}};
CREATE INDEX workflow_runs_due ON workflow_runs (status, due_at);
CREATE INDEX workflow_runs_by_rule ON workflow_runs (rule_id, id);
CREATE INDEX workflow_runs_by_contact ON workflow_runs (contact_id, id);
CREATE INDEX workflow_runs_by_time ON workflow_runs (created_at);

-- +goose Down
DROP TABLE workflow_runs;
DROP TABLE workflow_rules;
