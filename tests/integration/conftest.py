"""The real stack for integration tests: one Kafka broker and one PostgreSQL per test session.

Each test gets a namespace of its own: fresh topics and a fresh database, so tests never see
each other's events. Services run in-process on real sockets (uvicorn), or as child processes
where a test must kill one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from events.catalog import AnyEvent
from projections.db import create_pool
from projections.migrations import apply
from projections.rows import state_from_row
from projections.state import SubjectState
from projections.store import LOAD_SUBJECTS
from services.access.tokens import Grant, Role, TokenStore
from services.audit.log import read_log
from services.config import Settings
from services.messaging.appender import Appender
from services.messaging.recording import to_records
from services.messaging.topics import ensure_topics
from tests.samples import given_event, withdrawn_event
from tools import stack
from tools.stack.ports import free_port
from tools.stack.settings import StackSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
async def stack_settings() -> AsyncIterator[StackSettings]:
    """Start (or reuse) the test stack in ``.stack/test``; stop it after the session."""
    settings = stack.isolated_settings(StackSettings(), "test")
    reused = stack.status(settings) is not None
    await stack.up(settings)
    yield settings
    if not reused or os.environ.get("CI"):
        stack.down(settings)


async def _create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def namespace(base: Settings, *, share_topics: bool = False) -> Settings:
    """Settings with a database (and, unless shared, topics) that no other test uses."""
    tag = uuid.uuid4().hex[:10]
    db = f"t_{tag}"
    await _create_database(base.database_url, db)
    update: dict[str, Any] = {
        "database_url": _with_database(base.database_url, db),
        "projector_group": f"projector-{tag}",
        "intake_port": free_port(),
        "projector_port": free_port(),
        "produce_timeout_s": 5.0,
    }
    if not share_topics:
        update |= {
            "ledger_topic": f"ledger-{tag}",
            "intake_topic": f"intake-{tag}",
            "dead_letter_topic": f"deadletter-{tag}",
            "feed_topic": f"feed-{tag}",
            "intake_group": f"intake-{tag}",
        }
    ns = base.model_copy(update=update)
    await ensure_topics(ns)
    await apply(ns.database_url)
    return ns


@pytest.fixture
async def settings(stack_settings: Settings) -> Settings:
    """Settings of a fresh namespace: topics and a database no other test uses."""
    return await namespace(stack_settings)


#: Query parameters of a read that includes personal data (recorded in the ledger).
PERSONAL = {"personal": "true", "reason": "test of the read API"}


async def issue_token(settings: Settings, role: Role = "dpo", grants: Sequence[Grant] = ()) -> str:
    """A fresh API token in the namespace's database."""
    db = await create_pool(settings.database_url, max_size=1)
    try:
        token, _ = await TokenStore(db).create(role, f"test {role}", grants=frozenset(grants))
    finally:
        await db.close()
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def serve(
    app: FastAPI, port: int, token: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """Run an ASGI app on a real socket in this event loop; yield a client for it (sending
    ``token``, if given, on every request)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )

    async def run() -> None:
        try:
            await server.serve()
        except SystemExit as exc:  # uvicorn exits when it cannot bind: not the test loop's end
            raise RuntimeError(f"the server did not start (exit {exc.code})") from None

    task = asyncio.create_task(run())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server exited before it started")
        await asyncio.sleep(0.05)
    try:
        headers = bearer(token) if token else {}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30, headers=headers
        ) as client:
            yield client
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def intake(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from services.intake.main import create_app

    token = await issue_token(settings)
    async with serve(create_app(settings), settings.intake_port, token) as client:
        yield client


@pytest.fixture
async def projector(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from services.projector.main import create_app

    token = await issue_token(settings)
    async with serve(create_app(settings), settings.projector_port, token) as client:
        yield client


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool[Any]]:
    db = await create_pool(settings.database_url)
    yield db
    await db.close()


async def stored_states(pool: asyncpg.Pool[Any]) -> dict[str, SubjectState]:
    """Every subject's state as the projector loads it: its row and its rights requests."""
    everyone = await pool.fetchval("SELECT coalesce(array_agg(subject_id), '{}') FROM subscribers")
    return {
        row["subject_id"]: state_from_row(row) for row in await pool.fetch(LOAD_SUBJECTS, everyone)
    }


def spawn_projector(settings: Settings) -> subprocess.Popen[bytes]:
    """The projector as a child process, so that a test can SIGKILL it."""
    env = {**os.environ, **settings.to_env(), "CONSENT_LEDGER_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "services.cli", "projector"], env=env)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 60.0) -> None:
    """Wait until ``check`` holds; fail with a timeout otherwise (no timing is asserted)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.1)


async def projected_count(pool: asyncpg.Pool[Any]) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM ledger_events")
    return count


async def wait_projected(pool: asyncpg.Pool[Any], expected: int, within: float = 60) -> None:
    async def done() -> bool:
        return await projected_count(pool) >= expected

    await eventually(done, within)


@dataclass(frozen=True)
class TopicRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


async def read_topic(settings: Settings, topic: str) -> list[TopicRecord]:
    """Every committed record of a topic, from the start to its current end."""
    return [
        TopicRecord(r.partition, r.offset, r.key, r.value or b"", dict(r.headers))
        for r in await read_log(settings.kafka_options(), topic)
    ]


async def dump_tables(pool: asyncpg.Pool[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Full contents of the projection tables, in a stable order, for equality checks."""
    return {
        "subscribers": [
            tuple(r) for r in await pool.fetch("SELECT * FROM subscribers ORDER BY subject_id")
        ],
        "ledger_events": [
            tuple(r) for r in await pool.fetch("SELECT * FROM ledger_events ORDER BY event_id")
        ],
    }


async def append_events(settings: Settings, events: Sequence[AnyEvent], chunk: int = 5000) -> None:
    """Append events to the ledger topic as intake would, in large transactions."""
    appender = Appender(settings.kafka_options(), f"test-{uuid.uuid4().hex}")
    await appender.start()
    try:
        for start in range(0, len(events), chunk):
            records = to_records(events[start : start + chunk], settings.ledger_topic)
            await appender.append(records)
    finally:
        await appender.stop()


def consent_stream(subjects: int, events_per_subject: int) -> list[AnyEvent]:
    """A deterministic stream: each subject alternates consent and withdrawal."""
    out: list[AnyEvent] = []
    for step in range(events_per_subject):
        for n in range(subjects):
            subject = f"s-{n:05d}"
            sample = given_event if step % 2 == 0 else withdrawn_event
            out.append(sample(subject, minutes=step))
    return out
