"""The command line as users run it, and what the services write to their logs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.config import Settings
from tests.integration.conftest import PERSONAL, bearer, issue_token, wait_projected
from tests.samples import given_json
from tools.runner import Service, wait_ready
from tools.stack import isolated_settings
from tools.stack.settings import StackSettings
from tools.stack.state import load_state

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "services.cli"]
#: The developer's command (tools/cli.py): the stack, `run`, the bench, the audience consumer.
DEV_CLI = [sys.executable, "-m", "tools"]


def run_cli(
    settings: Settings, *args: str, cli: list[str] = CLI
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.to_env()}
    return subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=120)


def test_stack_status_names_kafka_and_the_database(stack_settings: Settings) -> None:
    done = run_cli(stack_settings, "stack", "status", "--json", cli=DEV_CLI)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["kafka_bootstrap"] == stack_settings.kafka_bootstrap
    assert status["database_url"] == stack_settings.database_url


@pytest.mark.parametrize(
    "command",
    [
        (),
        ("stack",),
        ("stack", "up"),
        ("stack", "down"),
        ("stack", "status"),
        ("run",),
        ("bench",),
        ("bench-compare",),
        ("bench-steps",),
        ("audience",),
    ],
)
def test_every_developer_command_has_help(
    stack_settings: Settings, command: tuple[str, ...]
) -> None:
    done = run_cli(stack_settings, *command, "--help", cli=DEV_CLI)
    assert done.returncode == 0, done.stderr
    assert "usage: python -m tools" in done.stdout


@pytest.mark.parametrize(
    "command",
    [
        (),
        ("intake",),
        ("projector",),
        ("migrate",),
        ("topics", "create"),
        ("tokens", "create"),
        ("tokens", "list"),
        ("tokens", "revoke"),
        ("keys", "init"),
        ("keys", "generate"),
        ("keys", "rotate"),
        ("schemas", "export"),
        ("replay",),
        ("as-of", "subject"),
        ("as-of", "eligible"),
    ],
)
def test_every_command_has_help(stack_settings: Settings, command: tuple[str, ...]) -> None:
    done = run_cli(stack_settings, *command, "--help")
    assert done.returncode == 0, done.stderr
    assert "usage: consent-ledger" in done.stdout


def test_tokens_are_issued_listed_and_revoked_through_the_cli(settings: Settings) -> None:
    created = run_cli(settings, "tokens", "create", "--role", "auditor", "--label", "cli test",
                      "--grant", "personal_data", "--expires-in-days", "3")  # fmt: skip
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    assert (issued["role"], issued["grants"]) == ("auditor", ["personal_data"])
    assert issued["token"].startswith(f"clt.{issued['token_id']}.")
    listed = run_cli(settings, "tokens", "list")
    assert issued["token_id"] in listed.stdout
    assert "active" in listed.stdout
    assert issued["token"].rsplit(".", 1)[1] not in listed.stdout, "secrets are never shown again"
    assert run_cli(settings, "tokens", "revoke", issued["token_id"]).returncode == 0
    assert "revoked" in run_cli(settings, "tokens", "list").stdout
    again = run_cli(settings, "tokens", "revoke", issued["token_id"])
    assert again.returncode == 1
    assert "no unrevoked token" in again.stderr
    bad = run_cli(settings, "tokens", "create", "--role", "root", "--label", "x")
    assert bad.returncode == 2
    assert "invalid choice: 'root'" in bad.stderr
    named = run_cli(settings, "tokens", "create", "--role", "crm", "--label", "jane@example.com")
    assert (named.returncode, named.stderr.count("\n")) == (2, 1), named.stderr
    assert named.stderr.startswith("consent-ledger: --label: ")
    assert "looks like an e-mail address" in named.stderr


async def test_tokens_list_says_which_tokens_have_expired(
    settings: Settings, pool: asyncpg.Pool[Any]
) -> None:
    created = run_cli(settings, "tokens", "create", "--role", "crm", "--label", "short-lived",
                      "--expires-in-days", "1")  # fmt: skip
    token_id = json.loads(created.stdout)["token_id"]
    await pool.execute(
        "UPDATE api_tokens SET expires_at = now() - interval '1 s' WHERE token_id = $1", token_id
    )
    listed = run_cli(settings, "tokens", "list").stdout.splitlines()
    (line,) = [ln for ln in listed if token_id in ln]
    assert "expired" in line
    assert "active" not in line


def test_a_new_master_key_is_generated_privately_and_rotated_to(
    settings: Settings, tmp_path: Path
) -> None:
    new = tmp_path / "master.key"
    assert run_cli(settings, "keys", "generate", str(new)).returncode == 0
    assert new.stat().st_mode & 0o777 == 0o600
    assert run_cli(settings, "keys", "generate", str(new)).returncode != 0, "never overwritten"
    rotated = run_cli(settings, "keys", "rotate", "--new-key-file", str(new))
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.startswith("rewrapped 0 data keys")


def test_migrate_and_topics_create_are_idempotent(settings: Settings) -> None:
    migrated = run_cli(settings, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "up to date" in migrated.stdout
    topics = run_cli(settings, "topics", "create")
    assert topics.returncode == 0, topics.stderr
    assert settings.ledger_topic in topics.stdout


def test_logs_are_json_lines_with_subject_ids_and_no_email(
    settings: Settings, tmp_path: Path
) -> None:
    log_file = tmp_path / "intake.log"
    env = {**os.environ, **settings.to_env()}
    token = asyncio.run(issue_token(settings, "signup"))
    with log_file.open("wb") as log:
        process = subprocess.Popen([*CLI, "intake"], env=env, stdout=log, stderr=log)
        try:
            wait_ready(Service("intake", settings.intake_host, settings.intake_port), process)
            body = given_json("crm-logged", personal={"email": "secret.person@example.com"})
            url = f"http://127.0.0.1:{settings.intake_port}/v1/events"
            answer = httpx.post(url, json=body, headers=bearer(token))
            assert answer.status_code == 202
        finally:
            process.terminate()
            process.wait(timeout=30)
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    appended = [line for line in lines if line["message"] == "events appended"]
    assert appended, lines
    assert appended[0]["subject_ids"] == ["crm-logged"]
    assert "secret.person" not in log_file.read_text()


README = Path(__file__).resolve().parents[2] / "README.md"


async def test_the_readme_curl_examples_work(
    intake: httpx.AsyncClient, projector: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    bodies = [json.loads(b) for b in re.findall(r"-d '(\{.*?\})'", README.read_text(), re.S)]
    assert [b["type"] for b in bodies] == ["consent.given", "consent.withdrawn"]
    for body in bodies:
        answer = await intake.post("/v1/events", json=body)
        assert answer.status_code == 202, answer.text
    await wait_projected(pool, 2)
    subject = bodies[0]["subject_id"]
    state = (await projector.get(f"/v1/subjects/{subject}", params=PERSONAL)).json()
    assert state["email"] == bodies[0]["personal"]["email"]
    assert state["purposes"]["newsletter"]["status"] == "withdrawn"


def test_run_starts_everything_prints_where_and_stops_clean_on_ctrl_c(
    stack_settings: Settings, tmp_path: Path
) -> None:
    own = isolated_settings(StackSettings(), "test-run")
    output = tmp_path / "run.out"
    env = {**os.environ, **own.to_env(), "CONSENT_LEDGER_STACK_POSTGRES": "true"}
    with output.open("wb") as out:
        process = subprocess.Popen([*DEV_CLI, "run"], env=env, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 180
            while "Press Ctrl-C" not in output.read_text():
                assert process.poll() is None, output.read_text()
                assert time.monotonic() < deadline, output.read_text()
                time.sleep(0.2)
            printed = output.read_text()
            assert f"http://127.0.0.1:{own.intake_port}/docs" in printed
            assert own.kafka_bootstrap in printed
            status = json.loads(run_cli(own, "stack", "status", "--json", cli=DEV_CLI).stdout)
            assert set(status["services"]) == {"intake", "projector"}
            state = load_state(own.stack_dir)
            assert state is not None
            started = [state.kafka, state.postgres, *state.services.values()]
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)
    assert process.returncode == 0, output.read_text()
    assert not [entry for entry in started if entry is not None and entry.alive()]
    assert run_cli(own, "stack", "status", cli=DEV_CLI).returncode == 1
