"""The audience table of a mail tool, and the feed offsets it was built from, in one database.

Each consumed batch is one transaction: the offsets rows of its partitions are locked, records
before the stored offset are skipped (a redelivery or a second instance), every subject whose
record is newer than what the table holds loses its rows and gets that entry's eligible
purposes back, and the offsets move. So the table always equals the feed up to the stored
offsets, whatever crashes in between.

"Newer" is the feed's per-subject ``version`` (a tombstone carries it in a header), kept in
``audience_versions``: a person's records share a partition, but after partitions are added
to the topic an older record may still wait in the old one, and must not win over the newer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from projections.feed import FeedEntry

SCHEMA = """
CREATE TABLE IF NOT EXISTS audience_members (
    subject_id  text        NOT NULL,
    purpose     text        NOT NULL,
    email       text        NOT NULL,
    valid_until timestamptz,
    version     bigint      NOT NULL,
    PRIMARY KEY (subject_id, purpose)
);
CREATE TABLE IF NOT EXISTS audience_versions (
    subject_id  text        PRIMARY KEY,
    version     bigint      NOT NULL
);
CREATE TABLE IF NOT EXISTS audience_offsets (
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""
_CLAIM = """
INSERT INTO audience_offsets (topic, partition, next_offset)
SELECT $1, p, 0 FROM unnest($2::int[]) AS p ON CONFLICT DO NOTHING
"""
_LOCK = """
SELECT partition, next_offset FROM audience_offsets
WHERE topic = $1 AND partition = ANY($2::int[]) ORDER BY partition FOR UPDATE
"""
_NEWER = """
INSERT INTO audience_versions AS v (subject_id, version)
SELECT * FROM unnest($1::text[], $2::bigint[])
ON CONFLICT (subject_id) DO UPDATE SET version = EXCLUDED.version
WHERE v.version < EXCLUDED.version
RETURNING subject_id
"""
_FORGET = "DELETE FROM audience_members WHERE subject_id = ANY($1::text[])"
_ADD = """
INSERT INTO audience_members (subject_id, purpose, email, valid_until, version)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[])
"""
_ADVANCE = """
UPDATE audience_offsets AS o SET next_offset = n.next_offset
FROM unnest($2::int[], $3::bigint[]) AS n(partition, next_offset)
WHERE o.topic = $1 AND o.partition = n.partition
"""


@dataclass(frozen=True, slots=True)
class FeedRecord:
    """One feed record: its position, its key, its entry (``None``: a tombstone) and its
    version (``None``: a tombstone published before tombstones carried one)."""

    partition: int
    offset: int
    subject_id: str
    entry: FeedEntry | None
    version: int | None


class AudienceStore:
    """Applies feed records to ``audience_members``, offsets in the same transaction."""

    def __init__(self, pool: asyncpg.Pool[Any], topic: str) -> None:
        self._pool = pool
        self._topic = topic

    async def ensure_schema(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(SCHEMA)

    async def positions(self, partitions: Iterable[int]) -> dict[int, int]:
        """Where to resume each partition (0 for a new one: the feed's start)."""
        wanted = sorted(set(partitions))
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_CLAIM, self._topic, wanted)
            rows = await conn.fetch(_LOCK, self._topic, wanted)
        return {row["partition"]: row["next_offset"] for row in rows}

    async def apply(self, records: Sequence[FeedRecord]) -> int:
        """Apply a batch (log order per partition); returns how many subjects it changed."""
        partitions = sorted({r.partition for r in records})
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_CLAIM, self._topic, partitions)
            stored = {
                row["partition"]: row["next_offset"]
                for row in await conn.fetch(_LOCK, self._topic, partitions)
            }
            latest = _latest([r for r in records if r.offset >= stored[r.partition]])
            versioned = sorted(  # rows locked in one order: two instances cannot deadlock
                (r for r in latest.values() if r.version is not None), key=lambda r: r.subject_id
            )
            newer = {
                row["subject_id"]
                for row in await conn.fetch(
                    _NEWER, [r.subject_id for r in versioned], [r.version for r in versioned]
                )
            }
            changed = [r for r in latest.values() if r.version is None or r.subject_id in newer]
            members = [
                (r.subject_id, purpose, r.entry.email, p.valid_until, r.entry.version)
                for r in changed
                if r.entry is not None and r.entry.email is not None
                for purpose, p in r.entry.purposes.items()
                if p.eligible
            ]
            await conn.execute(_FORGET, [r.subject_id for r in changed])
            if members:
                await conn.execute(_ADD, *(list(c) for c in zip(*members, strict=True)))
            ends: dict[int, int] = {}
            for r in records:
                ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
            advance = {p: end for p, end in ends.items() if end > stored[p]}
            await conn.execute(_ADVANCE, self._topic, list(advance), list(advance.values()))
        return len(changed)


def _latest(records: Sequence[FeedRecord]) -> dict[str, FeedRecord]:
    """Per subject, the record of the highest version (the last one where versions are
    missing); the table's own versions are compared in SQL."""
    latest: dict[str, FeedRecord] = {}
    for r in records:
        held = latest.get(r.subject_id)
        if held is None or r.version is None or held.version is None or r.version > held.version:
            latest[r.subject_id] = r
    return latest
