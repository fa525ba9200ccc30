-- A legal hold that stopped an erasure remembers it: erasure_waiting_at is
-- when the erasure was refused because of the hold (the part the hold does
-- not need was erased then), and waiting_request_id the request it was
-- fulfilling, if any. When the hold is lifted or its until date passes and
-- no other hold is active, the waiting erasure proceeds by itself and the
-- mark is cleared.
--
-- erasure_log.note: the operator's note on why a contact was erased (the
-- API's and the admin page's note), which, like the rest of the log, must
-- name no one.
--
-- The indexes let an erasure find a contact's links, dev-mailbox copies and
-- conversations without reading the whole table.

-- +goose Up
ALTER TABLE legal_holds ADD COLUMN erasure_waiting_at BIGINT;
ALTER TABLE legal_holds ADD COLUMN waiting_request_id TEXT NOT NULL DEFAULT '';
CREATE INDEX legal_holds_waiting ON legal_holds (erasure_waiting_at);
ALTER TABLE erasure_log ADD COLUMN note TEXT NOT NULL DEFAULT '';
CREATE INDEX tokens_by_contact ON tokens (contact_id);
CREATE INDEX mailbox_by_outbox ON mailbox (outbox_id);
CREATE INDEX conversations_by_contact ON conversations (contact_id);

-- +goose Down
DROP INDEX conversations_by_contact;
DROP INDEX mailbox_by_outbox;
DROP INDEX tokens_by_contact;
ALTER TABLE erasure_log DROP COLUMN note;
DROP INDEX legal_holds_waiting;
ALTER TABLE legal_holds DROP COLUMN waiting_request_id;
ALTER TABLE legal_holds DROP COLUMN erasure_waiting_at;
