-- Campaigns: email to an audience, sent through the send gate.
--
-- campaign_templates: the operator's layouts (header and footer) around a
-- campaign's body.
--
-- campaigns: one row per campaign. no is a small number that recipient
-- rows and links carry instead of the id. audience holds the exclusion
-- counts by reason once the audience is resolved, and stays as it was
-- after sending. resolved_through is the last contact id resolved (the
-- audience is written in chunks, each with the cursor); claimed_through is
-- the last recipient row handed to a sender.
--
-- campaign_variants: subject and bodies per language; a campaign's bodies
-- are stored here once, never once per recipient.
--
-- campaign_recipients: one row per contact the audience reached, sent or
-- excluded (with the reason): what proof and reports need, no body. Links
-- in the email are derived from the row id with a keyed hash (the key in
-- campaign_keys), so no token is stored per recipient.
--
-- campaign_batches: the recipient rows a sender took and has not finished;
-- a batch left behind by a sender that died ends as "outcome unknown". A
-- fresh batch is every queued row of its range, left queued while in
-- flight, so that a recipient row is written twice in all (queued, then
-- its outcome) and PostgreSQL can update it in place.
--
-- campaign_retries: the recipients to try again, and from when (a backoff
-- after a temporary refusal), apart from their rows so that no index
-- covers the status.
--
-- campaign_events: opens, clicks and unsubscribes of tracked recipients,
-- erased with the contact.

-- +goose Up
CREATE TABLE campaign_templates (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL UNIQUE,
    html       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE campaigns (
    id               TEXT PRIMARY KEY,
    no               BIGINT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL,
    purpose_id       TEXT NOT NULL REFERENCES purposes(id),
    template_id      TEXT REFERENCES campaign_templates(id),
    list_ids         {{.JSON}} NOT NULL DEFAULT '[]',
    condition        TEXT NOT NULL DEFAULT '',
    opt_in_policy    TEXT NOT NULL DEFAULT '',
    default_language TEXT NOT NULL,
    audience         {{.JSON}} NOT NULL DEFAULT '{}',
    resolved         BOOLEAN NOT NULL DEFAULT FALSE,
    resolved_through TEXT NOT NULL DEFAULT '',
    claimed_through  BIGINT NOT NULL DEFAULT 0,
    scheduled_at     BIGINT,
    started_at       BIGINT,
    finished_at      BIGINT,
    created_by       TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX campaigns_by_status ON campaigns (status, scheduled_at);

CREATE TABLE campaign_variants (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    language    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    html        TEXT NOT NULL,
    text        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (campaign_id, language)
);

CREATE TABLE campaign_recipients (
    id          {{.Serial}},
    campaign_no BIGINT NOT NULL,
    contact_id  TEXT NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    tracked     BOOLEAN NOT NULL DEFAULT FALSE,
    attempts    INTEGER NOT NULL DEFAULT 0,
    sent_at     BIGINT
) {{.Churn}};
CREATE INDEX campaign_recipients_by_campaign ON campaign_recipients (campaign_no, id);
CREATE INDEX campaign_recipients_by_contact ON campaign_recipients (contact_id);

CREATE TABLE campaign_batches (
    campaign_no BIGINT NOT NULL,
    first_id    BIGINT NOT NULL,
    last_id     BIGINT NOT NULL,
    fresh       BOOLEAN NOT NULL,
    claimed_by  TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    PRIMARY KEY (campaign_no, first_id)
);

CREATE TABLE campaign_retries (
    campaign_no  BIGINT NOT NULL,
    recipient_id BIGINT NOT NULL,
    run_at       BIGINT NOT NULL,
    PRIMARY KEY (campaign_no, recipient_id)
);

CREATE TABLE campaign_keys (
    id         TEXT PRIMARY KEY,
    secret     {{.Blob}} NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE campaign_events (
    id           {{.Serial}},
    campaign_no  BIGINT NOT NULL,
    recipient_id BIGINT NOT NULL,
    contact_id   TEXT NOT NULL,
    kind         TEXT NOT NULL,
    link         INTEGER NOT NULL DEFAULT -1,
    at           BIGINT NOT NULL
);
CREATE INDEX campaign_events_by_campaign ON campaign_events (campaign_no, kind);
CREATE INDEX campaign_events_by_contact ON campaign_events (contact_id);

-- +goose Down
DROP TABLE campaign_events;
DROP TABLE campaign_keys;
DROP TABLE campaign_retries;
DROP TABLE campaign_batches;
DROP TABLE campaign_recipients;
DROP TABLE campaign_variants;
DROP TABLE campaigns;
DROP TABLE campaign_templates;
