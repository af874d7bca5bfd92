"""Property tests of the PostgreSQL store: batches of any size, and the mirror replay, equal
the pure fold of the same log."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.catalog import AnyEvent
from events.codec import decode_raw, encode
from projections.db import create_pool
from projections.records import LedgerRecord
from projections.state import fold
from projections.store import SubscriberStore
from services.config import Settings
from tests.integration.conftest import stored_states
from tests.strategies import consent_log

pytestmark = pytest.mark.integration

PARTITIONS = 3


def as_records(events: list[AnyEvent]) -> list[LedgerRecord]:
    """Place events in partitions by subject, like the keyed producer does."""
    next_offset = dict.fromkeys(range(PARTITIONS), 0)
    records = []
    for event in events:
        partition = int(event.subject_id.rsplit("-", 1)[1]) % PARTITIONS
        value = encode(event)
        records.append(
            LedgerRecord(partition, next_offset[partition], event, event.schema_version, value)
        )
        next_offset[partition] += 1
    return records


async def project_in_batches(
    database_url: str, records: list[LedgerRecord], size: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    pool = await create_pool(database_url, max_size=2)
    try:
        await pool.execute("TRUNCATE subscribers, ledger_events, projector_offsets")
        store = SubscriberStore(pool, "ledger")
        for start in range(0, len(records), size):
            batch = records[start : start + size]
            ends: dict[int, int] = {}
            for r in batch:
                ends[r.partition] = r.offset + 1
            await store.apply(batch, ends)
        table = await stored_states(pool)
        payloads = await pool.fetch(
            'SELECT payload FROM ledger_events ORDER BY partition, "offset"'
        )
        mirror = fold(decode_raw(p["payload"]) for p in payloads)  # replay from the mirror
        return table, mirror
    finally:
        await pool.close()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(log=consent_log(max_size=30), size=st.integers(1, 12))
def test_the_table_and_the_mirror_replay_equal_the_pure_fold(
    settings: Settings, log: list[AnyEvent], size: int
) -> None:
    records = as_records(log + log[: len(log) // 3])  # a retried append repeats events
    table, mirror = asyncio.run(project_in_batches(settings.database_url, records, size))
    expected = fold(log)
    assert table == expected
    assert mirror == expected
