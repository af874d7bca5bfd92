"""Through the real intake, Kafka, projector and PostgreSQL: however objections, rectifications
and imports of one address interleave across subject ids (one at a time, in one batch, or
concurrently), a suppressed address never appears on a mailing list."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from services.config import Settings
from services.privacy.identity import IdentityIndex
from services.privacy.secrets import load_secrets
from tests.integration.test_suppression import (
    crm_import,
    mailing_list,
    objection,
    rectification,
    settled,
)
from tests.samples import valid_json

pytestmark = pytest.mark.integration

KINDS = ["import", "import elsewhere", "objection", "rectify", "withdraw"]
Step = tuple[str, str, int]  # (kind, subject, how it is sent: 0 alone, 1 batched, 2 concurrent)
_runs = itertools.count()


def body(kind: str, subject: str, address: str) -> dict[str, Any]:
    day = f"2024-03-{1 + len(subject) % 5:02d}T10:00:00Z"
    if kind == "import":
        return crm_import(subject, address, occurred_at=day)
    if kind == "import elsewhere":
        return crm_import(subject, f"{subject}@elsewhere.fi", occurred_at=day)
    if kind == "objection":
        return objection(subject)
    if kind == "rectify":
        return rectification(subject, address)
    return valid_json("consent.withdrawn", subject)


async def send(intake: httpx.AsyncClient, group: list[dict[str, Any]], how: int) -> None:
    """Send a group of steps one by one, as one batch, or concurrently; 4xx answers are fine
    (refusals are the point), anything else is not."""
    if how == 1 and len(group) > 1:
        answers = [await intake.post("/v1/events/batch", json={"events": group})]
    elif how == 2:
        answers = await asyncio.gather(*(intake.post("/v1/events", json=b) for b in group))
    else:
        answers = [await intake.post("/v1/events", json=b) for b in group]
    for answer in answers:
        assert answer.status_code in (202, 422), answer.text


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(KINDS), st.sampled_from(["x", "yy", "zzz"]), st.integers(0, 2)),
        min_size=1,
        max_size=10,
    )
)
@example(steps=[("import", "x", 0), ("objection", "x", 0), ("rectify", "yy", 0)])
@example(steps=[("import", "x", 0), ("objection", "x", 1), ("import", "yy", 1)])
@example(steps=[("import", "x", 0), ("import elsewhere", "yy", 0), ("rectify", "yy", 2),
                ("objection", "x", 2)])  # fmt: skip
async def test_a_suppressed_address_is_never_on_a_mailing_list(
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
    pool: asyncpg.Pool[Any],
    settings: Settings,
    steps: list[Step],
) -> None:
    run = next(_runs)
    address = f"run{run}.shared@example.fi"
    for how, group in itertools.groupby(steps, key=lambda s: s[2]):
        await send(intake, [body(k, f"r{run}-{s}", address) for k, s, _ in group], how)
    await settled(pool, settings)

    key = IdentityIndex(load_secrets(settings).identity).key(address)
    suppression = await pool.fetchval(
        "SELECT suppression FROM identities WHERE email_key = $1", key
    )
    mailable = {e["email"] for e in await mailing_list(projector)}
    if suppression is not None:
        assert address not in mailable, steps
    event("suppressed" if suppression else "not suppressed")
