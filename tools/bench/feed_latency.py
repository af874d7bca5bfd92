"""Feed latency: from a withdrawal's HTTP 202 to the mail tools' feed saying "not eligible".

Light load on purpose (the issue's target is "within one second under light load"): a fixed
number of withdrawals, one every ``interval_s``, each for a subject the pre-fill made eligible.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer

from services.config import Settings
from tools.bench import workload
from tools.bench.pipeline import feed_queued, intake_client

PURPOSE = "newsletter"


@dataclass(frozen=True, slots=True)
class FeedRun:
    """Per withdrawal, the seconds from its 202 to the feed record; ``missing`` never came."""

    latencies_s: list[float]
    missing: int
    backlog_drained: bool


def withdrawal(n: int) -> bytes:
    return orjson.dumps(
        {
            "type": "consent.withdrawn",
            "subject_id": workload.subject_id(n),
            "occurred_at": datetime.now(UTC).isoformat(),
            "source": {"system": "newsletter-tool", "actor": "list-unsubscribe"},
            "purpose": PURPOSE,
            "data": {"channel": "unsubscribe_link"},
        }
    )


async def drained(conn: asyncpg.Connection[Any], timeout_s: float) -> bool:
    """Wait until the feed publisher has published everything queued before the phase."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while await feed_queued(conn):
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


async def measure(
    settings: Settings, conn: asyncpg.Connection[Any], count: int, interval_s: float
) -> FeedRun:
    ready = await drained(conn, timeout_s=180)
    consumer = AIOKafkaConsumer(
        settings.feed_topic,
        **settings.kafka_options(),
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    accepted: dict[str, float] = {}
    seen: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    sent = asyncio.Event()

    async def watch() -> None:
        while not (sent.is_set() and len(seen) >= len(accepted)):
            batches = await consumer.getmany(timeout_ms=20)
            now = loop.time()
            for records in batches.values():
                for record in records:
                    subject = (record.key or b"").decode()
                    if subject in accepted and subject not in seen and not _eligible(record.value):
                        seen[subject] = now

    watcher: asyncio.Task[None] | None = None
    try:
        await _positions_fixed(consumer)
        watcher = asyncio.create_task(watch())
        async with await intake_client(settings, 4) as http:
            for n in range(count):
                status, _ = await http.post("/v1/events", withdrawal(n))
                if status == 202:
                    accepted[workload.subject_id(n)] = loop.time()
                await asyncio.sleep(interval_s)
        sent.set()
        with contextlib.suppress(TimeoutError):  # what has not come in 30 s is "missing"
            await asyncio.wait_for(asyncio.shield(watcher), 30)
    finally:
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        await consumer.stop()
    latencies = [seen[s] - accepted[s] for s in accepted if s in seen]
    return FeedRun(sorted(latencies), len(accepted) - len(latencies), ready)


async def _positions_fixed(consumer: AIOKafkaConsumer) -> None:
    """Wait for the topic's partitions, and fix each one's start at its current end."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not consumer.assignment():
        if loop.time() > deadline:
            raise RuntimeError("the feed topic's partitions were not assigned within 30 s")
        await consumer.getmany(timeout_ms=100)
    for tp in consumer.assignment():
        await consumer.position(tp)


def _eligible(value: bytes | None) -> bool:
    if value is None:  # a tombstone: erased, so not eligible
        return False
    purpose = orjson.loads(value)["purposes"].get(PURPOSE)
    return bool(purpose and purpose["eligible"])
