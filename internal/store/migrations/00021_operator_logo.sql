-- The operator's logo, shown in the header of public pages. It is kept
-- here, not in a file, so that every instance serves the same one from
-- its own origin (the pages' Content-Security-Policy allows images from
-- there only). One row at most; the settings say whether there is one.

-- +goose Up
CREATE TABLE operator_logo (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    content_type TEXT NOT NULL,
    data {{.Blob}} NOT NULL,
    etag TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE operator_logo;
