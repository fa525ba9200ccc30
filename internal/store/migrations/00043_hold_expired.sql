-- A legal hold that ends by its until date leaves a trace: expired_at is
-- when its end was recorded (the sweep of the job erasure.holds_ended, or
-- an erasure of the contact that found it run out), with the ledger event
-- legal_hold "lifted" and the event legal_hold.lifted (cause expired), as
-- a hold lifted by hand has. NULL for a hold that is active, lifted by
-- hand, or ran out and was not recorded yet.

-- +goose Up
ALTER TABLE legal_holds ADD COLUMN expired_at BIGINT;
CREATE INDEX legal_holds_to_expire ON legal_holds (until_at) WHERE lifted_at IS NULL AND expired_at IS NULL;

-- +goose Down
DROP INDEX legal_holds_to_expire;
ALTER TABLE legal_holds DROP COLUMN expired_at;
