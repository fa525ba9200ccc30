-- A reported import row is found by an erasure through the hash of every
-- address in the cells the report keeps of it, not only the one in its
-- address column: a file may hold the address in a second column (a
-- colleague's, a "reply to"), and the report must not keep it after the
-- address is erased. import_row_addresses holds one line for each address
-- in a reported row (the hash is import_file_addresses'); it replaces
-- import_rows.address_hash, whose hashes it takes over.

-- +goose Up
CREATE TABLE import_row_addresses (
    import_id    TEXT NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
    row_number   BIGINT NOT NULL,
    address_hash BIGINT NOT NULL,
    PRIMARY KEY (import_id, row_number, address_hash)
);
CREATE INDEX import_row_addresses_by_hash ON import_row_addresses (address_hash);
INSERT INTO import_row_addresses (import_id, row_number, address_hash)
    SELECT import_id, row_number, address_hash FROM import_rows WHERE address_hash <> 0;
DROP INDEX import_rows_by_address;
ALTER TABLE import_rows DROP COLUMN address_hash;

-- +goose Down
ALTER TABLE import_rows ADD COLUMN address_hash BIGINT NOT NULL DEFAULT 0;
UPDATE import_rows SET address_hash = COALESCE((SELECT MIN(a.address_hash) FROM import_row_addresses a
    WHERE a.import_id = import_rows.import_id AND a.row_number = import_rows.row_number), 0);
CREATE INDEX import_rows_by_address ON import_rows (address_hash);
DROP TABLE import_row_addresses;
