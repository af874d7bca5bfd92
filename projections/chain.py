"""The hash chain in PostgreSQL: extended by the projector in its batch transaction, read by
``consent-ledger verify``, signed into checkpoints.

The chain head of each partition is locked ``FOR UPDATE`` (in partition order, like the
projector's offsets) and positions below its ``next_offset`` are skipped, so a redelivered
batch or a second projector instance can never fork the chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import asyncpg

from events.chain import GENESIS, link
from projections.db import Conn
from projections.records import LedgerRecord

_CLAIM_HEADS = """
INSERT INTO ledger_chain_heads (topic, partition, next_offset, length, hash)
SELECT $1, p, 0, 0, $3 FROM unnest($2::int[]) AS p ON CONFLICT DO NOTHING
"""
_LOCK_HEADS = """
SELECT partition, next_offset, length, hash FROM ledger_chain_heads
WHERE topic = $1 AND partition = ANY($2::int[])
ORDER BY partition FOR UPDATE
"""
_INSERT_LINKS = """
INSERT INTO ledger_chain (topic, partition, "offset", event_id, prev_hash, hash)
SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::uuid[], $5::bytea[], $6::bytea[])
"""
_ADVANCE_HEADS = """
UPDATE ledger_chain_heads AS h
SET next_offset = n.next_offset, length = h.length + n.added, hash = n.hash
FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::bytea[])
     AS n(partition, next_offset, added, hash)
WHERE h.topic = $1 AND h.partition = n.partition
"""


@dataclass(frozen=True, slots=True)
class Head:
    """Where a partition's chain stands: the hash of its last position."""

    partition: int
    next_offset: int
    length: int
    hash: bytes


async def extend_chain(conn: Conn, topic: str, records: Sequence[LedgerRecord]) -> None:
    """Chain ``records`` (log order per partition) onto their partitions' heads, in the
    caller's transaction: two statements whatever the batch size, plus the head lock."""
    if not records:
        return
    partitions = sorted({r.partition for r in records})
    await conn.execute(_CLAIM_HEADS, topic, partitions, GENESIS)
    locked = await conn.fetch(_LOCK_HEADS, topic, partitions)
    start = {row["partition"]: head_from_row(row) for row in locked}
    heads = dict(start)
    links: list[tuple[int, int, UUID, bytes, bytes]] = []
    for record in records:
        head = heads[record.partition]
        if record.offset < head.next_offset:
            continue  # chained before: a redelivery or a second instance
        digest = link(head.hash, record.value)
        links.append((record.partition, record.offset, record.event.event_id, head.hash, digest))
        heads[record.partition] = replace(
            head, next_offset=record.offset + 1, length=head.length + 1, hash=digest
        )
    if not links:
        return
    await conn.execute(_INSERT_LINKS, topic, *(list(column) for column in zip(*links, strict=True)))
    moved = [heads[p] for p in partitions if heads[p] != start[p]]
    await conn.execute(
        _ADVANCE_HEADS,
        topic,
        [h.partition for h in moved],
        [h.next_offset for h in moved],
        [h.length - start[h.partition].length for h in moved],
        [h.hash for h in moved],
    )


async def read_heads(conn: Conn | asyncpg.Pool[Any], topic: str) -> list[Head]:
    """Every partition's chain head, by partition."""
    rows = await conn.fetch(
        "SELECT partition, next_offset, length, hash FROM ledger_chain_heads"
        " WHERE topic = $1 ORDER BY partition",
        topic,
    )
    return [head_from_row(row) for row in rows]


def head_from_row(row: asyncpg.Record) -> Head:
    return Head(row["partition"], row["next_offset"], row["length"], bytes(row["hash"]))
