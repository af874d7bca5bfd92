"""The bench's log sampler against a real PostgreSQL: what a window wrote is what it reads."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from services.config import Settings
from tools.bench.wal import WalSampler

pytestmark = pytest.mark.integration


async def test_the_sampler_reads_the_log_a_window_wrote(settings: Settings) -> None:
    sampler = WalSampler(settings.database_url)
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute("CREATE TABLE wal_probe (body bytea)")
        await sampler.start()
        await asyncio.sleep(0.6)
        start = (await sampler.now()).at  # read at the window's ends: a burst this short
        # 10,000 rows of 992 random bytes: the log is the whole cluster's, and other tests'
        # databases may still write to it (autovacuum after their bulk writes, say), so the
        # window's own writes must stand well above that
        await conn.execute(
            "INSERT INTO wal_probe SELECT decode(string_agg(md5(random()::text), ''), 'hex')"
            " FROM generate_series(1, 10000) AS r, generate_series(1, 62) AS c GROUP BY r"
        )
        end = (await sampler.now()).at  # would be smeared over the samples around it
        quiet = await sampler.between(start - 0.5, start, 1)
        written = await sampler.between(start, end, 10_000)
    finally:
        await sampler.stop()
        await conn.close()
    assert written is not None
    assert written.count == 10_000
    assert 992 < written.bytes_per_event < 2_000, "a row's bytes, and the log's own records"
    assert quiet is not None
    assert quiet.bytes_per_event < 992_000, "before the window, under a tenth of what it wrote"
    assert len(sampler.samples) >= 2
