-- A data subject request received from an address that was no contact's
-- keeps the address in clear while it is open. When a contact with that
-- address is erased, the address goes from the request too, in the same
-- transaction; address_erased_at says when, so that the operator sees why
-- an open request names no one. The request keeps its id, kind, status
-- and note. NULL: the address was never erased (or the request had none).

-- +goose Up
ALTER TABLE subject_requests ADD COLUMN address_erased_at BIGINT;

-- +goose Down
ALTER TABLE subject_requests DROP COLUMN address_erased_at;
