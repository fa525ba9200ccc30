-- The ledger's Merkle tree stored as tiles (see docs/ledger.md).
--
-- ledger_tree_tiles: the tree over the ledger events, in the tile layout
-- golang.org/x/mod/sumdb/tlog defines (tlog.Tile) with tiles of height 8:
-- the tile at level and idx holds up to 256 consecutive hashes of tree
-- level 8*level, from hash 256*idx on, concatenated (32 bytes each); the
-- tree's other hashes are computed from them. A tile at the right edge of
-- the tree holds fewer and is rewritten, longer, as the tree grows, until
-- it is full. This replaces ledger_tree_hashes, one row per stored hash,
-- about two rows written for each event where tiles write a few per
-- batch of events.
--
-- The tree is derived from the ledger events alone, so the upgrade keeps
-- none of it: ledger_tree's size goes back to 0 and the tree is rebuilt
-- from the events by the background step that extends it, the kept
-- checkpoints checking against it again once it has caught up.

-- +goose Up
DROP TABLE ledger_tree_hashes;

CREATE TABLE ledger_tree_tiles (
    level  INTEGER NOT NULL,
    idx    BIGINT NOT NULL,
    hashes {{.Blob}} NOT NULL,
    PRIMARY KEY (level, idx)
);

UPDATE ledger_tree SET size = 0 WHERE id = 1;

-- +goose Down
DROP TABLE ledger_tree_tiles;

CREATE TABLE ledger_tree_hashes (
    idx  BIGINT PRIMARY KEY,
    hash {{.Blob}} NOT NULL
);

UPDATE ledger_tree SET size = 0 WHERE id = 1;
