-- Events: one row for every state change, written in the change's own
-- transaction (docs/events.md). Webhook deliveries and workflow rules are
-- made from them by consumers, each of which keeps its position in
-- event_cursors and moves it in the transaction that acts on the events
-- it read, so that an event is acted on exactly when that transaction
-- commits. Writers take turns (see package store), so events commit in
-- the order of their seq: a consumer that has seen seq N has seen every
-- event before it.
--
-- data is the event's JSON as it is delivered, kept as text so that every
-- retry sends the same bytes. contact_id has no foreign key: the events of
-- a deleted contact stay, the last of them saying it was deleted.

-- depth counts the workflow actions that led to the event: 0 for a change
-- made by a person or the API, 1 for one made by a workflow rule acting on
-- such an event, and so on; rules stop at a limit, so that a rule cannot
-- trigger itself without bound.

-- +goose Up
CREATE TABLE events (
    seq         {{.Serial}},
    type        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    contact_id  TEXT,
    depth       INTEGER NOT NULL DEFAULT 0,
    occurred_at BIGINT NOT NULL,
    data        TEXT NOT NULL
);
CREATE INDEX events_by_time ON events (occurred_at);
CREATE INDEX events_by_contact ON events (contact_id, seq);

CREATE TABLE event_cursors (
    consumer TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
-- The product's own consumers start at the first event, so that nothing
-- written before they first run is passed over.
INSERT INTO event_cursors (consumer, position) VALUES ('webhooks', 0), ('workflows', 0);

-- +goose Down
DROP TABLE event_cursors;
DROP TABLE events;
