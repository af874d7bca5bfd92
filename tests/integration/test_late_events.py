"""Events typed in late, through intake, Kafka, the projector and the read APIs: the answer is
decided by when things happened, not by when they were typed in (Art. 16, 17, 18)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from services.config import Settings
from tests.integration.conftest import PERSONAL
from tests.integration.test_suppression import mailing_list, post, settled
from tests.samples import given_json, valid_json

pytestmark = pytest.mark.integration


def on(day: int) -> str:
    return f"2026-11-{day:02d}T10:00:00Z"


async def subject(projector: httpx.AsyncClient, subject_id: str) -> dict[str, Any]:
    answer = await projector.get(f"/v1/subjects/{subject_id}", params=PERSONAL)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def eligible_as_of(projector: httpx.AsyncClient, subject_id: str) -> bool:
    params = {"at": "2026-12-01T00:00:00Z", "basis": "occurred"}
    answer = await projector.get(f"/v1/as-of/subjects/{subject_id}", params=params)
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["purposes"]["newsletter"]["eligible"])


async def test_a_restriction_lift_typed_in_late_does_not_undo_a_later_restriction(
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
    pool: asyncpg.Pool[Any],
    settings: Settings,
) -> None:
    for body in (
        given_json("late-a", occurred_at=on(1)),
        valid_json("restriction.applied", "late-a", occurred_at=on(20)),
        valid_json("restriction.lifted", "late-a", occurred_at=on(10)),  # typed in last
        given_json("late-b", occurred_at=on(1)),
        valid_json("restriction.lifted", "late-b", occurred_at=on(20)),
        valid_json("restriction.applied", "late-b", occurred_at=on(10)),  # typed in last
    ):
        assert (await post(intake, body)).status_code == 202
    await settled(pool, settings)
    assert [e["subject_id"] for e in await mailing_list(projector)] == ["late-b"]
    assert (await subject(projector, "late-a"))["restricted_since"] is not None
    assert (await subject(projector, "late-b"))["restricted_since"] is None
    assert not await eligible_as_of(projector, "late-a")
    assert await eligible_as_of(projector, "late-b")


async def test_the_current_address_is_the_latest_by_occurrence(
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
    pool: asyncpg.Pool[Any],
    settings: Settings,
) -> None:
    old, new = {"email": "old@example.fi"}, {"email": "new@example.fi"}
    for body in (
        given_json("late-c", occurred_at=on(1), personal=old),
        valid_json("subject.rectified", "late-c", occurred_at=on(20), personal=new),
        given_json("late-c", occurred_at=on(5), personal=old),  # a paper consent typed in late
        valid_json("subject.rectified", "late-d", occurred_at=on(20), personal=new),
        valid_json("subject.rectified", "late-d", occurred_at=on(10), personal=old),
    ):
        assert (await post(intake, body)).status_code == 202
    await settled(pool, settings)
    assert (await subject(projector, "late-c"))["email"] == "new@example.fi"
    assert (await subject(projector, "late-d"))["email"] == "new@example.fi"


async def test_an_erasure_typed_in_late_erases_what_was_recorded_before_it(
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
    pool: asyncpg.Pool[Any],
    settings: Settings,
) -> None:
    """The consent of 20 Nov was recorded before the erasure, so its key is shredded with it:
    not eligible and no address, consistently; a consent after the erasure is a new life."""
    for body in (
        given_json("late-e", occurred_at=on(1)),
        given_json("late-e", occurred_at=on(20), personal={"email": "second@example.fi"}),
        valid_json("subject.erased", "late-e", occurred_at=on(10)),  # typed in last
        given_json("late-f", occurred_at=on(1)),
        valid_json("subject.erased", "late-f", occurred_at=on(10)),
        given_json("late-f", occurred_at=on(20), personal={"email": "again@example.fi"}),
    ):
        assert (await post(intake, body)).status_code == 202
    await settled(pool, settings)
    erased = await subject(projector, "late-e")
    assert (erased["email"], erased["purposes"]["newsletter"]["eligible"]) == (None, False)
    again = await subject(projector, "late-f")
    assert (again["email"], again["purposes"]["newsletter"]["eligible"]) == (
        "again@example.fi",
        True,
    )
    assert [e["email"] for e in await mailing_list(projector)] == ["again@example.fi"]
