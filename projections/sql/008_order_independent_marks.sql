-- What the fold derives the restriction, the e-mail address and the erasure from, so that a
-- subscriber row is a function of the set of its subject's events, whatever order they were
-- folded in (projections/state.py):
--
--   restriction_applied, restriction_lifted  the latest of each, as {at, event_id, ...} marks
--   addresses                                 [{at, event_id, email}]: the address candidates
--   erasure_recorded_last                     the greatest event id of the subject's erasures
--
-- Existing rows get the marks their columns say: a restricted row an apply mark at
-- restricted_since, an address the mark of the row's last event, an erased row the last
-- erasure the mirror recorded.
ALTER TABLE subscribers ADD COLUMN marks jsonb NOT NULL DEFAULT '{}'::jsonb;
COMMENT ON COLUMN subscribers.marks IS
    'The marks restricted_since, email and the erasure are derived from (see the fold).';

UPDATE subscribers AS s SET marks = jsonb_build_object(
    'restriction_applied', CASE WHEN s.restricted_since IS NOT NULL THEN jsonb_build_object(
        'at', s.restricted_since, 'event_id', s.last_event_id, 'notice_version', NULL,
        'valid_until', NULL, 'kind', '') END,
    'restriction_lifted', NULL,
    'addresses', CASE WHEN s.email IS NOT NULL THEN jsonb_build_array(jsonb_build_object(
        'at', s.updated_at, 'event_id', s.last_event_id, 'email', s.email))
        ELSE '[]'::jsonb END,
    'erasure_recorded_last', CASE WHEN s.erasure IS NOT NULL THEN coalesce(
        (SELECT e.event_id FROM ledger_events AS e
         WHERE e.subject_id = s.subject_id AND e.type = 'subject.erased'
         ORDER BY e.event_id DESC LIMIT 1),
        (s.erasure ->> 'event_id')::uuid) END
);
