-- A rights request is stored once: in rights_requests, which the fold's state is loaded from.
--
-- Until now each request lived twice, in subscribers.requests (JSON, read back into the fold)
-- and in rights_requests (read by the DPO API and intake's admission), written from the same
-- fold. rights_requests now also holds what the fold derives each request from (marks), and
-- the requests whose lifecycle events were folded before their receipt: those have no receipt
-- columns yet, and every reader skips them (projections/queries.py read_requests).
--
-- Existing requests take their marks from subscribers.requests. A request written there before
-- the marks existed keeps marks NULL; the fold reads it from its columns (projections/rows.py),
-- as it read the JSON before. Such a request was always received.
ALTER TABLE rights_requests
    ALTER COLUMN "right" DROP NOT NULL,
    ALTER COLUMN channel DROP NOT NULL,
    ALTER COLUMN written DROP NOT NULL,
    ALTER COLUMN signed DROP NOT NULL,
    ALTER COLUMN received_by DROP NOT NULL,
    ALTER COLUMN received_at DROP NOT NULL,
    ADD COLUMN marks jsonb,
    ADD CONSTRAINT rights_requests_receipt_whole
        CHECK (num_nulls("right", channel, written, signed, received_by, received_at) IN (0, 6)),
    ADD CONSTRAINT rights_requests_marks_or_receipt
        CHECK (marks IS NOT NULL OR received_at IS NOT NULL);
COMMENT ON COLUMN rights_requests.marks IS
    'The events the request''s fields are derived from: receipt, verified, extension, answer, '
    'last (see the fold); NULL in rows written before them.';
COMMENT ON COLUMN rights_requests.received_at IS
    'NULL while only lifecycle events of the request were folded: not shown to readers.';

INSERT INTO rights_requests AS t (request_id, subject_id, "right", channel, written, signed,
    received_by, received_at, due_on, extended_due_on, status, identity_verified_at,
    answered_at, outcome, reasons, last_event_id, marks)
SELECT r.key::uuid, s.subject_id, r.value ->> 'right', r.value ->> 'channel',
       (r.value ->> 'written')::boolean, (r.value ->> 'signed')::boolean,
       r.value ->> 'received_by', (r.value ->> 'received_at')::timestamptz,
       (r.value ->> 'due_on')::date, (r.value ->> 'extended_due_on')::date, r.value ->> 'status',
       (r.value ->> 'identity_verified_at')::timestamptz,
       (r.value ->> 'answered_at')::timestamptz, r.value ->> 'outcome', r.value ->> 'reasons',
       (r.value ->> 'last_event_id')::uuid, nullif(r.value -> 'marks', 'null'::jsonb)
FROM subscribers AS s, jsonb_each(s.requests) AS r
ON CONFLICT (request_id, subject_id) DO UPDATE SET marks = EXCLUDED.marks;

ALTER TABLE subscribers DROP COLUMN requests;
