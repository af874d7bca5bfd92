"""Before a measurement with the services, the bench waits until the pipeline is idle, the feed
publisher's backlog included."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from services.config import Settings
from services.feed.main import serve as serve_feed
from tests.integration.conftest import append_events, consent_stream, wait_projected
from tools.bench.main import Namespace, Run, configure

pytestmark = pytest.mark.integration


async def test_a_measurement_starts_once_the_feed_has_published_the_backlog(
    settings: Settings, projector: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    events = consent_stream(subjects=50, events_per_subject=1)
    await append_events(settings, events)
    await wait_projected(pool, len(events))
    assert await pool.fetchval("SELECT count(*) FROM feed_outbox") == 50
    conn = await asyncpg.connect(settings.database_url)
    run = Run(configure(), Namespace(settings, "-", "-", settings.database_url, "-"), conn)
    waiting = asyncio.create_task(run.settle())
    try:
        await asyncio.sleep(1.0)
        assert not waiting.done(), "no publisher runs, so the backlog is still there"
        stop = asyncio.Event()
        publisher = asyncio.create_task(serve_feed(settings, stop))
        try:
            await asyncio.wait_for(waiting, 60)
            assert await pool.fetchval("SELECT count(*) FROM feed_outbox") == 0
        finally:
            stop.set()
            await asyncio.wait_for(publisher, 30)
    finally:
        waiting.cancel()
        await conn.close()
