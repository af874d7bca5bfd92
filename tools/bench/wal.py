"""What PostgreSQL writes to its write-ahead log per event, read a few times a second.

A byte count, not a time: the machine's speed, which moved by up to half within minutes here
(docs/performance.md), does not change it, so it compares a larger run with smaller ones where
CPU time cannot be trusted to. It grows per event when a run's tables outgrow the stretch
between two checkpoints: after each checkpoint, the first change of a page writes the whole
page (8 KB) to the log.

The position is the log's insert position (``pg_current_wal_insert_lsn()``): exact at once,
for the whole server, unlike ``pg_stat_wal``, whose counts each backend reports up to seconds
late. The bench's server runs nothing but the bench.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from tools.bench.cpu import SAMPLE_S, Window
from tools.bench.samples import interpolated

#: Bytes of log written since the server's log began (an LSN is a byte position).
POSITION = "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::float8"


@dataclass(frozen=True, slots=True)
class WalReading:
    at: float
    position: float


def _mix(a: WalReading, b: WalReading, w: float) -> WalReading:
    return WalReading(a.at + (b.at - a.at) * w, a.position + (b.position - a.position) * w)


@dataclass(frozen=True, slots=True)
class WalCost:
    """Bytes of log per event (or request) while a measurement ran."""

    count: int
    bytes_per_event: float


def cost(start: WalReading, end: WalReading, count: int) -> WalCost | None:
    if count <= 0 or end.at <= start.at:
        return None
    return WalCost(count, (end.position - start.position) / count)


class WalSampler:
    """Reads the log's position every ``SAMPLE_S`` on a connection of its own."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self.samples: list[WalReading] = []
        self._conn: asyncpg.Connection[Any] | None = None
        self._lock = asyncio.Lock()  # one query at a time on the connection
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self._url)
        self._task = asyncio.create_task(self._run(), name="wal-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._conn is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await self._conn.close()

    async def _run(self) -> None:
        while True:
            await self._read()
            await asyncio.sleep(SAMPLE_S)

    async def _read(self) -> None:
        """A reading, if the server answers: a lost reading must not fail the measurement."""
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await self.now()

    async def now(self) -> WalReading:
        assert self._conn is not None, "start() first"
        async with self._lock:
            at = asyncio.get_running_loop().time()
            reading = WalReading(at, await self._conn.fetchval(POSITION))
        bisect.insort(self.samples, reading, key=lambda s: s.at)
        return reading

    async def between(self, start: float, end: float, count: int) -> WalCost | None:
        """Bytes of log per event over a window of the run (loop clock); None if not sampled."""
        await self._read()  # the window may end just now
        first = interpolated(self.samples, start, _mix)
        last = interpolated(self.samples, end, _mix)
        return None if first is None or last is None else cost(first, last, count)


HEADER = ("measurement", "events", "log per event", "log in all")
LEGEND = (
    "PostgreSQL's write-ahead log while each measurement ran, from its insert position: bytes "
    "written, per event and in all (a count, which the machine's speed does not change)"
)


def cells(costs: Mapping[Window, WalCost]) -> list[tuple[str, ...]]:
    """One line per measurement for :func:`tools.bench.report.format_grid`."""
    return [
        (
            name.value,
            f"{c.count:,}",
            f"{c.bytes_per_event / 1024:,.2f} KB",
            f"{c.bytes_per_event * c.count / 2**20:,.1f} MB",
        )
        for name, c in costs.items()
    ]


def to_json(costs: Mapping[Window, WalCost]) -> dict[str, dict[str, float]]:
    return {
        name.value: {"count": c.count, "bytes_per_event": round(c.bytes_per_event, 1)}
        for name, c in costs.items()
    }
