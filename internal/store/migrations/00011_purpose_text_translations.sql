-- Consent texts per language. A version's own text (purpose_texts.text) is
-- in the language it was written in: the operator's default language when
-- the version was made, English for what was there before. Its
-- translations are kept per (purpose, version, language). A version never
-- changes once made: adding or changing a translation makes a new version
-- that carries the text and the other translations over, so a consent
-- record's version and language always name the words that were shown.
-- A double opt-in invitation keeps the language its email quoted, which
-- its confirmation records.

-- +goose Up
ALTER TABLE purpose_texts ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
CREATE TABLE purpose_text_translations (
    purpose_id TEXT NOT NULL,
    version    INTEGER NOT NULL,
    language   TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (purpose_id, version, language),
    FOREIGN KEY (purpose_id, version) REFERENCES purpose_texts (purpose_id, version)
);
ALTER TABLE optin_invitations ADD COLUMN text_language TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE optin_invitations DROP COLUMN text_language;
DROP TABLE purpose_text_translations;
ALTER TABLE purpose_texts DROP COLUMN language;
