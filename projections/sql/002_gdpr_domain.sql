-- The GDPR domain: restriction and erasure traces on subscribers, rights requests with their
-- deadlines, and Art. 19 notices to recipients.

ALTER TABLE subscribers
    ADD COLUMN restricted_since timestamptz,
    ADD COLUMN erased_at        timestamptz,
    ADD COLUMN erasure          jsonb,
    ADD COLUMN requests         jsonb NOT NULL DEFAULT '{}'::jsonb;
COMMENT ON COLUMN subscribers.erased_at IS
    'When the personal data was erased; the row stays as a non-identifying trace.';

CREATE TABLE rights_requests (
    request_id           uuid        PRIMARY KEY,
    subject_id           text        NOT NULL,
    "right"              text        NOT NULL,
    channel              text        NOT NULL,
    written              boolean     NOT NULL,
    signed               boolean     NOT NULL,
    received_by          text        NOT NULL,
    received_at          timestamptz NOT NULL,
    due_on               date,
    extended_due_on      date,
    status               text        NOT NULL,
    identity_verified_at timestamptz,
    answered_at          timestamptz,
    outcome              text,
    reasons              text,
    last_event_id        uuid        NOT NULL
);
CREATE INDEX rights_requests_by_subject ON rights_requests (subject_id);
CREATE INDEX rights_requests_open ON rights_requests (due_on) WHERE answered_at IS NULL;

CREATE TABLE recipient_notifications (
    event_id        uuid        PRIMARY KEY,
    subject_id      text        NOT NULL,
    recipient_id    text        NOT NULL,
    action          text        NOT NULL,
    about_event_id  uuid        NOT NULL,
    request_id      uuid,
    notified_at     timestamptz NOT NULL
);
CREATE INDEX recipient_notifications_by_subject ON recipient_notifications (subject_id);
