"""Every invalid event type and field combination gets a 4xx naming the item, the field and
the reason; nothing of the request is appended."""

from __future__ import annotations

from itertools import count
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from aiokafka.partitioner import DefaultPartitioner

from events.catalog import EVENT_TYPES
from services.config import Settings
from tests.integration.conftest import append_events, eventually, read_topic, wait_projected
from tests.samples import REQUEST_ID, VALID, recorded_event, valid_json

pytestmark = pytest.mark.integration


def without(body: dict[str, Any], field: str) -> dict[str, Any]:
    data = {k: v for k, v in body["data"].items() if k != field}
    return {**body, "data": data}


@pytest.mark.parametrize("kind", list(EVENT_TYPES))
async def test_each_required_data_field_is_named_when_missing(
    settings: Settings, intake: httpx.AsyncClient, kind: str
) -> None:
    required = sorted(
        EVENT_TYPES[kind].model_json_schema()["$defs"][
            EVENT_TYPES[kind].model_json_schema()["properties"]["data"]["$ref"].rsplit("/", 1)[1]
        ]["required"]
    )
    assert set(required) <= set(VALID[kind]["data"])
    items = [without(valid_json(kind), field) for field in required]
    items.append({**valid_json(kind), "data": {**VALID[kind]["data"], "surprise": 1}})
    answer = await intake.post("/v1/events/batch", json={"events": items})
    assert answer.status_code == 422, answer.text
    named = {(e["item"], e["field"]) for e in answer.json()["errors"]}
    expected = {(i, f"data.{field}") for i, field in enumerate(required)}
    expected.add((len(required), "data.surprise"))
    assert named == expected
    assert await read_topic(settings, settings.ledger_topic) == []


POLICY_CASES = [
    pytest.param(
        valid_json("consent.given", purpose="newzletter"), "purpose", "unknown purpose",
        id="unknown-purpose",
    ),
    pytest.param(
        valid_json("consent.given", data={**VALID["consent.given"]["data"],
                                          "notice_version": "2019-01-01"}),
        "data.notice_version", "has no notice version", id="unknown-notice",
    ),
    pytest.param(
        valid_json("consent.given", purpose="analytics", data={
            **VALID["consent.given"]["data"], "legal_basis": "legitimate_interest"}),
        "data.legal_basis", "based on consent", id="wrong-basis",
    ),
    pytest.param(
        valid_json("subject.erased", personal={"email": "x@example.fi"}),
        "personal", "must not carry personal data", id="erasure-with-personal-data",
    ),
    pytest.param(
        valid_json("subject.rectified", personal={}), "personal.email", "corrected e-mail",
        id="rectification-without-value",
    ),
    pytest.param(
        valid_json("request.fulfilled"), "data.request_id", "no request", id="unknown-request",
    ),
    pytest.param(
        valid_json("recipient.notified", data={**VALID["recipient.notified"]["data"],
                                               "recipient_id": "acme"}),
        "data.recipient_id", "unknown recipient", id="unknown-recipient",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("body", "field", "reason"), POLICY_CASES)
async def test_register_and_lifecycle_violations_are_named(
    settings: Settings, intake: httpx.AsyncClient, body: dict[str, Any], field: str, reason: str
) -> None:
    good = valid_json("consent.given", subject_id="crm-ok")
    answer = await intake.post("/v1/events/batch", json={"events": [good, body]})
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]
    assert any(e["item"] == 1 and field in e["field"] and reason in e["reason"] for e in errors), (
        errors
    )
    assert all(e.get("item") == 1 for e in errors)
    assert await read_topic(settings, settings.ledger_topic) == []
    if errors[0]["type"] == "policy":
        metrics = (await intake.get("/metrics")).text
        assert f'reason="policy",type="{body["type"]}"' in metrics


async def test_a_request_id_cannot_be_received_twice(
    settings: Settings, intake: httpx.AsyncClient, projector: httpx.AsyncClient
) -> None:
    first = await intake.post("/v1/events", json=valid_json("request.received"))
    assert first.status_code == 202, first.text

    async def projected() -> bool:
        return (await intake.get(f"/v1/requests/{REQUEST_ID}")).status_code == 200

    await eventually(projected)
    again = await intake.post("/v1/events", json=valid_json("request.received"))
    assert again.status_code == 422
    assert again.json()["errors"][0]["reason"] == "this request already exists"
    assert len(await read_topic(settings, settings.ledger_topic)) == 1


def sharing_partition(subject: str, partitions: int) -> str:
    """Another subject whose events share ``subject``'s ledger partition (the key is the
    subject id), so that one writer folds both and one upsert holds both requests."""
    choose = DefaultPartitioner()
    every = list(range(partitions))
    mine = choose(subject.encode(), every, every)
    return next(
        other
        for n in count()
        if choose((other := f"crm-{n}").encode(), every, every) == mine and other != subject
    )


@pytest.mark.parametrize("same_partition", [False, True], ids=["partitions", "one-partition"])
async def test_one_request_id_under_two_subjects_keeps_a_request_for_each(
    same_partition: bool,
    settings: Settings,
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
    pool: asyncpg.Pool[Any],
) -> None:
    """Two intakes can accept one client-chosen request id for two people at the same moment
    (each checks the projection before the other's event is in it), and a producer may write
    to the ledger topic directly. Each person keeps a request of that id, the projector goes
    on, and the DPO names whose request a step is for."""
    other = sharing_partition("crm-a", settings.ledger_partitions) if same_partition else "crm-b"
    await append_events(
        settings,
        [
            recorded_event("request.received", "crm-a"),
            recorded_event("request.received", other),
            recorded_event("consent.given", "crm-a", minutes=1),
        ],
    )
    await wait_projected(pool, 3)
    rows = await pool.fetch(
        "SELECT subject_id, answered_at FROM rights_requests WHERE request_id = $1"
        " ORDER BY subject_id",
        UUID(REQUEST_ID),
    )
    assert [(r["subject_id"], r["answered_at"]) for r in rows] == sorted(
        [("crm-a", None), (other, None)]
    )

    ambiguous = await intake.get(f"/v1/requests/{REQUEST_ID}")
    assert ambiguous.status_code == 409, ambiguous.text
    assert ambiguous.json()["error"] == "request_id_ambiguous"
    assert ambiguous.json()["subjects"] == sorted(["crm-a", other])
    fulfil = f"/v1/requests/{REQUEST_ID}/fulfilment"
    refused = await intake.post(fulfil, json={"outcome": "granted"})
    assert refused.status_code == 409, refused.text

    answered = await intake.post(fulfil, params={"subject_id": other}, json={"outcome": "granted"})
    assert answered.status_code == 202, answered.text
    await wait_projected(pool, 4)
    of_b = await intake.get(f"/v1/requests/{REQUEST_ID}", params={"subject_id": other})
    of_a = await intake.get(f"/v1/requests/{REQUEST_ID}", params={"subject_id": "crm-a"})
    assert (of_a.json()["subject_id"], of_a.json()["timing"]) == ("crm-a", "overdue")
    assert (of_b.json()["subject_id"], of_b.json()["timing"]) == (other, "answered_late")
    again = await intake.post(fulfil, params={"subject_id": other}, json={"outcome": "granted"})
    assert again.status_code == 422, again.text
    assert again.json()["errors"][0]["reason"] == "the request was already answered"
