"""The broker's warm-up, before a run measures anything.

A Kafka broker just started is slow at first: its JVM is still compiling the code that
serves produce and fetch requests. In a scratch probe on an idle machine (docs/performance.md,
"Before each measurement") its first 20,000 transactional records cost it 136 µs of CPU each
and went out at 11,215 records/s; the next ones 31 to 47 µs, at 18,468 to 23,460 records/s.
A run measures the raw producer first, so without a warm-up that start-up lowers the raw
limit that the pipeline's rates are set against.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from services.audit.log import iterate_log
from services.config import Settings
from tools.bench import raw


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
