"""The feed outbox: the projector queues the subjects whose feed view changed, in the same
transaction as the projection, so the feed can never disagree with the tables for long and
never skips a change (the feed publisher, ``services/feed``, drains it to Kafka)."""

from __future__ import annotations

from collections.abc import Mapping

from projections.db import Conn
from projections.feed import feed_entry, feed_view
from projections.rows import PurposesDoc
from projections.state import SubjectState

#: One row per subject: a newer change replaces one not yet published (the feed is a state,
#: not a history, so only the latest entry matters).
_QUEUE = """
INSERT INTO feed_outbox (subject_id, version, last_event_id, updated_at, entry)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::timestamptz[], $5::jsonb[])
ON CONFLICT (subject_id) DO UPDATE SET
    version = EXCLUDED.version, last_event_id = EXCLUDED.last_event_id,
    updated_at = EXCLUDED.updated_at, entry = EXCLUDED.entry, queued_at = now()
"""


def feed_changes(
    before: Mapping[str, SubjectState],
    after: Mapping[str, SubjectState],
    purposes: Mapping[str, PurposesDoc],
) -> tuple[list[SubjectState], list[bytes | None]]:
    """The states in ``after`` whose feed view differs from ``before`` (an event that changes
    nothing a mail tool sees queues nothing), each with its entry (``None``: a tombstone);
    ``purposes`` holds the ``after`` states' purposes columns, as written with them."""
    changed: list[SubjectState] = []
    entries: list[bytes | None] = []
    for state in after.values():
        view = feed_view(state, purposes[state.subject_id])
        if view != feed_view(before.get(state.subject_id)):
            changed.append(state)
            entries.append(feed_entry(state, view))
    return changed, entries


async def queue_feed_changes(
    conn: Conn,
    before: Mapping[str, SubjectState],
    after: Mapping[str, SubjectState],
    purposes: Mapping[str, PurposesDoc],
) -> int:
    """Queue the :func:`feed_changes` of a batch, in the caller's transaction."""
    changed, entries = feed_changes(before, after, purposes)
    if not changed:
        return 0
    await conn.execute(
        _QUEUE,
        [s.subject_id for s in changed],
        [s.version for s in changed],
        [s.last_event_id for s in changed],
        [s.updated_at for s in changed],
        entries,  # JSON text, or None for a tombstone
    )
    return len(changed)
