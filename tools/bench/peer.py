"""Measuring the peer (:mod:`tools.bench.peer_app`) on the bench's PostgreSQL, in the run.

The peer gets a schema of its own in the run's database, created here and dropped at the
end. It is served over loopback HTTP from a process of its own, and loaded by the same
closed-loop client as intake's single-event capacity, with the same submissions
(:mod:`tools.bench.workload`): single events and batches of 1,000, at each concurrency for a
fixed time. Before the schema goes, the rows it holds are counted, so a run shows that the
requests it counted were written.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg

from tools.bench import http_load, peer_app
from tools.bench.pipeline import batch_body, single_body
from tools.bench.results import Count, PeerRun, PeerRuns
from tools.stack.ports import free_port

READY_TIMEOUT_S = 30.0
#: Events per batch request, as in intake's batch measurement.
BATCH_SIZE = 1000
#: Submission indexes each load draws from: a run's loads never send the same submission.
SPAN = 10_000_000


async def measure(
    database_url: str,
    start: int,
    subjects: int,
    concurrencies: Sequence[int],
    seconds: float,
) -> PeerRuns:
    """Single events, then batches, at each concurrency for ``seconds`` each."""
    shapes = [(1, c) for c in concurrencies] + [(BATCH_SIZE, c) for c in concurrencies]
    async with _schema(database_url) as schema, _server(database_url, schema) as url:
        runs = [
            await _load(url, start + k * SPAN, subjects, size, clients, seconds)
            for k, (size, clients) in enumerate(shapes)
        ]
        audit, state = await _counts(database_url, schema)
    return PeerRuns(tuple(runs), audit, state)


async def _load(
    url: str, start: int, subjects: int, size: int, clients: int, seconds: float
) -> PeerRun:
    body = single_body(start, subjects) if size == 1 else batch_body(start, size, subjects)
    path = "/v1/events" if size == 1 else "/v1/events/batch"
    async with http_load.client(url, clients) as http:
        load = await http_load.closed_loop(http, path, clients, seconds, body)
    count = Count(
        len(load.accepted) * size, load.last_done - load.started, load.failed,
        load.failure_kinds(),
    )  # fmt: skip
    return PeerRun(size, clients, len(load.accepted), count)


@contextlib.asynccontextmanager
async def _schema(database_url: str) -> AsyncIterator[str]:
    """A fresh schema with the peer's tables, dropped afterwards whatever happened."""
    schema = f"bench_peer_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(peer_app.schema_sql(schema))
        yield schema
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


@contextlib.asynccontextmanager
async def _server(database_url: str, schema: str) -> AsyncIterator[str]:
    """The peer's process, serving until the block ends; its base URL."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools.bench.peer_app", database_url, schema, str(port)
    )
    try:
        await _wait_listening(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), READY_TIMEOUT_S)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_listening(port: int, process: asyncio.subprocess.Process) -> None:
    """Uvicorn listens once its start-up (the pool) is done, so a connection means ready."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"the peer exited with {process.returncode} before listening")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise RuntimeError(f"the peer did not listen on port {port} within {READY_TIMEOUT_S:.0f} s")


async def _counts(database_url: str, schema: str) -> tuple[int, int]:
    """The audit rows and state rows the peer wrote."""
    conn = await asyncpg.connect(database_url)
    try:
        audit = await conn.fetchval(f"SELECT count(*) FROM {schema}.consent_audit")
        state = await conn.fetchval(f"SELECT count(*) FROM {schema}.consent_state")
        return int(audit), int(state)
    finally:
        await conn.close()
