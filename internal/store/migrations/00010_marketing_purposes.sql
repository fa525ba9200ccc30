-- Purposes that govern marketing email: a contact's own opt-out withdraws
-- their consent to each of them. E-marketing has the role from the start.

-- +goose Up
ALTER TABLE purposes ADD COLUMN marketing_email BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE purposes SET marketing_email = TRUE WHERE id = '01930000-0000-7000-8000-000000000002';

-- +goose Down
ALTER TABLE purposes DROP COLUMN marketing_email;
