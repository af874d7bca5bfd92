"""Per-subject order across many requests, and no acknowledged event lost to a broker restart."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from services.config import Settings
from tests.integration.conftest import eventually, read_topic, wait_projected
from tests.samples import given_json, withdrawn_json
from tools import stack
from tools.stack import kafka
from tools.stack.settings import StackSettings
from tools.stack.state import load_state

pytestmark = pytest.mark.integration


def nth_event(subject: str, n: int, last: int) -> dict[str, Any]:
    """Alternating consent and withdrawal, one minute apart; the last one is a withdrawal."""
    body = given_json(subject) if (last - n) % 2 else withdrawn_json(subject)
    return {**body, "occurred_at": f"2024-03-04T{10 + n // 60:02d}:{n % 60:02d}:00Z"}


async def test_events_of_one_subject_over_many_requests_stay_in_order(
    intake: httpx.AsyncClient, projector: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    per_subject, subjects = 30, [f"crm-{i}" for i in range(15)]

    async def one_subject(subject: str) -> list[str]:
        ids = []
        for n in range(per_subject):
            answer = await intake.post("/v1/events", json=nth_event(subject, n, per_subject - 1))
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["events"][0]["event_id"])
        return ids

    acknowledged = dict(
        zip(subjects, await asyncio.gather(*map(one_subject, subjects)), strict=True)
    )
    await wait_projected(pool, per_subject * len(subjects))
    for subject, ids in acknowledged.items():
        state = (await projector.get(f"/v1/subjects/{subject}")).json()
        assert state["version"] == per_subject
        assert state["last_event_id"] == ids[-1]
        assert state["purposes"]["newsletter"]["status"] == "withdrawn"
        history = (await projector.get(f"/v1/subjects/{subject}/history")).json()["events"]
        assert [h["event"]["event_id"] for h in history] == ids
        assert len({h["partition"] for h in history}) == 1


async def test_a_broker_restart_loses_no_acknowledged_event(
    stack_settings: StackSettings, settings: Settings, intake: httpx.AsyncClient
) -> None:
    acknowledged: list[str] = []
    refused = 0
    stop = asyncio.Event()

    async def keep_sending() -> None:
        nonlocal refused
        n = 0
        while not stop.is_set() and n < 2000:
            n += 1
            try:
                answer = await intake.post("/v1/events", json=given_json(f"crm-{n}"))
            except httpx.HTTPError:
                refused += 1
                continue
            if answer.status_code == 202:
                acknowledged.extend(e["event_id"] for e in answer.json()["events"])
            else:
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"] == "ledger_unavailable"
                refused += 1
                await asyncio.sleep(0.05)

    senders = [asyncio.create_task(keep_sending()) for _ in range(4)]

    async def acknowledged_at_least(count: int) -> bool:
        return len(acknowledged) >= count

    await eventually(lambda: acknowledged_at_least(50))
    state = load_state(stack_settings.stack_dir)
    assert state is not None
    assert state.kafka is not None
    await asyncio.to_thread(kafka.stop, state.kafka)
    await asyncio.sleep(2)
    await stack.up(stack_settings)
    after_restart = len(acknowledged) + 50
    await eventually(lambda: acknowledged_at_least(after_restart))
    stop.set()
    await asyncio.gather(*senders)

    assert refused > 0, "some requests must have met the stopped broker"
    in_ledger = {
        str(r.headers["event-id"].decode())
        for r in await read_topic(settings, settings.ledger_topic)
    }
    assert set(acknowledged) <= in_ledger
