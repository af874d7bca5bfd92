-- The eligibility feed for mail tools: an outbox the projector fills in the same transaction as
-- the projection, the per-webhook delivery state the feed publisher fans it out to, and the
-- dead letters of webhook deliveries that never succeeded.

CREATE TABLE feed_outbox (
    subject_id      text        PRIMARY KEY,
    version         bigint      NOT NULL,
    last_event_id   uuid        NOT NULL,
    updated_at      timestamptz NOT NULL,
    entry           jsonb,
    queued_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feed_outbox_oldest_first ON feed_outbox (queued_at, subject_id);
COMMENT ON TABLE feed_outbox IS
    'Subjects whose feed entry changed and is not published yet; one row per subject (the latest '
    'state), entry NULL means erased (a tombstone).';

CREATE TABLE feed_webhook_deliveries (
    webhook         text        NOT NULL,
    subject_id      text        NOT NULL,
    version         bigint      NOT NULL,
    body            jsonb       NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    PRIMARY KEY (webhook, subject_id)
);
CREATE INDEX feed_webhook_deliveries_due ON feed_webhook_deliveries (next_attempt_at);
COMMENT ON TABLE feed_webhook_deliveries IS
    'Per webhook URL and subject, the latest feed change still to be POSTed.';

CREATE TABLE feed_webhook_dead_letters (
    id              bigserial   PRIMARY KEY,
    webhook         text        NOT NULL,
    subject_id      text        NOT NULL,
    version         bigint      NOT NULL,
    body            jsonb       NOT NULL,
    attempts        integer     NOT NULL,
    reason          text        NOT NULL,
    failed_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE feed_webhook_dead_letters IS
    'Feed changes a webhook did not accept after the last try, with the last error.';
