"""The projector is exactly-once: redelivery, a second instance or SIGKILL change nothing."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import asyncpg
import pytest

from events.codec import decode
from projections.db import create_pool
from projections.state import fold
from services.config import Settings
from services.projector.main import create_app
from tests.integration.conftest import (
    append_events,
    consent_stream,
    dump_tables,
    eventually,
    namespace,
    projected_count,
    read_topic,
    serve,
    spawn_projector,
    stored_states,
    wait_projected,
)
from tools.stack.ports import free_port

pytestmark = pytest.mark.integration


async def fold_of_topic(settings: Settings) -> dict[str, Any]:
    """The subscriber states a pure fold of the whole ledger topic gives, in log order."""
    records = sorted(
        await read_topic(settings, settings.ledger_topic), key=lambda r: (r.partition, r.offset)
    )
    return fold(decode(r.value) for r in records)


async def project_all(settings: Settings, total: int) -> None:
    async with serve(create_app(settings), settings.projector_port):
        pool = await create_pool(settings.database_url)
        try:
            await wait_projected(pool, total)
        finally:
            await pool.close()


async def test_redelivery_of_the_whole_range_changes_no_row(
    settings: Settings, pool: asyncpg.Pool[Any]
) -> None:
    events = consent_stream(subjects=50, events_per_subject=6)
    await append_events(settings, events)
    await project_all(settings, len(events))
    before = await dump_tables(pool)
    assert await stored_states(pool) == await fold_of_topic(settings)

    # Rewind the stored offsets: the projector consumes the whole range again.
    await pool.execute("UPDATE projector_offsets SET next_offset = 0")
    async with serve(create_app(settings), settings.projector_port):

        async def caught_up() -> bool:
            ends = await pool.fetchval("SELECT sum(next_offset) FROM projector_offsets")
            return bool(ends == len(events))

        await eventually(caught_up)
    assert await dump_tables(pool) == before


async def test_a_second_instance_and_a_new_group_change_no_row(
    settings: Settings, pool: asyncpg.Pool[Any]
) -> None:
    events = consent_stream(subjects=40, events_per_subject=5)
    await append_events(settings, events)
    second = settings.model_copy(update={"projector_group": settings.projector_group + "-b"})
    second = second.model_copy(update={"projector_port": free_port()})
    async with (
        serve(create_app(settings), settings.projector_port),
        serve(create_app(second), second.projector_port),
    ):
        await wait_projected(pool, len(events))
        await append_events(settings, consent_stream(subjects=40, events_per_subject=1))
        await wait_projected(pool, len(events) + 40)
        await asyncio.sleep(1)  # let both instances go idle before comparing
    assert await projected_count(pool) == len(events) + 40
    assert await stored_states(pool) == await fold_of_topic(settings)
    versions = await pool.fetch("SELECT DISTINCT version FROM subscribers")
    assert [r["version"] for r in versions] == [6]


async def test_sigkill_mid_stream_then_restart_equals_an_uninterrupted_run(
    stack_settings: Settings, settings: Settings, pool: asyncpg.Pool[Any]
) -> None:
    events = consent_stream(subjects=3000, events_per_subject=8)
    await append_events(settings, events)
    small_batches = settings.model_copy(update={"projector_batch_max": 200})

    process = spawn_projector(small_batches)
    try:
        while (done := await projected_count(pool)) < len(events) // 4:
            assert process.poll() is None, "the projector died on its own"
            await asyncio.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_at = await projected_count(pool)
        assert done <= killed_at < len(events), "the kill must land mid-stream"
    finally:
        if process.poll() is None:
            process.kill()

    restarted = spawn_projector(small_batches)
    try:
        await wait_projected(pool, len(events), within=180)
    finally:
        restarted.terminate()
        restarted.wait(timeout=30)

    uninterrupted = await namespace(settings, share_topics=True)
    await project_all(uninterrupted, len(events))
    other = await create_pool(uninterrupted.database_url)
    try:
        assert await dump_tables(pool) == await dump_tables(other)
    finally:
        await other.close()
    assert await stored_states(pool) == await fold_of_topic(settings)
