"""The replay itself: rebuild into a fresh schema with the live projector's code, then compare.

The live projector's offsets are read in a REPEATABLE READ transaction that stays open until the
comparison is done: the replay reads the ledger up to those offsets, and the live tables are
compared as they were in that same snapshot, so a projector that keeps running meanwhile does not
make the two differ.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import asyncpg

from projections.db import create_pool
from projections.migrations import apply as apply_migrations
from projections.store import PROJECTION, BatchResult, SubscriberStore
from services.config import Settings
from services.privacy.keystore import KeyStore
from services.privacy.secrets import load_secrets
from services.progress import ProgressPrinter
from services.projection.batches import Part
from services.projection.runner import BatchRunner, Refused, once
from services.replay.compare import COMPARED, compare_table, quote
from services.replay.processes import ShareProgress, rebuild_in_processes, shares
from services.replay.reader import ReplayError, read_until
from services.replay.report import ReplayReport

DEFAULT_BATCH = 10_000
DEFAULT_DIFFERENCES = 20
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,49}$")

#: ``(positions done, positions in all, events applied, seconds since the start)``.
Progress = Callable[[int, int, int, float], None]


def default_schema(now: datetime) -> str:
    return "replay_" + now.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def check_schema_name(name: str) -> str:
    """A schema name the replay may create: lower-case letters, digits, underscores."""
    if not _SCHEMA_NAME.match(name):
        raise ReplayError(
            f"schema: {name!r} is not a plain lower-case name of at most 50 characters "
            "(letters, digits, _; not starting with a digit)"
        )
    return name


class StderrProgress:
    """Prints progress to stderr at most once a second: records/s and the ETA to the end."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self._printer = ProgressPrinter("replay", "records", _stderr, interval_s)

    def __call__(self, done: int, total: int, applied: int, elapsed: float) -> None:
        self._printer.report(done, total, elapsed, f", {applied:,} events folded")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def replay(
    settings: Settings,
    schema: str | None = None,
    *,
    batch_size: int = DEFAULT_BATCH,
    keep: bool = False,
    differences: int = DEFAULT_DIFFERENCES,
    processes: int = 1,
    progress: Progress | None = None,
) -> ReplayReport:
    """Rebuild the projections from offset 0 into ``schema`` and compare them with live ones.

    One transaction per batch of ``batch_size`` records, through the live projector's decode and
    :meth:`SubscriberStore.apply` (with ``side_effects=False``), split by partition over
    ``processes`` processes (:mod:`services.replay.processes`). The schema is dropped afterwards
    when it equals the live tables, unless ``keep``; it is kept when they differ, for inspection.
    """
    name = check_schema_name(schema or default_schema(datetime.now(UTC)))
    live = await asyncpg.connect(settings.database_url)
    try:
        snapshot = live.transaction(isolation="repeatable_read", readonly=True)
        await snapshot.start()
        live_schema: str = await live.fetchval("SELECT current_schema()")
        ends = {
            row["partition"]: row["next_offset"]
            for row in await live.fetch(
                "SELECT partition, next_offset FROM projector_offsets"
                " WHERE projection = $1 AND topic = $2",
                PROJECTION,
                settings.ledger_topic,
            )
        }
        await _create_schema(settings.database_url, name)
        started = time.monotonic()
        try:
            counts = await _rebuild(settings, name, ends, batch_size, processes, progress, started)
        except BaseException:
            await drop_schema(settings.database_url, name)  # half a rebuild is of no use
            raise
        ended = time.monotonic()
        tables = []
        rebuilt = await asyncpg.connect(settings.database_url)
        try:
            async with rebuilt.transaction(isolation="repeatable_read", readonly=True):
                for table in COMPARED:
                    tables.append(
                        await compare_table(
                            live, live_schema, rebuilt, name, table, settings.ledger_topic,
                            differences,
                        )
                    )  # fmt: skip
        finally:
            await rebuilt.close()
        await snapshot.rollback()
    finally:
        await live.close()
    equal = all(t.equal for t in tables)
    kept = keep or not equal
    logged_seconds = None
    if kept:
        began = time.monotonic()
        await set_persistence(settings.database_url, name, logged=True)
        logged_seconds = round(time.monotonic() - began, 3)
    else:
        await drop_schema(settings.database_url, name)
    return ReplayReport(
        replay_schema=name,
        live_schema=live_schema,
        topic=settings.ledger_topic,
        ends=ends,
        seconds=round(ended - started, 3),
        events_per_s=round(counts["records"] / (ended - started), 1) if ended > started else 0.0,
        rebuild_monotonic=(started, ended),
        tables=tables,
        equal=equal,
        kept=kept,
        logged_seconds=logged_seconds,
        **counts,
    )


async def _create_schema(database_url: str, name: str) -> None:
    """The schema, with every table the migrations create (so the store finds what it writes)."""
    conn = await asyncpg.connect(database_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", name)
        if exists:
            raise ReplayError(f"schema: {name!r} exists already; name another or drop it")
        await conn.execute(f"CREATE SCHEMA {quote(name)}")
    finally:
        await conn.close()
    await apply_migrations(database_url, schema=name)
    await set_persistence(database_url, name, logged=False)


async def set_persistence(database_url: str, name: str, *, logged: bool) -> None:
    """Make every table of the replay schema unlogged (while it is rebuilt) or logged again.

    A rebuild is thrown away when anything interrupts it, so its writes need no write-ahead log:
    PostgreSQL then writes each row once instead of twice (gigabytes of log spared at five
    million events; the rate did not move, docs/performance.md). A kept schema is made logged
    (each table is then written to the log once, in one pass), so a crash cannot empty it and
    ``--swap`` puts durable tables in place. The tables hold no foreign keys between them; if
    they did, the order of the changes would matter.
    """
    conn = await asyncpg.connect(database_url)
    try:
        tables = await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY c.relname",
            name,
        )
        persistence = "LOGGED" if logged else "UNLOGGED"
        for table in tables:
            await conn.execute(
                f"ALTER TABLE {quote(name)}.{quote(table['relname'])} SET {persistence}"
            )
    finally:
        await conn.close()


async def drop_schema(database_url: str, name: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"DROP SCHEMA {quote(name)} CASCADE")
    finally:
        await conn.close()


async def _rebuild(
    settings: Settings,
    schema: str,
    ends: Mapping[int, int],
    batch_size: int,
    processes: int,
    progress: Progress | None,
    started: float,
) -> dict[str, int]:
    """Rebuild in this process, or split by partition over at most ``processes`` of them; the
    counts say how many ran."""
    total = sum(ends.values())

    def report(read: int, applied: int) -> None:
        if progress is not None:
            progress(read, total, applied, time.monotonic() - started)

    parts = shares(ends, processes)
    if len(parts) > 1:
        counts = await rebuild_in_processes(
            rebuild_share, settings, schema, parts, batch_size, report
        )
    else:
        counts = await rebuild_share(settings, schema, ends, batch_size, report)
    return {**counts, "processes": len(parts)}


async def rebuild_share(
    settings: Settings,
    schema: str,
    ends: Mapping[int, int],
    batch_size: int,
    progress: ShareProgress,
) -> dict[str, int]:
    """Rebuild one share through the live projector's batch runner: the next batch is decoded
    while PostgreSQL writes, by ``settings.projector_writers`` transactions at once, cut by
    partition. A failure is not retried: it ends the replay, whose schema is then dropped."""
    writers = settings.projector_writers
    slot = {p: i % writers for i, p in enumerate(sorted(ends))}  # this share's partitions, dealt
    pool = await create_pool(settings.database_url, max_size=writers, schema=schema)
    live = await create_pool(settings.database_url, max_size=1)  # the data keys live there
    store = SubscriberStore(pool, settings.ledger_topic, side_effects=False)
    counts = {"records": 0, "applied": 0, "undecodable": 0}
    reached = dict.fromkeys(ends, 0)

    async def dead_lettered_live(refused: list[Refused]) -> None:
        counts["undecodable"] += len(refused)

    def written(part: Part, result: BatchResult) -> None:
        counts["records"] += len(part.records)
        counts["applied"] += result.applied
        reached.update(part.ends)
        progress(sum(reached.values()), counts["applied"])

    keys = KeyStore(live, load_secrets(settings).master)
    runner = BatchRunner(
        store, keys, dead_lettered_live, written, retry=once, writers=writers, slot=slot.__getitem__
    )
    try:
        await store.claim_partitions(ends)
        await runner.start()
        async for batch in read_until(
            settings.kafka_options(), settings.ledger_topic, ends, batch_size
        ):
            await runner.handle(batch)
        await runner.drain()
        return counts
    finally:
        await runner.stop()
        await pool.close()
        await live.close()
