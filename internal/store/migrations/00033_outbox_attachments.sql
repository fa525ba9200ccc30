-- Attachments of an email (a signed consent receipt, say), beside its
-- text and HTML bodies: n orders them within their message. They are
-- content, as the bodies are: removed with the content after the setting
-- sent_body_days (package mail's Pruner), when the contact is erased, and
-- with the message when it is deleted (ON DELETE CASCADE, and package mail
-- deletes them itself where it deletes messages).

-- +goose Up
CREATE TABLE outbox_attachments (
    outbox_id    TEXT NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    n            INTEGER NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    data         {{.Blob}} NOT NULL,
    PRIMARY KEY (outbox_id, n)
);

-- +goose Down
DROP TABLE outbox_attachments;
