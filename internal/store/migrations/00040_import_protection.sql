-- What an import keeps of a file is protected as the contacts' own data
-- is (package imports, docs/imports.md):
--
-- An uploaded file is kept encrypted (R11): each import has a data key of
-- its own, stored wrapped by the keyset in imports.file_key (base64, ''
-- when no keyset is configured and the file is kept as it came), with the
-- keyset key that wrapped it in file_key_id, so that keys rotate covers
-- it. The key goes with the file.
--
-- An erasure reaches what imports keep of the erased address:
-- import_file_addresses holds a 64-bit hash of every address in a kept
-- file, so that an erasure finds the files that hold the address without
-- reading them, and import_rows.address_hash the same hash of the address
-- in a reported row's address column (0: none), so that the erasure finds
-- the rows whose cells it must remove.

-- +goose Up
ALTER TABLE imports ADD COLUMN file_key TEXT NOT NULL DEFAULT '';
ALTER TABLE imports ADD COLUMN file_key_id BIGINT NOT NULL DEFAULT 0;

ALTER TABLE import_rows ADD COLUMN address_hash BIGINT NOT NULL DEFAULT 0;
CREATE INDEX import_rows_by_address ON import_rows (address_hash);

CREATE TABLE import_file_addresses (
    import_id    TEXT NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
    address_hash BIGINT NOT NULL,
    PRIMARY KEY (import_id, address_hash)
);
CREATE INDEX import_file_addresses_by_hash ON import_file_addresses (address_hash);

-- +goose Down
DROP TABLE import_file_addresses;
DROP INDEX import_rows_by_address;
ALTER TABLE import_rows DROP COLUMN address_hash;
ALTER TABLE imports DROP COLUMN file_key_id;
ALTER TABLE imports DROP COLUMN file_key;
