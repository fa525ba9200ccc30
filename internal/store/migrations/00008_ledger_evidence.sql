-- Evidence inside the ledger: each consent and opt-in event commits to
-- the evidence of its consent record or opt-in change with a keyed hash
-- (ledger_events.evidence), under the installation's evidence key, which
-- the ledger package creates on first use (ledger_keys). Consent records
-- also keep the language of the consent text shown. See docs/ledger.md.

-- +goose Up
ALTER TABLE ledger_events ADD COLUMN evidence TEXT NOT NULL DEFAULT '';
ALTER TABLE consent_records ADD COLUMN text_language TEXT NOT NULL DEFAULT '';
CREATE TABLE ledger_keys (
    id         TEXT PRIMARY KEY,
    key        TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- +goose Down
-- The hash of an event written with an evidence commitment covers it: the
-- previous version cannot verify such events, and reports them altered.
DROP TABLE ledger_keys;
ALTER TABLE consent_records DROP COLUMN text_language;
ALTER TABLE ledger_events DROP COLUMN evidence;
