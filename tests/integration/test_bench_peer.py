"""The bench's peer, the hand-written asyncpg endpoint, against the real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import orjson
import pytest

from events.catalog import SUBMISSION_ADAPTER
from services.config import Settings
from tools.bench import peer, peer_app, workload

pytestmark = pytest.mark.integration


async def test_a_brief_measurement_writes_every_accepted_event_and_drops_its_schema(
    settings: Settings,
) -> None:
    done = await peer.measure(settings.database_url, 0, 50, concurrencies=(2,), seconds=0.3)
    assert [(r.events_per_request, r.clients) for r in done.runs] == [(1, 2), (1_000, 2)]
    for run in done.runs:
        assert run.events.failed == 0, run.events.failure_kinds
        assert run.requests > 0
        assert run.per_s is not None
        assert run.per_s > 0
    assert done.audit_rows == sum(r.events.count for r in done.runs)
    assert done.state_rows == 50  # every subject got a state row
    conn = await asyncpg.connect(settings.database_url)
    try:
        left = await conn.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'bench_peer_%'"
        )
    finally:
        await conn.close()
    assert left == 0


async def test_the_upsert_merges_purposes_and_the_latest_event_of_a_purpose_wins(
    settings: Settings,
) -> None:
    first = SUBMISSION_ADAPTER.validate_python(workload.submission(0, 1))  # newsletter
    later = first.model_copy(update={"occurred_at": first.occurred_at + timedelta(days=1)})
    other = SUBMISSION_ADAPTER.validate_python(workload.submission(1, 1))  # analytics
    audit, upsert = peer_app.statements("peer_test")
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(peer_app.schema_sql("peer_test"))
        for request in ([later, first], [other]):  # one request holds the purpose twice
            arrays = peer_app.columns(request)
            async with conn.transaction():
                await conn.execute(audit, *arrays)
                await conn.execute(upsert, *arrays[:5])
        purposes = await conn.fetchval(
            "SELECT purposes::text FROM peer_test.consent_state WHERE subject_id = $1",
            first.subject_id,
        )
        audited = await conn.fetchval("SELECT count(*) FROM peer_test.consent_audit")
    finally:
        await conn.close()
    state = orjson.loads(purposes)
    assert set(state) == {"newsletter", "analytics"}
    assert state["newsletter"]["status"] == "consent.given"
    assert state["newsletter"]["occurred_at"].startswith("2024-01-02")  # the later one
    assert audited == 3
