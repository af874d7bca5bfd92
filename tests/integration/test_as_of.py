"""Point-in-time answers (``/v1/as-of/...``) equal a brute-force fold of the history up to the
instant, by occurrence or by recording time, at random instants of random ledgers."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.catalog import AnyEvent
from projections.db import create_pool
from projections.state import SubjectState, eligibility, fold, purpose_view
from projections.store import SubscriberStore
from services.access.http import Guard
from services.access.tokens import TokenStore
from services.cli import main
from services.config import Settings
from services.errors import install_error_handlers
from services.intake.main import create_app as intake_app
from services.point_in_time import Basis
from services.projector.as_of import CSV_COLUMNS, as_of_router, subject_as_of_out
from services.projector.main import create_app as projector_app
from tests.integration.conftest import bearer, issue_token, serve, wait_projected
from tests.integration.test_store_properties import as_records
from tests.samples import valid_json
from tests.strategies import BASE, PURPOSES, SUBJECTS, ledger

pytestmark = pytest.mark.integration


def one_owner_per_request(log: list[AnyEvent]) -> list[AnyEvent]:
    """The log without request events about a request id another subject used first: intake
    refuses those, and the store cannot hold one request under two subjects."""
    owner: dict[Any, str] = {}
    kept = []
    for event in log:
        request_id = getattr(getattr(event, "data", None), "request_id", None)
        if request_id is None or owner.setdefault(request_id, event.subject_id) == event.subject_id:
            kept.append(event)
    return kept


def brute_force(log: list[AnyEvent], at: datetime, basis: Basis) -> dict[str, SubjectState]:
    """The states the whole history up to ``at`` folds to, without e-mail addresses."""
    kept = [e for e in log if (e.occurred_at if basis == "occurred" else e.recorded_at) <= at]
    return {s: replace(state, addresses=()) for s, state in fold(kept).items()}


def eligible_now(state: SubjectState, purpose: str, at: datetime) -> tuple[Any, ...] | None:
    verdict = eligibility(state, purpose)
    view = purpose_view(state, purpose)
    if not verdict.eligible or view is None:
        return None
    if view.valid_until is not None and view.valid_until <= at:
        return None
    return (view.legal_basis, view.notice_version, str(verdict.event_id))


async def answers_equal_brute_force(
    database_url: str, log: list[AnyEvent], instants: list[tuple[datetime, Basis]]
) -> None:
    pool = await create_pool(database_url, max_size=2)
    try:
        await pool.execute(
            "TRUNCATE subscribers, rights_requests, recipient_notifications, ledger_events,"
            " projector_offsets"
        )
        records = as_records(log)
        ends = {r.partition: r.offset + 1 for r in records}
        await SubscriberStore(pool, "ledger").apply(records, ends)  # the mirror, as live
        app = FastAPI()
        install_error_handlers(app)
        tokens = TokenStore(pool)
        app.include_router(as_of_router(pool, PURPOSES, Guard(tokens)))
        token, _ = await tokens.create("auditor", "as-of property")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://as-of", headers=bearer(token)
        ) as client:
            for at, basis in instants:
                expected = brute_force(log, at, basis)
                params = {"at": at.isoformat(), "basis": basis}
                for subject in SUBJECTS:
                    answer = await client.get(f"/v1/as-of/subjects/{subject}", params=params)
                    if subject not in expected:
                        assert answer.status_code == 404, answer.text
                        continue
                    assert answer.status_code == 200, answer.text
                    wanted = subject_as_of_out(expected[subject], at, basis)
                    assert answer.json() == wanted.model_dump(mode="json")
                for purpose in PURPOSES:
                    answer = await client.get(f"/v1/as-of/eligible/{purpose}", params=params)
                    assert answer.status_code == 200, answer.text
                    lines = [orjson.loads(line) for line in answer.text.splitlines()]
                    got = {
                        line["subject_id"]: (
                            line["legal_basis"],
                            line["notice_version"],
                            line["event_ids"][-1],
                        )
                        for line in lines
                    }
                    assert [line["subject_id"] for line in lines] == sorted(got)
                    assert got == {
                        s: verdict
                        for s, state in expected.items()
                        if (verdict := eligible_now(state, purpose, at)) is not None
                    }
    finally:
        await pool.close()


#: Instants around the strategies' times: occurrences within 600 minutes of BASE, recordings
#: one second apart a day later.
INSTANTS = st.one_of(
    st.integers(-1, 601).map(lambda m: (BASE + timedelta(minutes=m), "occurred")),
    st.integers(-1, 41).map(lambda s: (BASE + timedelta(days=1, seconds=s), "recorded")),
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(log=ledger(max_size=40), instants=st.lists(INSTANTS, min_size=1, max_size=4))
def test_answers_at_any_instant_equal_the_fold_of_the_history_up_to_it(
    settings: Settings, log: list[AnyEvent], instants: list[tuple[datetime, Basis]]
) -> None:
    log = one_owner_per_request(log)
    asyncio.run(answers_equal_brute_force(settings.database_url, log, instants))


async def late_and_withdrawn(settings: Settings, now: datetime) -> dict[str, httpx.Response]:
    """A paper consent typed in two days late, and a double opt-in withdrawn 12 hours ago;
    what the running projector's API answers about a day ago and about now, by both bases."""

    def at(**ago: float) -> str:
        return (now - timedelta(**ago)).isoformat()

    steps = [
        valid_json("consent.given", "paper-1", occurred_at=at(days=2)),
        valid_json("consent.requested", "web-2", occurred_at=at(days=3)),
        valid_json("consent.confirmed", "web-2", occurred_at=at(days=3, minutes=-5)),
        valid_json("consent.withdrawn", "web-2", occurred_at=at(hours=12)),
    ]
    async with serve(
        intake_app(settings), settings.intake_port, await issue_token(settings)
    ) as intake:
        for body in steps:
            answer = await intake.post("/v1/events", json=body)
            assert answer.status_code == 202, answer.text
    day_ago = at(days=1)
    async with serve(
        projector_app(settings), settings.projector_port, await issue_token(settings)
    ) as projector:
        pool = await create_pool(settings.database_url, max_size=1)
        try:
            await wait_projected(pool, len(steps))
        finally:
            await pool.close()
        after = datetime.now(UTC).isoformat()
        eligible, web = "/v1/as-of/eligible/newsletter", "/v1/as-of/subjects/web-2"
        queries = {
            "eligible_day_ago_csv": (eligible, {"at": day_ago, "format": "csv"}),
            "eligible_day_ago_recorded": (eligible, {"at": day_ago, "basis": "recorded"}),
            "eligible_now": (eligible, {"at": after}),
            "web_day_ago": (web, {"at": day_ago}),
            "web_day_ago_recorded": (web, {"at": day_ago, "basis": "recorded"}),
            "web_now_recorded": (web, {"at": after, "basis": "recorded"}),
            "no_offset": (web, {"at": "2024-03-04T10:00:00"}),
        }
        return {name: await projector.get(path, params=q) for name, (path, q) in queries.items()}


def test_what_was_true_and_what_the_ledger_knew_over_http_and_the_cli(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    answers = asyncio.run(late_and_withdrawn(settings, now))

    # What was true a day ago: both were eligible, the double opt-in by its request and link.
    table = list(csv.DictReader(io.StringIO(answers["eligible_day_ago_csv"].text)))
    assert answers["eligible_day_ago_csv"].headers["content-type"].startswith("text/csv")
    assert [row["subject_id"] for row in table] == ["paper-1", "web-2"]
    assert [len(row["event_ids"].split()) for row in table] == [1, 2]
    assert {row["notice_version"] for row in table} == {"2022-02-22"}
    assert {row["legal_basis"] for row in table} == {"consent"}
    web = answers["web_day_ago"].json()
    assert web["purposes"]["newsletter"]["eligible"] is True
    assert "email" not in web
    # What the ledger knew a day ago: nothing, everything was recorded today.
    assert answers["eligible_day_ago_recorded"].text == ""
    assert answers["web_day_ago_recorded"].status_code == 404
    # Now the withdrawal counts.
    now_lines = [orjson.loads(line) for line in answers["eligible_now"].text.splitlines()]
    assert [line["subject_id"] for line in now_lines] == ["paper-1"]
    assert answers["web_now_recorded"].json()["purposes"]["newsletter"]["status"] == "withdrawn"
    assert answers["web_now_recorded"].json()["version"] == 3
    assert answers["no_offset"].status_code == 422
    assert "at" in answers["no_offset"].text

    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    day_ago = (now - timedelta(days=1)).isoformat()
    assert main(["as-of", "eligible", "newsletter", "--at", day_ago, "--format", "csv"]) == 0
    assert capsys.readouterr().out == answers["eligible_day_ago_csv"].text
    assert main(["as-of", "subject", "web-2", "--at", day_ago]) == 0
    assert json.loads(capsys.readouterr().out) == web
    assert main(["as-of", "subject", "web-2", "--at", day_ago, "--basis", "recorded"]) == 1
    assert "no events about 'web-2'" in capsys.readouterr().err


async def test_the_eligible_list_refuses_a_nul_before_the_first_byte(
    projector: httpx.AsyncClient,
) -> None:
    """PostgreSQL cannot store U+0000: it was a 200 cut off mid-stream; now a 422 naming it."""
    answer = await projector.get("/v1/as-of/eligible/a%00b", params={"at": BASE.isoformat()})
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["path.purpose"]


async def test_the_eligible_list_of_an_unknown_purpose_is_a_404_as_the_mailing_lists_is(
    projector: httpx.AsyncClient,
) -> None:
    at = {"at": BASE.isoformat()}
    answers = [
        await projector.get(f"{p}/nope", params=at)
        for p in ("/v1/as-of/eligible", "/v1/mailing-lists")
    ]
    assert [a.status_code for a in answers] == [404, 404]
    assert {a.json()["error"] for a in answers} == {"unknown_purpose"}


async def test_the_eligible_list_answers_accept_text_csv_with_csv_unless_format_says_otherwise(
    projector: httpx.AsyncClient,
) -> None:
    path, at = "/v1/as-of/eligible/newsletter", BASE.isoformat()
    asked = await projector.get(path, params={"at": at}, headers={"Accept": "text/csv"})
    assert asked.headers["content-type"].startswith("text/csv")
    assert asked.text == ",".join(CSV_COLUMNS) + "\n"
    told = await projector.get(
        path, params={"at": at, "format": "ndjson"}, headers={"Accept": "text/csv"}
    )
    assert told.headers["content-type"] == "application/x-ndjson"
