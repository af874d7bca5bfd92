-- A rights request is identified by its id together with its subject.
--
-- Intake refuses a request id that is already taken, but two intakes can accept the same
-- client-chosen id for two people at the same moment, and a producer may write to the ledger
-- topic directly. With the id alone as key, the second person's request either overwrote the
-- first one's row (another batch) or made the upsert fail for ever (the same batch), which
-- stalled the projector. Each person's requests are folded from that person's events alone,
-- so keying the row by both is what the fold already means; the same result comes out
-- whatever order the partitions are read in, live or in a replay.
ALTER TABLE rights_requests DROP CONSTRAINT rights_requests_pkey;
ALTER TABLE rights_requests ADD PRIMARY KEY (request_id, subject_id);
