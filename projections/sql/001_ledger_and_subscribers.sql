-- The auditors' mirror of the ledger topic, the subscriber projection, and the projector's
-- Kafka offsets (kept here, in the same transaction as the rows they produced).

CREATE TABLE ledger_events (
    event_id        uuid        PRIMARY KEY,
    topic           text        NOT NULL,
    partition       integer     NOT NULL,
    "offset"        bigint      NOT NULL,
    subject_id      text        NOT NULL,
    type            text        NOT NULL,
    schema_version  integer     NOT NULL,
    purpose         text,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    payload         jsonb       NOT NULL,
    UNIQUE (topic, partition, "offset")
);
CREATE INDEX ledger_events_by_subject ON ledger_events (subject_id, partition, "offset");
COMMENT ON TABLE ledger_events IS 'Every event as appended to the ledger topic, with its position.';

CREATE TABLE subscribers (
    subject_id      text        PRIMARY KEY,
    email           text,
    purposes        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    version         bigint      NOT NULL,
    last_event_id   uuid        NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX subscribers_by_purpose ON subscribers USING gin (purposes jsonb_path_ops);
COMMENT ON COLUMN subscribers.purposes IS
    'Per purpose: status, legal_basis, notice_version, changed_at, event_id, valid_until.';
COMMENT ON COLUMN subscribers.version IS 'Number of this subject''s events folded so far.';

CREATE TABLE projector_offsets (
    projection      text        NOT NULL,
    topic           text        NOT NULL,
    partition       integer     NOT NULL,
    next_offset     bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition)
);

CREATE TABLE intake_requests (
    idempotency_key text        PRIMARY KEY,
    request_hash    bytea       NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'done')),
    response        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    claimed_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE intake_requests IS 'Idempotency keys of HTTP intake and the answers given.';
