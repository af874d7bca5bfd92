-- Tamper evidence: the hash chain over the ledger topic, one row per log position (a retried
-- append can put one event at two positions; ledger_events keeps one row per event), the chain
-- head of each partition (locked by the projector like its offsets), and signed checkpoints.

CREATE TABLE ledger_chain (
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    "offset"    bigint  NOT NULL,
    event_id    uuid    NOT NULL,
    prev_hash   bytea   NOT NULL,
    hash        bytea   NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
CREATE INDEX ledger_chain_by_event ON ledger_chain (event_id);
COMMENT ON TABLE ledger_chain IS
    'Per log position: hash = SHA-256(prev_hash || the record''s bytes), per partition.';

CREATE TABLE ledger_chain_heads (
    topic        text    NOT NULL,
    partition    integer NOT NULL,
    next_offset  bigint  NOT NULL,
    length       bigint  NOT NULL,
    hash         bytea   NOT NULL,
    PRIMARY KEY (topic, partition)
);
COMMENT ON TABLE ledger_chain_heads IS
    'The last hash of each partition''s chain, the positions chained, and where to go on.';

CREATE TABLE ledger_checkpoints (
    topic      text        NOT NULL,
    partition  integer     NOT NULL,
    "offset"   bigint      NOT NULL,
    length     bigint      NOT NULL,
    hash       bytea       NOT NULL,
    at         timestamptz NOT NULL,
    signature  text        NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
COMMENT ON TABLE ledger_checkpoints IS
    'Signed (Ed25519) chain heads; auditors keep copies outside the system.';
