"""Drains the feed outbox to the compacted feed topic, and fans each change out to the webhooks.

One transaction per batch: read the oldest pending rows, produce them (idempotent producer,
``acks=all``, keyed by subject id, the version in a header), queue a delivery per configured
webhook, delete the rows that were published. A crash after the produce and before the
commit sends the same entries again, which a compacted topic keyed by subject absorbs (the
latest record per key wins, and it is the same state). The rows are never locked: the
projector keeps queueing while a batch is in flight, and a row it replaced meanwhile (a newer
version) is not deleted, so it is sent next. A transaction-scoped advisory lock lets one
publisher drain at a time, which keeps each subject's records in version order on the topic.

Each published tombstone is sent once more when the topic's segment roll time has passed
(``feed_tombstone_resends``, services/messaging/forgetting.py): the append rolls the segment holding
the first one, so that compaction can drop the records that still hold the address. A newer
entry published for the person cancels it, so a tombstone never follows their new sign-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from projections.db import Conn
from projections.feed import VERSION_HEADER, FeedChange
from services.messaging.producers import started_producer, stop_quietly

_LOCK_ID = 7_263_005
_PENDING = """
SELECT subject_id, version, last_event_id, updated_at, entry FROM feed_outbox
ORDER BY queued_at, subject_id LIMIT $1
"""
_FAN_OUT = """
INSERT INTO feed_webhook_deliveries (webhook, subject_id, version, body)
SELECT w.url, d.subject_id, d.version, d.body
FROM unnest($1::text[], $2::bigint[], $3::jsonb[]) AS d(subject_id, version, body)
CROSS JOIN unnest($4::text[]) AS w(url)
ON CONFLICT (webhook, subject_id) DO UPDATE SET
    version = EXCLUDED.version, body = EXCLUDED.body, attempts = 0, next_attempt_at = now(),
    last_error = NULL
"""
_PUBLISHED = """
DELETE FROM feed_outbox AS o USING unnest($1::text[], $2::bigint[]) AS d(subject_id, version)
WHERE o.subject_id = d.subject_id AND o.version = d.version
"""
#: clock_timestamp(), not the transaction's start: due only after the roll time has passed
#: since the first tombstone's timestamp, which the producer set after the transaction began.
_SCHEDULE_RESENDS = """
INSERT INTO feed_tombstone_resends (subject_id, version, due_at)
SELECT subject_id, version, clock_timestamp() + $3 * interval '1 millisecond'
FROM unnest($1::text[], $2::bigint[]) AS d(subject_id, version)
ON CONFLICT (subject_id) DO UPDATE SET version = EXCLUDED.version, due_at = EXCLUDED.due_at
"""
_CANCEL_RESENDS = "DELETE FROM feed_tombstone_resends WHERE subject_id = ANY($1::text[])"
#: A delivery that failed its last try between the projector's erasure (which removed the
#: person's dead letters) and this fan-out (which replaces the delivery by the tombstone) may
#: have left a dead letter with the address: it goes with the tombstone's fan-out.
_FORGET_DEAD = "DELETE FROM feed_webhook_dead_letters WHERE subject_id = ANY($1::text[])"
_DUE_RESENDS = """
SELECT subject_id, version, NULL::jsonb AS entry FROM feed_tombstone_resends
WHERE due_at <= clock_timestamp() ORDER BY due_at LIMIT $1
"""
_RESENT = """
DELETE FROM feed_tombstone_resends AS r
USING unnest($1::text[], $2::bigint[]) AS d(subject_id, version)
WHERE r.subject_id = d.subject_id AND r.version = d.version
"""


class FeedPublisher:
    """Moves outbox rows to the feed topic and the webhook delivery queue."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        kafka: Mapping[str, Any],
        topic: str,
        webhook_urls: Sequence[str],
        *,
        batch_max: int,
        timeout_s: float,
        resend_after_ms: int,
    ) -> None:
        """``resend_after_ms``: when a tombstone is sent again (the topic's segment roll time)."""
        self._pool = pool
        self._kafka_options = dict(kafka)
        self._topic = topic
        self._webhooks = list(webhook_urls)
        self._batch_max = batch_max
        self._timeout_s = timeout_s
        self._resend_after_ms = resend_after_ms
        self._producer: AIOKafkaProducer | None = None

    async def stop(self) -> None:
        await self._drop_producer()

    async def publish_once(self) -> int:
        """Publish one batch and the tombstones due again; returns how many records that was
        (0: nothing to do, or another publisher holds the lock)."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_ID):
                return 0
            # Pending first: an entry it publishes cancels that person's tombstone re-send.
            return await self._publish_pending(conn) + await self._resend_due(conn)

    async def _publish_pending(self, conn: Conn) -> int:
        """Produce the oldest outbox rows, fan them out to the webhooks, delete them."""
        rows = await conn.fetch(_PENDING, self._batch_max)
        if not rows:
            return 0
        await self._produce(rows)
        subjects = [r["subject_id"] for r in rows]
        versions = [r["version"] for r in rows]
        if self._webhooks:
            bodies = [_change(r) for r in rows]
            await conn.execute(_FAN_OUT, subjects, versions, bodies, self._webhooks)
            if erased := [r["subject_id"] for r in rows if r["entry"] is None]:
                await conn.execute(_FORGET_DEAD, erased)
        await conn.execute(_PUBLISHED, subjects, versions)
        await self._plan_resends(conn, rows)
        return len(rows)

    async def _plan_resends(self, conn: Conn, rows: Sequence[asyncpg.Record]) -> None:
        """Schedule each published tombstone's re-send; cancel it for a person with an entry."""
        erased = [r for r in rows if r["entry"] is None]
        entries = [r["subject_id"] for r in rows if r["entry"] is not None]
        if entries:
            await conn.execute(_CANCEL_RESENDS, entries)
        if erased:
            await conn.execute(
                _SCHEDULE_RESENDS,
                [r["subject_id"] for r in erased],
                [r["version"] for r in erased],
                self._resend_after_ms,
            )

    async def _resend_due(self, conn: Conn) -> int:
        """Send the tombstones whose roll time has passed once more, then forget them."""
        rows = await conn.fetch(_DUE_RESENDS, self._batch_max)
        if not rows:
            return 0
        await self._produce(rows)
        await conn.execute(_RESENT, [r["subject_id"] for r in rows], [r["version"] for r in rows])
        return len(rows)

    async def _produce(self, rows: Sequence[asyncpg.Record]) -> None:
        try:
            producer = await self._ensure_producer()
            futures = [
                await producer.send(
                    self._topic,
                    key=r["subject_id"].encode(),
                    value=orjson.dumps(r["entry"]) if r["entry"] is not None else None,
                    headers=[(VERSION_HEADER, str(r["version"]).encode())],
                )
                for r in rows
            ]
            await asyncio.wait_for(asyncio.gather(*futures), self._timeout_s)
        except BaseException:
            await self._drop_producer()  # a fresh producer next time: no half-known state
            raise

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            self._producer = await started_producer(
                **self._kafka_options,
                linger_ms=5,
                request_timeout_ms=int(self._timeout_s * 1000),
            )
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        await stop_quietly(producer)


def _change(row: asyncpg.Record) -> dict[str, Any]:
    """The webhook body of an outbox row."""
    change = FeedChange(
        subject_id=row["subject_id"],
        version=row["version"],
        last_event_id=row["last_event_id"],
        updated_at=row["updated_at"],
        entry=row["entry"],
    )
    return change.model_dump(mode="json")
