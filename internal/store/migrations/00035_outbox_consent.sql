-- An email a workflow rule queued on a consent event rests on that
-- consent: consent_purpose_id and consent_state are the purpose and the
-- state the event recorded ('' for an email that rests on no consent). The
-- send gate (package mail) sets the message aside when the contact's
-- consent to the purpose is no longer in that state as it is taken for
-- sending: a partner gets no data about a contact who withdrew meanwhile.

-- +goose Up
ALTER TABLE outbox ADD COLUMN consent_purpose_id TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN consent_state TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE outbox DROP COLUMN consent_state;
ALTER TABLE outbox DROP COLUMN consent_purpose_id;
