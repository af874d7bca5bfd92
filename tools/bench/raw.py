"""Raw limits: what bare Kafka and PostgreSQL clients do with the same events, no ledger code.

The producer is configured like intake's appender (idempotent, ``acks=all``, ``linger_ms=2``,
transactional) and commits a transaction every 5000 records, the appender's largest group
commit; the COPY writes the same rows into a scratch table shaped like ``ledger_events``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaProducer

from events.catalog import AnyEvent, purpose_of
from events.codec import encode

#: Records per transaction: the appender's ``max_records_per_transaction``.
TRANSACTION_RECORDS = 5000
SCRATCH_TABLE = "bench_raw_copy"

Row = tuple[UUID, str, int, int, str, str, int, str | None, datetime, datetime, str]
COLUMNS = (
    "event_id", "topic", "partition", "offset", "subject_id", "type", "schema_version",
    "purpose", "occurred_at", "recorded_at", "payload",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Encoded:
    """An event as the ledger topic carries it."""

    event: AnyEvent
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def encoded(events: Sequence[AnyEvent]) -> list[Encoded]:
    """The same bytes and headers intake's ``to_records`` produces."""
    return [
        Encoded(
            e,
            e.subject_id.encode(),
            encode(e),
            [("event-type", e.type.encode()), ("event-id", str(e.event_id).encode())],
        )
        for e in events
    ]


async def produce(
    bootstrap: str, topic: str, records: Sequence[Encoded]
) -> tuple[float, list[tuple[int, int]]]:
    """Send every record in transactions of ``TRANSACTION_RECORDS``; (seconds, positions)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        transactional_id=f"bench-raw-{uuid.uuid4().hex}",
        acks="all",
        linger_ms=2,
    )
    await producer.start()
    try:
        positions: list[tuple[int, int]] = []
        started = time.perf_counter()
        for first in range(0, len(records), TRANSACTION_RECORDS):
            await producer.begin_transaction()
            futures = [
                await producer.send(topic, value=r.value, key=r.key, headers=r.headers)
                for r in records[first : first + TRANSACTION_RECORDS]
            ]
            await producer.commit_transaction()
            positions.extend([(m.partition, m.offset) for m in [await f for f in futures]])
        return time.perf_counter() - started, positions
    finally:
        await producer.stop()


def rows(topic: str, records: Sequence[Encoded], positions: Sequence[tuple[int, int]]) -> list[Row]:
    """The ``ledger_events`` rows of the records, at the positions the broker gave them."""
    return [
        (
            r.event.event_id,
            topic,
            partition,
            offset,
            r.event.subject_id,
            r.event.type,
            r.event.schema_version,
            purpose_of(r.event),
            r.event.occurred_at,
            r.event.recorded_at,
            r.value.decode(),
        )
        for r, (partition, offset) in zip(records, positions, strict=True)
    ]


async def copy(database_url: str, table_rows: Sequence[Row]) -> float:
    """One ``copy_records_to_table`` of every row into a scratch copy of ``ledger_events``
    (same columns, keys and indexes); seconds. The scratch table is dropped afterwards."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")
        await conn.execute(f"CREATE TABLE {SCRATCH_TABLE} (LIKE ledger_events INCLUDING ALL)")
        started = time.perf_counter()
        await conn.copy_records_to_table(SCRATCH_TABLE, records=table_rows, columns=COLUMNS)
        seconds = time.perf_counter() - started
        await conn.execute(f"DROP TABLE {SCRATCH_TABLE}")
        return seconds
    finally:
        await conn.close()
