"""Through the real Kafka topic, projector and PostgreSQL: any arrival order of the same events
projects the same state, the same mailing lists and the same suppressions."""

from __future__ import annotations

from random import Random
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.catalog import AnyEvent
from projections.db import create_pool
from services.config import Settings
from services.projector.main import create_app
from tests.integration.conftest import (
    append_events,
    issue_token,
    namespace,
    serve,
    wait_projected,
)
from tests.strategies import PURPOSES, ledger

pytestmark = pytest.mark.integration


async def projected(base: Settings, events: list[AnyEvent]) -> dict[str, Any]:
    """Append the events in this order to fresh topics, project them, and read back what
    readers see: the tables and the mail-tool exports."""
    ns = await namespace(base)
    await append_events(ns, events)
    token = await issue_token(ns)
    pool = await create_pool(ns.database_url, max_size=2)
    try:
        async with serve(create_app(ns), ns.projector_port, token) as client:
            await wait_projected(pool, len({e.event_id for e in events}))
            lists = {
                purpose: (await client.get(f"/v1/mailing-lists/{purpose}")).content
                for purpose in PURPOSES
            }
            suppressions = (await client.get("/v1/suppressions")).content
        subscribers = await pool.fetch("SELECT * FROM subscribers ORDER BY subject_id")
        requests = await pool.fetch("SELECT * FROM rights_requests ORDER BY subject_id, request_id")
    finally:
        await pool.close()
    return {
        "subscribers": [dict(r) for r in subscribers],
        "rights_requests": [dict(r) for r in requests],
        "mailing_lists": {p: _lines(body) for p, body in lists.items()},
        "suppressions": _lines(suppressions),
    }


def _lines(body: bytes) -> list[Any]:
    return [orjson.loads(line) for line in body.splitlines()]


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(log=ledger(max_size=40), shuffle=st.randoms(use_true_random=False))
async def test_any_arrival_order_projects_the_same_state(
    stack_settings: Settings, log: list[AnyEvent], shuffle: Random
) -> None:
    arrived = list(log)
    shuffle.shuffle(arrived)
    assert await projected(stack_settings, arrived) == await projected(stack_settings, log)
