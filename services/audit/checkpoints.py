"""Signed checkpoints: a partition's chain head, signed, stored, and printed for auditors.

A checkpoint kept outside the system pins the chain: rewriting any event at or before its
position changes every later hash, so the rewrite no longer matches the signed hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from projections.chain import Head, read_heads
from services.audit.models import Checkpoint, CheckpointFile, SignedCheckpoint
from services.audit.signing import sign

log = logging.getLogger(__name__)

_INSERT = """
INSERT INTO ledger_checkpoints (topic, partition, "offset", length, hash, at, signature)
SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::bytea[], $6::timestamptz[],
                         $7::text[])
ON CONFLICT DO NOTHING
"""
_AT_POSITIONS = """
SELECT topic, partition, "offset", hash, at, signature FROM ledger_checkpoints
WHERE topic = $1 AND (partition, "offset") IN (SELECT * FROM unnest($2::int[], $3::bigint[]))
ORDER BY partition
"""
_DUE = """
SELECT h.partition, h.next_offset, h.length, h.hash FROM ledger_chain_heads h
WHERE h.topic = $1 AND h.length - coalesce(
    (SELECT max(c.length) FROM ledger_checkpoints c
     WHERE c.topic = h.topic AND c.partition = h.partition), 0) >= $2
ORDER BY h.partition
"""


async def checkpoint(
    pool: asyncpg.Pool[Any],
    topic: str,
    key: Ed25519PrivateKey,
    heads: Sequence[Head] | None = None,
    now: datetime | None = None,
) -> CheckpointFile:
    """Sign and store the heads (default: every partition's); a head signed before keeps its
    first checkpoint, so running this twice without new events gives the same file."""
    at = now or datetime.now(UTC)
    chosen = [
        h for h in (heads if heads is not None else await read_heads(pool, topic)) if h.length
    ]
    signed = []
    for head in chosen:
        body = Checkpoint(
            topic=topic,
            partition=head.partition,
            offset=head.next_offset - 1,
            hash=head.hash.hex(),
            at=at,
        )
        signed.append(
            SignedCheckpoint(**dict(body), signature=sign(key, body.model_dump(mode="json")))
        )
    await pool.execute(
        _INSERT,
        topic,
        [c.partition for c in signed],
        [c.offset for c in signed],
        [h.length for h in chosen],
        [h.hash for h in chosen],
        [c.at for c in signed],
        [c.signature for c in signed],
    )
    rows = await pool.fetch(
        _AT_POSITIONS, topic, [c.partition for c in signed], [c.offset for c in signed]
    )
    return _file(rows)


async def stored_checkpoints(pool: asyncpg.Pool[Any], topic: str) -> CheckpointFile:
    """Every checkpoint signed so far (on demand or by the projector), oldest first."""
    rows = await pool.fetch(
        'SELECT topic, partition, "offset", hash, at, signature FROM ledger_checkpoints'
        ' WHERE topic = $1 ORDER BY partition, "offset"',
        topic,
    )
    return _file(rows)


def _file(rows: list[asyncpg.Record]) -> CheckpointFile:
    return CheckpointFile(
        checkpoints=[
            SignedCheckpoint(
                topic=r["topic"],
                partition=r["partition"],
                offset=r["offset"],
                hash=bytes(r["hash"]).hex(),
                at=r["at"],
                signature=r["signature"],
            )
            for r in rows
        ]
    )


class Checkpointer:
    """Part of the projector: signs a checkpoint for each partition whose chain has grown by
    ``every`` positions since its last one, looking every ``interval_s`` seconds."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        topic: str,
        key: Ed25519PrivateKey,
        every: int,
        interval_s: float = 5.0,
    ) -> None:
        self._pool, self._topic, self._key = pool, topic, key
        self._every, self._interval_s = every, interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                rows = await self._pool.fetch(_DUE, self._topic, self._every)
                heads = [
                    Head(r["partition"], r["next_offset"], r["length"], r["hash"]) for r in rows
                ]
                if heads:
                    await checkpoint(self._pool, self._topic, self._key, heads)
            except Exception as exc:  # the next round retries; the loop must not die
                log.warning("checkpointing failed; will retry", extra={"error": repr(exc)})
