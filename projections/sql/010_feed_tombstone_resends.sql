-- Erasures whose tombstone the feed publisher sends a second time, once the feed topic's segment
-- roll time has passed: that append rolls the segment holding the first tombstone, so the log
-- cleaner can drop the older records that still hold the address (services/feed/forgetting.py).

CREATE TABLE feed_tombstone_resends (
    subject_id      text        PRIMARY KEY,
    version         bigint      NOT NULL,
    due_at          timestamptz NOT NULL
);
CREATE INDEX feed_tombstone_resends_due ON feed_tombstone_resends (due_at);
COMMENT ON TABLE feed_tombstone_resends IS
    'Per erased subject, when its tombstone (of this version) is to be sent to the feed topic '
    'again; a newer entry published for the subject cancels it.';
