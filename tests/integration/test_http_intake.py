"""Producers over HTTP: acknowledged appends, projection, idempotency, and bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from events.codec import decode
from services.config import Settings
from tests.integration.conftest import PERSONAL, read_topic, wait_projected
from tests.samples import given_json, valid_json, withdrawn_json

pytestmark = pytest.mark.integration


async def test_an_event_is_acknowledged_with_its_position_and_projected(
    settings: Settings, intake: httpx.AsyncClient, projector: httpx.AsyncClient
) -> None:
    answer = await intake.post("/v1/events", json=given_json("crm-42"))
    assert answer.status_code == 202, answer.text
    (receipt,) = answer.json()["events"]
    assert receipt["subject_id"] == "crm-42"
    assert receipt["topic"] == settings.ledger_topic

    (record,) = await read_topic(settings, settings.ledger_topic)
    assert (record.partition, record.offset) == (receipt["partition"], receipt["offset"])
    assert record.key == b"crm-42"
    assert str(decode(record.value).event_id) == receipt["event_id"]

    async def subject() -> httpx.Response:
        return await projector.get("/v1/subjects/crm-42")

    for _ in range(300):
        state = await subject()
        if state.status_code == 200:
            break
        await _pause()
    body = state.json()
    assert (body["email"], body["personal_state"]) == (None, "withheld")
    assert body["purposes"]["newsletter"]["status"] == "given"
    assert body["purposes"]["newsletter"]["notice_version"] == "2022-02-22"
    assert body["purposes"]["newsletter"]["legal_basis"] == "consent"
    assert body["version"] == 1
    assert body["last_event_id"] == receipt["event_id"]

    history = (await projector.get("/v1/subjects/crm-42/history")).json()
    assert [h["event"]["event_id"] for h in history["events"]] == [receipt["event_id"]]
    assert history["events"][0]["offset"] == receipt["offset"]
    assert history["events"][0]["event"]["personal_state"] == "withheld"

    personal = (await projector.get("/v1/subjects/crm-42", params=PERSONAL)).json()
    assert personal["email"] == "crm-42@example.com"


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.1)


async def test_a_batch_is_appended_whole_and_in_order(
    settings: Settings,
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
    pool: asyncpg.Pool[Any],
) -> None:
    batch = [given_json(f"crm-{i}") for i in range(20)] + [withdrawn_json("crm-3")]
    answer = await intake.post("/v1/events/batch", json={"events": batch})
    assert answer.status_code == 202, answer.text
    receipts = answer.json()["events"]
    assert [r["subject_id"] for r in receipts] == [e["subject_id"] for e in batch]
    await wait_projected(pool, len(batch))
    crm3 = (await projector.get("/v1/subjects/crm-3")).json()
    assert crm3["purposes"]["newsletter"]["status"] == "withdrawn"
    assert crm3["version"] == 2


async def test_the_same_idempotency_key_appends_once(
    settings: Settings, intake: httpx.AsyncClient
) -> None:
    headers = {"Idempotency-Key": "signup-7f3a"}
    first = await intake.post("/v1/events", json=given_json("crm-7"), headers=headers)
    second = await intake.post("/v1/events", json=given_json("crm-7"), headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(await read_topic(settings, settings.ledger_topic)) == 1

    other_body = await intake.post("/v1/events", json=given_json("crm-8"), headers=headers)
    assert other_body.status_code == 422
    assert other_body.json()["error"] == "idempotency_conflict"
    assert len(await read_topic(settings, settings.ledger_topic)) == 1


def _bad(**changes: Any) -> dict[str, Any]:
    return {**given_json("crm-1"), **changes}


def _without(field: str) -> dict[str, Any]:
    body = given_json("crm-1")
    del body[field]
    return body


def _request_received(**data: Any) -> dict[str, Any]:
    body = valid_json("request.received")
    return {**body, "data": {**body["data"], **data}}


BAD_SINGLE = [
    pytest.param(_bad(type="consent.teleported"), "type", "does not match", id="unknown-type"),
    pytest.param(_without("type"), "type", "Unable to extract tag", id="missing-type"),
    pytest.param(
        _bad(subject_id=None, personal={}), "subject_id", "unless personal.email", id="no-subject"
    ),
    pytest.param(_without("occurred_at"), "occurred_at", "Field required", id="missing-field"),
    pytest.param(_bad(subject_id=42), "subject_id", "valid string", id="mistyped-field"),
    pytest.param(
        _bad(subject_id="maija@example.fi"), "subject_id", "not be an e-mail", id="address-as-id"
    ),
    pytest.param(_bad(subject_id="x@localhost"), "subject_id", "'@'", id="at-in-id"),
    pytest.param(
        _bad(source={"system": "signup-form", "actor": "jane@example.com"}),
        "source.actor",
        "must not contain personal data (looks like an e-mail address)",
        id="address-as-actor",
    ),
    pytest.param(
        _bad(source={"system": "10.20.30.40", "actor": "web-visitor"}),
        "source.system",
        "must not contain personal data (looks like an IP address)",
        id="ip-as-system",
    ),
    pytest.param(
        _request_received(received_by="+358 40 123 4567"),
        "data.received_by",
        "must not contain personal data (looks like a phone number)",
        id="phone-as-receiver",
    ),
    pytest.param(
        _bad(personal={"note": "a\u0000b"}), "personal.note", "NUL character", id="nul-in-text"
    ),
    pytest.param(
        _bad(occurred_at="2024-02-30T10:00:00Z"), "occurred_at", "day value", id="no-such-day"
    ),
    pytest.param(
        _bad(occurred_at="2024-03-04T10:00:00"), "occurred_at", "timezone", id="no-timezone"
    ),
    pytest.param(
        _bad(occurred_at="2999-01-01T00:00:00Z"), "occurred_at", "future", id="in-the-future"
    ),
    pytest.param(
        _bad(occurred_at="1924-01-01T00:00:00Z"), "occurred_at", "before 2000", id="too-old"
    ),
    pytest.param(
        _bad(personal={"email": "not-an-address"}), "personal.email", "email", id="bad-email"
    ),
    pytest.param(
        _bad(data={"notice_version": "1", "language": "fi", "method": "telepathy"}),
        "data.method",
        "Input should be",
        id="bad-enum",
    ),
    pytest.param(_bad(event_id="x"), "event_id", "Extra inputs", id="ledger-owned-field"),
]


@pytest.mark.parametrize(("body", "field", "reason"), BAD_SINGLE)
async def test_bad_single_events_are_refused_by_field(
    settings: Settings, intake: httpx.AsyncClient, body: dict[str, Any], field: str, reason: str
) -> None:
    answer = await intake.post("/v1/events", json=body)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["error"] == "validation_failed"
    assert any(e["field"] == field and reason in e["reason"] for e in problem["errors"]), problem
    assert await read_topic(settings, settings.ledger_topic) == []


async def test_a_batch_with_bad_items_names_each_and_appends_nothing(
    settings: Settings, intake: httpx.AsyncClient
) -> None:
    batch = [given_json("crm-1"), _without("source"), given_json("crm-2"), _bad(purpose="X!")]
    answer = await intake.post("/v1/events/batch", json={"events": batch})
    assert answer.status_code == 422
    problem = answer.json()
    assert "item(s) invalid (1, 3)" in problem["message"]
    named = {(e["item"], e["field"]) for e in problem["errors"]}
    assert named == {(1, "source"), (3, "purpose")}
    assert await read_topic(settings, settings.ledger_topic) == []


async def test_malformed_json_and_oversized_batches_are_refused(
    settings: Settings, intake: httpx.AsyncClient
) -> None:
    malformed = await intake.post(
        "/v1/events",
        content=b'{"type": "consent.given",',
        headers={"content-type": "application/json"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"] == "malformed_json"

    oversized = await intake.post(
        "/v1/events/batch", json={"events": [given_json(f"s{i}") for i in range(1001)]}
    )
    assert oversized.status_code == 422
    (error,) = oversized.json()["errors"]
    assert error["field"] == "events"
    assert "at most 1000" in error["reason"]

    huge = await intake.post(
        "/v1/events",
        content=orjson.dumps({"pad": "x" * (9 * 1024 * 1024)}),
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert await read_topic(settings, settings.ledger_topic) == []


async def test_a_chunked_body_over_the_limit_is_refused_as_it_streams_in(
    settings: Settings, intake: httpx.AsyncClient
) -> None:
    """Without Content-Length the 8 MiB limit held not: the whole body was read first."""

    async def nine_mib() -> AsyncIterator[bytes]:
        for _ in range(9 * 16):
            yield b"x" * (64 * 1024)

    huge = await intake.post(
        "/v1/events", content=nine_mib(), headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413, huge.text
    assert huge.json()["error"] == "body_too_large"
    assert await read_topic(settings, settings.ledger_topic) == []


async def test_operations_endpoints(
    intake: httpx.AsyncClient, projector: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    for service in (intake, projector):
        assert (await service.get("/healthz")).json() == {"status": "ok"}
        ready = await service.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"kafka": "ok", "postgres": "ok"}
    await intake.post("/v1/events", json=given_json("crm-m"))
    await intake.post("/v1/events", json=_bad(type="nope"))
    await intake.post("/v1/events", json=_without("source"))
    metrics = (await intake.get("/metrics")).text
    assert 'consent_ledger_events_accepted_total{channel="http",type="consent.given"}' in metrics
    assert (
        'consent_ledger_events_rejected_total{channel="http",reason="union_tag_invalid",'
        'type="unknown"}' in metrics
    )
    assert (
        'consent_ledger_events_rejected_total{channel="http",reason="missing",'
        'type="consent.given"}' in metrics
    )
    await wait_projected(pool, 1)
    projector_metrics = (await projector.get("/metrics")).text
    assert 'consent_ledger_projection_lag{partition="' in projector_metrics
    openapi = (await intake.get("/openapi.json")).json()
    assert {"/v1/events", "/v1/events/batch"} <= set(openapi["paths"])
