"""Failures: Kafka down, an intake that died mid-request, poison and outages in the projector."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from events.catalog import SUBMISSION_ADAPTER
from events.codec import decode
from events.ids import uuid7
from services.config import Settings
from services.intake.service import request_hash
from services.projector.main import create_app as projector_app
from tests.integration.conftest import (
    append_events,
    eventually,
    projected_count,
    read_topic,
    serve,
    wait_projected,
)
from tests.samples import given_event, given_json
from tools import stack
from tools.stack import kafka
from tools.stack.settings import StackSettings
from tools.stack.state import load_state

pytestmark = pytest.mark.integration
RETRY_KEY = {"Idempotency-Key": "back-after-restart"}


async def test_kafka_down_answers_503_and_appends_nothing(
    stack_settings: StackSettings, settings: Settings, intake: httpx.AsyncClient
) -> None:
    state = load_state(stack_settings.stack_dir)
    assert state is not None
    assert state.kafka is not None
    kafka.stop(state.kafka)
    try:
        batch = {"events": [given_json(f"lost-{i}") for i in range(10)]}
        answer = await intake.post("/v1/events/batch", json=batch)
        assert answer.status_code == 503
        assert answer.json()["error"] == "ledger_unavailable"
        assert "nothing was appended" in answer.json()["message"]
        ready = await intake.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["kafka"].startswith("unavailable")
    finally:
        await stack.up(stack_settings)
    assert await read_topic(settings, settings.ledger_topic) == []

    async def accepted_again() -> bool:  # 503 (nothing appended) until the broker has settled
        answer = await intake.post("/v1/events", json=given_json("back"), headers=RETRY_KEY)
        assert answer.status_code in (202, 503), answer.text
        return answer.status_code == 202

    await eventually(accepted_again)
    assert len(await read_topic(settings, settings.ledger_topic)) == 1


async def test_a_retry_after_an_unknown_outcome_reuses_the_event_ids(
    settings: Settings, intake: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    """An intake died after claiming the key: the retry takes over with the planned ids."""
    body = given_json("crm-9")
    planned = uuid7()
    canonical = _canonical(body).encode()
    await pool.execute(
        "INSERT INTO intake_requests (idempotency_key, request_hash, status, response, claimed_at)"
        " VALUES ('k-1', $1, 'pending', $2, now() - interval '10 minutes')",
        request_hash(canonical),
        {"event_ids": [str(planned)], "recorded_at": "2026-01-01T00:00:00+00:00"},
    )
    answer = await intake.post("/v1/events", json=body, headers={"Idempotency-Key": "k-1"})
    assert answer.status_code == 202, answer.text
    assert UUID(answer.json()["events"][0]["event_id"]) == planned
    (record,) = await read_topic(settings, settings.ledger_topic)
    assert decode(record.value).event_id == planned

    fresh_claim = given_json("crm-10")
    await pool.execute(
        "INSERT INTO intake_requests (idempotency_key, request_hash, status, response)"
        " VALUES ('k-2', $1, 'pending', '{}')",
        request_hash(_canonical(fresh_claim).encode()),
    )
    busy = await intake.post("/v1/events", json=fresh_claim, headers={"Idempotency-Key": "k-2"})
    assert busy.status_code == 409
    assert len(await read_topic(settings, settings.ledger_topic)) == 1


def _canonical(body: dict[str, Any]) -> str:
    """The canonical form intake hashes: the validated submission list, as JSON."""
    submission = SUBMISSION_ADAPTER.validate_python(body)
    return orjson.dumps([submission.model_dump(mode="json")]).decode()


async def test_poison_in_the_ledger_is_dead_lettered_and_projection_goes_on(
    settings: Settings, pool: asyncpg.Pool[Any]
) -> None:
    await append_events(settings, [given_event("crm-1")])
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(settings.ledger_topic, b"garbage", key=b"crm-1")
    finally:
        await producer.stop()
    await append_events(settings, [given_event("crm-1", minutes=5)])

    async with serve(projector_app(settings), settings.projector_port):
        await wait_projected(pool, 2)

        async def dead_lettered() -> bool:
            return len(await read_topic(settings, settings.dead_letter_topic)) == 1

        await eventually(dead_lettered)
    (dead,) = await read_topic(settings, settings.dead_letter_topic)
    assert dead.value == b"garbage"
    assert dead.headers["x-origin-topic"] == settings.ledger_topic.encode()
    assert dead.headers["x-error-reason"] == b"undecodable_event"
    assert await pool.fetchval("SELECT version FROM subscribers WHERE subject_id = 'crm-1'") == 2


async def test_a_database_outage_is_retried_and_nothing_is_skipped(
    settings: Settings, pool: asyncpg.Pool[Any]
) -> None:
    await pool.execute("ALTER TABLE subscribers RENAME TO subscribers_away")
    async with serve(projector_app(settings), settings.projector_port):
        await append_events(settings, [given_event(f"crm-{i}") for i in range(20)])

        retries_before = _retries()

        async def retried() -> bool:
            return _retries() > retries_before

        await eventually(retried)
        assert await projected_count(pool) == 0
        await pool.execute("ALTER TABLE subscribers_away RENAME TO subscribers")
        await wait_projected(pool, 20)
    assert await pool.fetchval("SELECT count(*) FROM subscribers") == 20


def _retries() -> float:
    return REGISTRY.get_sample_value("consent_ledger_projector_retries_total") or 0.0
