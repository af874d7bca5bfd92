"""The broker's warm-up, before a run measures anything.

A Kafka broker just started is slow at first: its JVM is still compiling the code that
serves produce and fetch requests. In a scratch probe on this machine (docs/performance.md,
"The broker's start-up") its first 20,000 transactional records cost it 267 µs of CPU each,
the next ones 40 to 60. A default run is short, so without a warm-up that start-up lands in
whatever it measures first, the raw producer's limit most of all, and makes a small run look
dearer per event than a large one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from services.audit.log import iterate_log
from services.bench import raw
from services.config import Settings


@dataclass(frozen=True)
class WarmUp:
    """Records sent through the broker and read back, and how long that took."""

    records: int
    seconds: float


async def warm_broker(settings: Settings, topic: str, records: Sequence[raw.Encoded]) -> WarmUp:
    """Produce ``records`` to ``topic`` as the raw producer does (transactions of the
    appender's size) and read them back as a consumer of the log does (read_committed), so
    that both the produce and the fetch paths have run before the measurements."""
    started = time.perf_counter()
    await raw.produce(settings.kafka_bootstrap, topic, records)
    read = 0
    async for _ in iterate_log(settings.kafka_options(), topic):
        read += 1
    if read != len(records):
        raise RuntimeError(f"warm-up: {len(records):,} records produced, {read:,} read back")
    return WarmUp(read, time.perf_counter() - started)
