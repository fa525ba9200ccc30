-- Proof that holds outside the database (see docs/ledger.md).
--
-- signing_keys: the installation's Ed25519 signing keys, which sign consent
-- receipts (JWS) and ledger checkpoints (signed notes). id is the key's
-- note key hash (8 hex digits), name the note key name it was made with;
-- public_key is the raw public key, base64. private_key is the 32-byte
-- seed, base64, wrapped by the keyset when one is configured (wrapped_by:
-- the keyset key's id; 0: not wrapped). A rotated key keeps its public
-- half, for verification, and loses its private one (retired_at).
--
-- ledger_tree_hashes: the Merkle tree over the ledger events, in the
-- style of RFC 6962, as golang.org/x/mod/sumdb/tlog stores it: every
-- stored hash by its index (tlog.StoredHashIndex). Leaf n is the record
-- hash of event n+1's chain hash. ledger_tree holds how many events the
-- tree covers; the tree is extended after the events commit, in batches.
--
-- ledger_checkpoints: signed checkpoints, the tree's size and root hash
-- as a signed note, kept for every size one was made at.

-- +goose Up
CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    private_key TEXT NOT NULL DEFAULT '',
    wrapped_by  BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);

CREATE TABLE ledger_tree_hashes (
    idx  BIGINT PRIMARY KEY,
    hash {{.Blob}} NOT NULL
);

CREATE TABLE ledger_tree (
    id   INTEGER PRIMARY KEY,
    size BIGINT NOT NULL
);
INSERT INTO ledger_tree (id, size) VALUES (1, 0);

CREATE TABLE ledger_checkpoints (
    size       BIGINT PRIMARY KEY,
    root       TEXT NOT NULL,
    note       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE ledger_checkpoints;
DROP TABLE ledger_tree;
DROP TABLE ledger_tree_hashes;
DROP TABLE signing_keys;
