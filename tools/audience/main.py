"""Composition root of the reference consumer (``python -m tools audience``).

It reads every partition of the feed topic from where its own database says it stopped (the
start, the first time), without a consumer group: its offsets live only in PostgreSQL, next to
the audience rows they produced, and it looks for new partitions every ``recheck_s`` seconds.
A record it cannot decode stops it (it never skips a change); a database failure is retried
with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from projections.db import create_pool
from projections.feed import VERSION_HEADER, FeedEntry
from services.config import Settings
from services.feed.main import stop_on_signals
from tools.audience.settings import AudienceSettings
from tools.audience.store import AudienceStore, FeedRecord

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
RECHECK_S = 30.0


def decode(record: ConsumerRecord[bytes, bytes]) -> FeedRecord:
    """A feed record as the store wants it; a tombstone has no value, only a version header."""
    subject = record.key.decode()
    if record.value is not None:
        entry = FeedEntry.model_validate_json(record.value)
        return FeedRecord(record.partition, record.offset, subject, entry, entry.version)
    return FeedRecord(record.partition, record.offset, subject, None, header_version(record))


def header_version(record: ConsumerRecord[bytes, bytes]) -> int | None:
    """The ``version`` header (``None`` if absent); a malformed one is a record we cannot read."""
    raw = dict(record.headers).get(VERSION_HEADER)
    if raw is None:
        return None
    if not raw.isdigit():
        raise ValueError(
            f"{VERSION_HEADER} header: {raw!r} at {record.topic}[{record.partition}]@"
            f"{record.offset} is not a whole number"
        )
    return int(raw)


async def _apply(store: AudienceStore, records: list[FeedRecord], stop: asyncio.Event) -> None:
    """Apply a batch, retrying until it is written or the consumer stops (then the batch is
    read again on the next start: its offsets were not stored)."""
    delay = 0.2
    while not stop.is_set():
        try:
            await store.apply(records)
            return
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("applying a feed batch failed; retrying", extra={"error": repr(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)


async def _partitions(settings: Settings) -> list[int]:
    admin = AIOKafkaAdminClient(**settings.kafka_options())
    await admin.start()
    try:
        (described,) = await admin.describe_topics([settings.feed_topic])
    finally:
        await admin.close()
    if described["error_code"] or not described["partitions"]:
        raise RuntimeError(f"feed_topic: topic {settings.feed_topic!r} is not there")
    return [p["partition"] for p in described["partitions"]]


async def _follow(
    consumer: AIOKafkaConsumer, store: AudienceStore, settings: Settings, known: set[int]
) -> set[int]:
    """Read every partition the feed topic has now, each from its stored position.

    Called between batches, when every record fetched so far is applied, so the stored
    positions are where reading stands; ``assign`` forgets the consumer's own positions, and
    without a group it would otherwise start a partition at the end and skip its changes."""
    partitions = set(await _partitions(settings))
    if partitions == known:
        return known
    stored = await store.positions(partitions)
    consumer.assign([TopicPartition(settings.feed_topic, p) for p in stored])
    for partition, offset in stored.items():
        consumer.seek(TopicPartition(settings.feed_topic, partition), offset)
    log.info("audience consumer reads", extra={"partitions": stored})
    return partitions


async def run(
    settings: AudienceSettings, stop: asyncio.Event | None = None, *, recheck_s: float = RECHECK_S
) -> None:
    """Keep the audience in sync with the feed until ``stop`` (default: SIGINT or SIGTERM)."""
    stop = stop or stop_on_signals()
    pool = await create_pool(settings.audience_database_url or settings.database_url, max_size=2)
    store = AudienceStore(pool, settings.feed_topic)
    consumer = AIOKafkaConsumer(**settings.kafka_options(), enable_auto_commit=False)
    try:
        await store.ensure_schema()
        await consumer.start()
        partitions = await _follow(consumer, store, settings, set())
        checked = time.monotonic()
        while not stop.is_set():
            if time.monotonic() - checked >= recheck_s:
                partitions = await _follow(consumer, store, settings, partitions)
                checked = time.monotonic()
            batches = await consumer.getmany(timeout_ms=200, max_records=settings.feed_batch_max)
            records = [decode(r) for batch in batches.values() for r in batch]
            if records:
                await _apply(store, records, stop)
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
        await pool.close()
