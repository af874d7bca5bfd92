"""An address that objected or was erased never becomes mailable again without an explicit
consent from it, whatever subject id, event type, batch or timing brings it back (Art. 21(3),
Art. 17); and a refused request leaves nothing behind (no identity row, no claim, no event)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from services.config import Settings
from tests.integration.conftest import eventually, read_topic
from tests.samples import given_json, valid_json

pytestmark = pytest.mark.integration

ADDRESS = "suppressed.person@example.fi"
CRM = {"notice_version": "2022-02-22", "language": "fi", "method": "crm_import"}
LI = {**CRM, "legal_basis": "legitimate_interest"}


def crm_import(subject: str, email: str | None = ADDRESS, **overrides: Any) -> dict[str, Any]:
    personal = {"email": email} if email else {}
    return given_json(subject, data=LI, personal=personal, **overrides)


def objection(subject: str) -> dict[str, Any]:
    return valid_json("objection.received", subject, occurred_at="2024-03-05T10:00:00Z")


def rectification(subject: str, email: str = ADDRESS) -> dict[str, Any]:
    return valid_json("subject.rectified", subject, personal={"email": email})


async def post(intake: httpx.AsyncClient, *bodies: dict[str, Any]) -> httpx.Response:
    if len(bodies) == 1:
        return await intake.post("/v1/events", json=bodies[0])
    return await intake.post("/v1/events/batch", json={"events": list(bodies)})


async def mailing_list(projector: httpx.AsyncClient, purpose: str = "newsletter") -> list[Any]:
    answer = await projector.get(f"/v1/mailing-lists/{purpose}")
    assert answer.status_code == 200, answer.text
    return [orjson.loads(line) for line in answer.content.splitlines()]


async def suppressions(projector: httpx.AsyncClient) -> list[Any]:
    answer = await projector.get("/v1/suppressions")
    assert answer.status_code == 200, answer.text
    return [orjson.loads(line) for line in answer.content.splitlines()]


async def settled(pool: asyncpg.Pool[Any], settings: Settings) -> None:
    """Wait until the projection holds every event of the ledger topic."""
    ledger = len(await read_topic(settings, settings.ledger_topic))

    async def caught_up() -> bool:
        return bool(await pool.fetchval("SELECT count(*) FROM ledger_events") >= ledger)

    await eventually(caught_up)


def refused_field(answer: httpx.Response) -> set[tuple[int, str]]:
    assert answer.status_code == 422, answer.text
    return {(e.get("item", 0), e["field"]) for e in answer.json()["errors"]}


async def test_a_rectification_cannot_move_a_suppressed_address_to_another_subject(
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
    pool: asyncpg.Pool[Any],
    settings: Settings,
) -> None:
    assert (await post(intake, crm_import("crm-x"))).status_code == 202
    assert (await post(intake, objection("crm-x"))).status_code == 202
    assert (await post(intake, crm_import("crm-y", "other@example.fi"))).status_code == 202

    answer = await post(intake, rectification("crm-y"))
    assert refused_field(answer) == {(0, "personal.email")}
    assert "suppression list" in answer.text
    await settled(pool, settings)
    assert ADDRESS not in [e["email"] for e in await mailing_list(projector)]


@pytest.mark.parametrize("together", [True, False], ids=["one batch", "two requests"])
async def test_an_import_right_after_an_objection_is_refused_before_the_projector_sees_it(
    intake: httpx.AsyncClient, pool: asyncpg.Pool[Any], settings: Settings, together: bool
) -> None:
    """No projector runs here: the suppression comes from what intake committed."""
    assert (await post(intake, crm_import("crm-x"))).status_code == 202
    if together:
        answer = await post(intake, objection("crm-x"), crm_import("crm-y"))
        assert refused_field(answer) == {(1, "personal.email")}
    else:
        assert (await post(intake, objection("crm-x"))).status_code == 202
        assert refused_field(await post(intake, crm_import("crm-y"))) == {(0, "personal.email")}
    assert await pool.fetchval("SELECT count(*) FROM ledger_events") == 0, "not projected yet"


async def test_an_objection_reaches_every_subject_that_already_holds_the_address(
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
    pool: asyncpg.Pool[Any],
    settings: Settings,
) -> None:
    """Import under Y first, objection by X after (one batch, and a rectification in another
    request): each other holder gets an objection of its own, caused by X's."""
    assert (await post(intake, crm_import("crm-x"))).status_code == 202
    assert (await post(intake, crm_import("crm-r", "before@example.fi"))).status_code == 202
    assert (await post(intake, rectification("crm-r"))).status_code == 202
    answer = await post(intake, crm_import("crm-y"), objection("crm-x"))
    assert answer.status_code == 202, answer.text
    objection_id = answer.json()["events"][1]["event_id"]
    derived = [e for e in answer.json()["events"][2:] if e["type"] == "objection.received"]
    assert sorted(e["subject_id"] for e in derived) == ["crm-r", "crm-y"]

    await settled(pool, settings)
    assert ADDRESS not in [e["email"] for e in await mailing_list(projector)]
    rows = await pool.fetch(
        "SELECT subject_id, payload->>'causation_id' AS cause FROM ledger_events"
        " WHERE type = 'objection.received' AND subject_id IN ('crm-r', 'crm-y')"
    )
    assert {r["cause"] for r in rows} == {objection_id}


async def test_concurrent_objection_and_import_never_leave_the_address_mailable(
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
    pool: asyncpg.Pool[Any],
    settings: Settings,
) -> None:
    for n in range(6):
        address = f"race-{n}@example.fi"
        assert (await post(intake, crm_import(f"crm-x{n}", address))).status_code == 202
        answers = await asyncio.gather(
            post(intake, objection(f"crm-x{n}")), post(intake, crm_import(f"crm-y{n}", address))
        )
        assert answers[0].status_code == 202, answers[0].text
        assert answers[1].status_code in (202, 422), answers[1].text
    await settled(pool, settings)
    mailable = {e["email"] for e in await mailing_list(projector)}
    assert not mailable & {f"race-{n}@example.fi" for n in range(6)}


async def test_only_an_explicit_consent_attaches_a_suppressed_address_to_a_new_subject(
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
    pool: asyncpg.Pool[Any],
    settings: Settings,
) -> None:
    assert (await post(intake, crm_import("crm-x"))).status_code == 202
    assert (await post(intake, objection("crm-x"))).status_code == 202
    requested = valid_json("consent.requested", "crm-n", personal={"email": ADDRESS})
    assert refused_field(await post(intake, requested)) == {(0, "personal.email")}
    explicit = given_json("crm-n", personal={"email": ADDRESS}, occurred_at="2024-03-06T10:00Z")
    assert (await post(intake, explicit)).status_code == 202
    await settled(pool, settings)
    assert [e["subject_id"] for e in await mailing_list(projector)] == ["crm-n"]


async def test_an_erased_and_reconsented_person_is_not_also_a_suppression(
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
    pool: asyncpg.Pool[Any],
    settings: Settings,
) -> None:
    for body in (
        given_json("crm-e", occurred_at="2024-03-01T10:00:00Z"),
        valid_json("subject.erased", "crm-e", occurred_at="2024-03-02T10:00:00Z"),
        given_json("crm-e", occurred_at="2024-03-03T10:00:00Z"),
        given_json("crm-w", occurred_at="2024-03-01T10:00:00Z"),
        valid_json("consent.withdrawn", "crm-w", occurred_at="2024-03-02T10:00:00Z"),
    ):
        assert (await post(intake, body)).status_code == 202
    await settled(pool, settings)
    listed = {e["subject_id"] for e in await mailing_list(projector)}
    blocked = {(s["subject_id"], s["purpose"]) for s in await suppressions(projector)}
    assert listed == {"crm-e"}
    assert blocked == {("crm-w", "newsletter")}


async def test_a_request_is_extended_once_and_answered_no_earlier_than_received(
    intake: httpx.AsyncClient, projector: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    received = valid_json("request.received", "crm-q", occurred_at="2024-03-04T10:00:00Z")
    assert (await post(intake, received)).status_code == 202

    async def projected() -> bool:
        return bool(await pool.fetchval("SELECT count(*) FROM rights_requests"))

    await eventually(projected)
    early = valid_json("request.fulfilled", "crm-q", occurred_at="2024-03-01T10:00:00Z")
    assert refused_field(await post(intake, early)) == {(0, "occurred_at")}
    assert refused_field(await post(intake, received, early)) == {
        (0, "data.request_id"),  # the request exists already
        (1, "occurred_at"),
    }
    first = valid_json("request.extended", "crm-q", occurred_at="2024-03-10T10:00:00Z")
    assert (await post(intake, first)).status_code == 202
    second = valid_json(
        "request.extended", "crm-q", occurred_at="2024-03-11T10:00:00Z", data={
            "request_id": first["data"]["request_id"], "reasons": "other reasons"}
    )  # fmt: skip
    assert refused_field(await post(intake, first, second)) == {(1, "data.request_id")}


async def test_a_refused_request_leaves_no_identity_row_claim_or_event(
    intake: httpx.AsyncClient, pool: asyncpg.Pool[Any], settings: Settings
) -> None:
    bad_notice = given_json("crm-b", personal={"email": "never.kept@example.fi"})
    bad_notice["data"] = {**bad_notice["data"], "notice_version": "1999-01-01"}
    answer = await intake.post("/v1/events", json=bad_notice, headers={"Idempotency-Key": "k-1"})
    assert answer.status_code == 422, answer.text
    good = {k: v for k, v in given_json("x", personal={"email": "good@example.fi"}).items()
            if k != "subject_id"}  # fmt: skip
    assert refused_field(await post(intake, good, bad_notice)) == {(1, "data.notice_version")}

    for table in ("identities", "address_holders", "intake_requests", "subject_keys"):
        assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    assert await read_topic(settings, settings.ledger_topic) == []

    by_email = {k: v for k, v in bad_notice.items() if k != "subject_id"}
    by_email["data"] = given_json()["data"]
    answer = await post(intake, by_email)
    assert answer.status_code == 202, answer.text
    assert answer.json()["events"][0]["subject_id"] != "crm-b", "no binding was left behind"


async def test_mailing_lists_and_suppressions_never_name_the_same_subject_and_purpose(
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
    pool: asyncpg.Pool[Any],
    settings: Settings,
) -> None:
    bodies = [
        crm_import("crm-a", "a@example.fi"),
        valid_json("consent.withdrawn", "crm-a", purpose="newsletter"),
        given_json("crm-b", purpose="analytics"),
        valid_json("restriction.applied", "crm-b"),
        given_json("crm-c"),
        valid_json("subject.erased", "crm-c", occurred_at="2024-03-05T10:00:00Z"),
        given_json("crm-d"),
        given_json("crm-d", purpose="analytics"),
        valid_json("consent.withdrawn", "crm-d", purpose="analytics",
                   occurred_at="2024-03-05T10:00:00Z"),
    ]  # fmt: skip
    assert (await intake.post("/v1/events/batch", json={"events": bodies})).status_code == 202
    await settled(pool, settings)
    lines = await suppressions(projector)
    for purpose in ("newsletter", "analytics"):
        listed = {e["subject_id"] for e in await mailing_list(projector, purpose)}
        blocked = {s["subject_id"] for s in lines if s["purpose"] in (purpose, None)}
        assert not listed & blocked, purpose
    assert {e["subject_id"] for e in await mailing_list(projector)} == {"crm-d"}
