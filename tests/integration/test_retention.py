"""The retention job on the real stack: erasures and expiries appended once, however often and
however concurrently it runs, and whether or not the projection has caught up."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from services.config import Settings
from services.projector.main import create_app as projector_app
from services.retention.main import run_once
from tests.integration.conftest import eventually, read_topic, serve, wait_projected
from tests.samples import given_json, withdrawn_json

pytestmark = pytest.mark.integration

VALID_UNTIL = "2024-06-01T00:00:00+00:00"


async def post(intake: httpx.AsyncClient, *bodies: dict[str, Any]) -> None:
    answer = await intake.post("/v1/events/batch", json={"events": list(bodies)})
    assert answer.status_code == 202, answer.text


async def ledger(settings: Settings) -> list[dict[str, Any]]:
    """Every event on the ledger topic, as JSON."""
    return [orjson.loads(r.value) for r in await read_topic(settings, settings.ledger_topic)]


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


async def project(settings: Settings, pool: asyncpg.Pool[Any], expected: int) -> None:
    """Run the projector until it folded ``expected`` events, then stop it (so the tables lag
    the log again until the next call)."""
    async with serve(projector_app(settings), settings.projector_port):
        await wait_projected(pool, expected)


async def test_a_withdrawal_is_erased_once_before_and_after_the_projection_caught_up(
    settings: Settings, intake: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    await post(intake, given_json("crm-1"), withdrawn_json("crm-1"))
    await project(settings, pool, 2)

    first = await run_once(settings)
    assert first.to_json() == {
        "dry_run": False,
        "expired": 0,
        "erased": 1,
        "skipped": 0,
        "subjects": ["crm-1"],
    }
    # The projector is stopped: the row still shows the withdrawal, so the same candidate is
    # found again; its idempotency key gives back the first answer and appends nothing.
    lagging = await run_once(settings)
    assert (lagging.erased, lagging.skipped) == (0, 1)

    events = await ledger(settings)
    (erasure,) = of_type(events, "subject.erased")
    withdrawal = of_type(events, "consent.withdrawn")[0]
    assert erasure["data"] == {"grounds": "retention", "purpose": "newsletter", "key_generation": 1}
    assert erasure["occurred_at"] == withdrawal["occurred_at"]  # grace_days = 0
    assert erasure["source"] == {"system": "consent-ledger", "actor": "retention-job"}
    assert "email" not in json.dumps(erasure["personal"])
    (notice,) = of_type(events, "recipient.notified")
    assert notice["data"]["recipient_id"] == "newsletter_tool"
    assert notice["data"]["about_event_id"] == erasure["event_id"]

    await project(settings, pool, len(events))
    row = await pool.fetchrow("SELECT email, erased_at FROM subscribers WHERE subject_id = 'crm-1'")
    assert row is not None
    assert row["email"] is None
    assert row["erased_at"] is not None
    recipients = await pool.fetch(
        "SELECT recipient_id, action, about_event_id::text FROM recipient_notifications"
    )
    assert [tuple(r) for r in recipients] == [("newsletter_tool", "erasure", erasure["event_id"])]

    caught_up = await run_once(settings)
    assert caught_up.to_json()["erased"] == caught_up.to_json()["skipped"] == 0
    assert len(await ledger(settings)) == len(events)


async def test_concurrent_runs_append_once_and_a_dry_run_appends_nothing(
    settings: Settings, intake: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    await post(intake, given_json("crm-2"), withdrawn_json("crm-2"), given_json("crm-3"))
    await project(settings, pool, 3)

    dry = await run_once(settings, dry_run=True)
    assert (dry.dry_run, dry.erased, sorted(dry.subjects)) == (True, 1, ["crm-2"])
    assert len(await ledger(settings)) == 3

    reports = await asyncio.gather(*(run_once(settings) for _ in range(3)))
    assert sum(r.erased for r in reports) == 1
    assert sum(r.skipped for r in reports) == 2
    events = await ledger(settings)
    assert [e["subject_id"] for e in of_type(events, "subject.erased")] == ["crm-2"]
    assert len(of_type(events, "recipient.notified")) == 1


async def test_a_lapsed_analytics_consent_expires_once_and_erases_nothing(
    settings: Settings, intake: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    analytics = given_json(
        "crm-4",
        purpose="analytics",
        data={
            "notice_version": "2022-02-22",
            "language": "fi",
            "method": "checkbox",
            "valid_until": VALID_UNTIL,
        },
        personal={"ip_address": "192.0.2.7"},
    )
    await post(intake, given_json("crm-4"), analytics)
    await project(settings, pool, 2)

    first, lagging = await run_once(settings), await run_once(settings)
    assert (first.expired, first.erased, sorted(first.subjects)) == (1, 0, ["crm-4"])
    assert (lagging.expired, lagging.skipped) == (0, 1)
    events = await ledger(settings)
    (expiry,) = of_type(events, "consent.expired")
    assert expiry["purpose"] == "analytics"
    lapsed = datetime.fromisoformat(VALID_UNTIL)
    assert datetime.fromisoformat(expiry["data"]["valid_until"]) == lapsed
    assert datetime.fromisoformat(expiry["occurred_at"]) == lapsed
    assert expiry["source"]["actor"] == "retention-job"

    await project(settings, pool, len(events))
    row = await pool.fetchrow("SELECT email, purposes FROM subscribers WHERE subject_id = 'crm-4'")
    assert row is not None
    assert row["purposes"]["analytics"]["status"] == "expired"
    assert row["purposes"]["newsletter"]["status"] == "given"
    assert row["email"] == "crm-4@example.com"  # analytics does not use the e-mail address
    again = await run_once(settings)
    assert (again.expired, again.erased, again.skipped) == (0, 0, 0)
    assert len(await ledger(settings)) == len(events)


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.to_env()}
    command = [sys.executable, "-m", "services.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [("retention",), ("retention", "run"), ("retention", "serve")])
def test_the_retention_commands_have_help(settings: Settings, command: tuple[str, ...]) -> None:
    done = run_cli(settings, *command, "--help")
    assert done.returncode == 0, done.stderr
    assert "usage: consent-ledger retention" in done.stdout


async def test_the_cli_prints_a_json_report_and_logs_no_email(
    settings: Settings, intake: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    await post(intake, given_json("crm-5"), withdrawn_json("crm-5"))
    await project(settings, pool, 2)
    dry = await asyncio.to_thread(run_cli, settings, "retention", "run", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) == {
        "dry_run": True,
        "expired": 0,
        "erased": 1,
        "skipped": 0,
        "subjects": ["crm-5"],
    }
    done = await asyncio.to_thread(run_cli, settings, "retention", "run")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["erased"] == 1
    assert "crm-5@example.com" not in done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(line.get("subject_ids") == ["crm-5"] for line in lines)
    assert len(of_type(await ledger(settings), "subject.erased")) == 1


async def test_serve_runs_on_its_interval_until_sigterm(
    settings: Settings, intake: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    await post(intake, given_json("crm-6"), withdrawn_json("crm-6"))
    await project(settings, pool, 2)
    env = {**os.environ, **settings.to_env()}
    command = [sys.executable, "-m", "services.cli", "retention", "serve", "--interval", "0.5"]
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:

        async def erased() -> bool:
            return bool(of_type(await ledger(settings), "subject.erased"))

        await eventually(erased)
        await asyncio.sleep(1.5)  # a few more runs: each finds the key answered
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    assert stderr.decode().count('"retention run finished"') >= 2
    assert len(of_type(await ledger(settings), "subject.erased")) == 1
