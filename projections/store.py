"""PostgreSQL writes of the subscriber projection: one transaction per consumed batch.

Each batch is written with a fixed number of set-based statements, whatever its size: lock the
partitions' offset rows, insert the mirror rows (which also tells which events are new), load
the touched subjects with their rights requests, upsert both, advance the offsets. Offsets live
in the same transaction as the rows, so a crash at any instant leaves either the whole batch or
none of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from events.catalog import AnyEvent, purpose_of
from events.consent import SUPPRESSION_SOURCE, ObjectionReceived
from events.requests import RecipientNotified
from events.subject import Erased
from projections.chain import extend_chain
from projections.db import Conn
from projections.keys import SHRED_KEYS
from projections.outbox import queue_feed_changes
from projections.records import LedgerRecord
from projections.rows import (
    PurposesDoc,
    purposes_doc,
    request_columns,
    state_from_row,
    subscriber_columns,
)
from projections.state import SubjectState, fold

PROJECTION = "subscribers"


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one batch changed."""

    applied: int
    skipped: int
    subjects: int


_CLAIM = """
INSERT INTO projector_offsets (projection, topic, partition, next_offset)
SELECT $1, $2, p, 0 FROM unnest($3::int[]) AS p ON CONFLICT DO NOTHING
"""
_LOCK_OFFSETS = """
SELECT partition, next_offset FROM projector_offsets
WHERE projection = $1 AND topic = $2 AND partition = ANY($3::int[])
ORDER BY partition FOR UPDATE
"""
_INSERT_MIRROR = """
INSERT INTO ledger_events (event_id, topic, partition, "offset", subject_id, type,
                           schema_version, purpose, occurred_at, recorded_at, payload)
SELECT e.event_id, $1, e.partition, e.off, e.subject_id, e.type, e.schema_version, e.purpose,
       e.occurred_at, e.recorded_at, e.payload
FROM unnest($2::uuid[], $3::int[], $4::bigint[], $5::text[], $6::text[], $7::int[], $8::text[],
            $9::timestamptz[], $10::timestamptz[], $11::jsonb[])
     AS e(event_id, partition, off, subject_id, type, schema_version, purpose, occurred_at,
          recorded_at, payload)
ON CONFLICT DO NOTHING
RETURNING event_id
"""
#: The touched subjects' rows, each with its rights requests (received or not yet) as one jsonb
#: value by request id: one statement, however many subjects and requests (see
#: ``projections/rows.py``).
LOAD_SUBJECTS = """
SELECT s.subject_id, s.purposes, s.erasure, s.version, s.last_event_id, s.updated_at, s.marks,
       coalesce(r.requests, '{}'::jsonb) AS requests
FROM subscribers AS s
LEFT JOIN (
    SELECT subject_id, jsonb_object_agg(request_id::text, to_jsonb(q)) AS requests
    FROM rights_requests AS q WHERE subject_id = ANY($1::text[]) GROUP BY subject_id
) AS r USING (subject_id)
WHERE s.subject_id = ANY($1::text[])
"""
_UPSERT_SUBJECTS = """
INSERT INTO subscribers (subject_id, email, purposes, restricted_since, erased_at, erasure,
                         version, last_event_id, updated_at, marks)
SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::timestamptz[], $5::timestamptz[],
                     $6::jsonb[], $7::bigint[], $8::uuid[], $9::timestamptz[], $10::jsonb[])
ON CONFLICT (subject_id) DO UPDATE SET
    email = EXCLUDED.email, purposes = EXCLUDED.purposes,
    restricted_since = EXCLUDED.restricted_since, erased_at = EXCLUDED.erased_at,
    erasure = EXCLUDED.erasure, version = EXCLUDED.version,
    last_event_id = EXCLUDED.last_event_id, updated_at = EXCLUDED.updated_at,
    marks = EXCLUDED.marks
"""
#: Every column is set again: a receipt folded after the request's lifecycle marks fills the
#: receipt columns of a row written before it.
_UPSERT_REQUESTS = """
INSERT INTO rights_requests (request_id, subject_id, "right", channel, written, signed,
    received_by, received_at, due_on, extended_due_on, status, identity_verified_at,
    answered_at, outcome, reasons, last_event_id, marks)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::bool[],
                     $7::text[], $8::timestamptz[], $9::date[], $10::date[], $11::text[],
                     $12::timestamptz[], $13::timestamptz[], $14::text[], $15::text[],
                     $16::uuid[], $17::jsonb[])
ON CONFLICT (request_id, subject_id) DO UPDATE SET
    "right" = EXCLUDED."right", channel = EXCLUDED.channel, written = EXCLUDED.written,
    signed = EXCLUDED.signed, received_by = EXCLUDED.received_by,
    received_at = EXCLUDED.received_at, due_on = EXCLUDED.due_on,
    extended_due_on = EXCLUDED.extended_due_on, status = EXCLUDED.status,
    identity_verified_at = EXCLUDED.identity_verified_at, answered_at = EXCLUDED.answered_at,
    outcome = EXCLUDED.outcome, reasons = EXCLUDED.reasons,
    last_event_id = EXCLUDED.last_event_id, marks = EXCLUDED.marks
"""
_INSERT_NOTIFICATIONS = """
INSERT INTO recipient_notifications (event_id, subject_id, recipient_id, action, about_event_id,
                                     request_id, notified_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::uuid[],
                     $7::timestamptz[])
ON CONFLICT DO NOTHING
"""
#: The suppression list: every address an erased or objecting person holds is marked (an
#: erasure outranks an objection); the marks stay after erasure. Intake marks them before it
#: appends; this marks them again for events that reached the log another way.
#: See services/privacy/suppression.py.
_SUPPRESS = """
UPDATE identities AS i SET suppressed_at = now(), suppression = e.why, suppressed_by = e.event_id
FROM unnest($1::text[], $2::text[], $3::uuid[]) AS e(subject_id, why, event_id)
JOIN address_holders AS h ON h.subject_id = e.subject_id
WHERE i.email_key = h.email_key
  AND (i.suppression IS NULL OR (i.suppression = 'objected' AND e.why = 'erased'))
"""
#: A webhook change that was never delivered may hold an erased person's address: it goes.
_FORGET_UNDELIVERED = "DELETE FROM feed_webhook_dead_letters WHERE subject_id = ANY($1::text[])"
_ADVANCE_OFFSETS = """
UPDATE projector_offsets AS o SET next_offset = n.next_offset, updated_at = now()
FROM unnest($3::int[], $4::bigint[]) AS n(partition, next_offset)
WHERE o.projection = $1 AND o.topic = $2 AND o.partition = n.partition
"""


class SubscriberStore:
    """The subscriber projection's PostgreSQL side, for one ledger topic."""

    def __init__(self, pool: asyncpg.Pool[Any], topic: str, *, side_effects: bool = True) -> None:
        """``side_effects=False`` (replays) writes the projection only: no feed outbox rows."""
        self._pool = pool
        self._topic = topic
        self._side_effects = side_effects

    async def claim_partitions(self, partitions: Iterable[int]) -> dict[int, int]:
        """Make sure each partition has an offset row; return where to resume reading."""
        wanted = sorted(set(partitions))
        async with self._pool.acquire() as conn:
            await conn.execute(_CLAIM, PROJECTION, self._topic, wanted)
            rows = await conn.fetch(
                "SELECT partition, next_offset FROM projector_offsets"
                " WHERE projection = $1 AND topic = $2 AND partition = ANY($3::int[])",
                PROJECTION,
                self._topic,
                wanted,
            )
        return {row["partition"]: row["next_offset"] for row in rows}

    async def apply(self, records: Sequence[LedgerRecord], ends: Mapping[int, int]) -> BatchResult:
        """Write one batch in one transaction and move each partition's offset to ``ends``.

        ``records`` are in log order per partition; ``ends`` also covers positions that carry
        no record to fold (dead letters). Positions before a partition's stored offset were
        applied before (a redelivery, or a second instance) and are skipped.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_CLAIM, PROJECTION, self._topic, list(ends))
            stored = {
                row["partition"]: row["next_offset"]
                for row in await conn.fetch(_LOCK_OFFSETS, PROJECTION, self._topic, list(ends))
            }
            fresh = [r for r in records if r.offset >= stored[r.partition]]
            await extend_chain(conn, self._topic, fresh)
            new = _first_of_each(fresh, await self._insert_mirror(conn, fresh))
            events = [r.event for r in new]
            before = await self._load(conn, {e.subject_id for e in events})
            changed = fold(events, before)
            purposes = {subject: purposes_doc(state) for subject, state in changed.items()}
            await self._upsert(conn, changed.values(), purposes)
            await self._write_side_tables(conn, new)
            if self._side_effects:
                await queue_feed_changes(conn, before, changed, purposes)
            advance = {p: end for p, end in ends.items() if end > stored[p]}
            await conn.execute(
                _ADVANCE_OFFSETS, PROJECTION, self._topic, list(advance), list(advance.values())
            )
        return BatchResult(
            applied=len(events), skipped=len(records) - len(events), subjects=len(changed)
        )

    async def _insert_mirror(self, conn: Conn, records: Sequence[LedgerRecord]) -> set[UUID]:
        if not records:
            return set()
        rows = await conn.fetch(_INSERT_MIRROR, self._topic, *mirror_columns(records))
        return {row["event_id"] for row in rows}

    @staticmethod
    async def _load(conn: Conn, subject_ids: set[str]) -> dict[str, SubjectState]:
        if not subject_ids:
            return {}
        rows = await conn.fetch(LOAD_SUBJECTS, list(subject_ids))
        return {row["subject_id"]: state_from_row(row) for row in rows}

    @staticmethod
    async def _upsert(
        conn: Conn, states: Iterable[SubjectState], purposes: Mapping[str, PurposesDoc]
    ) -> None:
        batch = list(states)
        if not batch:
            return
        await conn.execute(_UPSERT_SUBJECTS, *subscriber_columns(batch, purposes))
        requests = request_columns(batch)
        if requests[0]:
            await conn.execute(_UPSERT_REQUESTS, *requests)

    async def _write_side_tables(self, conn: Conn, records: Sequence[LedgerRecord]) -> None:
        """Art. 19 notices, the suppression list, and the data keys an erasure destroys (the
        mirror, like the topic, holds only sealed personal data, which then no longer opens)."""
        notices = [r.event for r in records if isinstance(r.event, RecipientNotified)]
        if notices:
            await conn.execute(
                _INSERT_NOTIFICATIONS,
                [n.event_id for n in notices],
                [n.subject_id for n in notices],
                [n.data.recipient_id for n in notices],
                [n.data.action for n in notices],
                [n.data.about_event_id for n in notices],
                [n.data.request_id for n in notices],
                [n.occurred_at for n in notices],
            )
        suppress = {
            r.event.subject_id: ("erased" if isinstance(r.event, Erased) else "objected", r.event)
            for r in sorted(records, key=lambda r: isinstance(r.event, Erased))
            if isinstance(r.event, Erased | ObjectionReceived) and not _derived(r.event)
        }
        if suppress:
            await conn.execute(
                _SUPPRESS,
                list(suppress),
                [why for why, _ in suppress.values()],
                [event.event_id for _, event in suppress.values()],
            )
        erased = [r.event for r in records if isinstance(r.event, Erased)]
        if erased:
            await conn.execute(
                SHRED_KEYS,
                [e.subject_id for e in erased],
                [e.data.key_generation or 0 for e in erased],
                [e.event_id for e in erased],
            )
            await conn.execute(_FORGET_UNDELIVERED, [e.subject_id for e in erased])


def _derived(event: AnyEvent) -> bool:
    """An objection the ledger added because another subject's address was suppressed: it
    stops this subject's mail, but suppresses none of its other addresses."""
    return event.source == SUPPRESSION_SOURCE


def mirror_columns(records: Sequence[LedgerRecord]) -> list[list[Any]]:
    """The ``ledger_events`` mirror's columns of ``records``, as ``_INSERT_MIRROR`` takes them
    after the topic (pure, so ``bench-steps`` times what the projector runs)."""
    events = [r.event for r in records]
    return [
        [e.event_id for e in events],
        [r.partition for r in records],
        [r.offset for r in records],
        [e.subject_id for e in events],
        [e.type for e in events],
        [r.schema_version for r in records],  # as appended (before upcasting)
        [purpose_of(e) for e in events],
        [e.occurred_at for e in events],
        [e.recorded_at for e in events],
        [r.value for r in records],  # the bytes as on the log: jsonb parses them once
    ]


def _first_of_each(records: Sequence[LedgerRecord], new_ids: set[UUID]) -> list[LedgerRecord]:
    """The records whose event the mirror did not hold yet, each event once: an event the log
    holds twice (a retried append, see docs/design-notes.md) is folded once."""
    pending = set(new_ids)
    out = []
    for record in records:
        if record.event.event_id in pending:
            pending.discard(record.event.event_id)
            out.append(record)
    return out
