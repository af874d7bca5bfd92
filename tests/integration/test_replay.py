"""``consent-ledger replay``: a rebuild from offset 0 equals the live projections, a corrupted
live row is found and named, ``--swap`` puts the rebuilt tables in, and refuses to once the
projector has moved past the replay's end."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from typing import Any

import asyncpg
import pytest

from projections.db import create_pool
from services.cli import main
from services.config import Settings
from services.intake.main import create_app as intake_app
from services.messaging.appender import Appender, OutRecord
from services.projector.main import create_app as projector_app
from services.replay.reader import ReplayError
from services.replay.report import ReplayReport, RowDifference
from services.replay.run import replay
from services.replay.swap import SwapRefusedError, swap
from tests.integration.conftest import (
    append_events,
    consent_stream,
    issue_token,
    serve,
    wait_projected,
)
from tests.samples import valid_json

pytestmark = pytest.mark.integration

DPO = {"X-Actor": "dpo-maija"}
ALL_TABLES = [
    "subscribers",
    "rights_requests",
    "recipient_notifications",
    "ledger_events",
    "projector_offsets",
]


async def post(intake: Any, path: str, body: dict[str, Any]) -> int:
    answer = await intake.post(path, json=body, headers=DPO)
    assert answer.status_code == 202, answer.text
    return len(answer.json().get("events", [None]))


async def build_ledger(settings: Settings) -> None:
    """Consents of 300 people appended directly, a poison record, and through intake the
    rectifications, restrictions, erasures (each with its Art. 19 notice) and rights requests
    of three more; then the live projector folds it all and stops."""
    await append_events(settings, consent_stream(subjects=300, events_per_subject=4))
    events = 1200
    poison = Appender(settings.kafka_options(), "test-poison")
    await poison.start()
    try:  # keyed like crm-1, whose later events show the projector passed it
        await poison.append([OutRecord(settings.ledger_topic, b"crm-1", b"not an event")])
    finally:
        await poison.stop()
    async with serve(
        intake_app(settings), settings.intake_port, await issue_token(settings)
    ) as intake:
        for n in (1, 2, 3):
            subject = f"crm-{n}"
            request = {
                "subject_id": subject,
                "right": "erasure",
                "channel": "letter",
                "written": True,
                "signed": True,
                "received_by": "dpo-maija",
                "received_at": "2024-03-04T09:00:00Z",
            }
            events += await post(intake, "/v1/requests", request)
            # an address of its own: an erased person's address is suppressed for the others
            moved = {"personal": {"email": f"{subject}.new@example.fi"}}
            events += await post(intake, "/v1/events", valid_json("consent.given", subject))
            events += await post(
                intake, "/v1/events", valid_json("subject.rectified", subject, **moved)
            )
            events += await post(intake, "/v1/events", valid_json("restriction.applied", subject))
            events += await post(intake, "/v1/events", valid_json("subject.erased", subject))
    async with serve(projector_app(settings), settings.projector_port):
        pool = await create_pool(settings.database_url, max_size=1)
        try:
            await wait_projected(pool, events)
        finally:
            await pool.close()


async def execute(settings: Settings, *statements: str) -> list[Any]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return [await conn.fetch(sql) for sql in statements]
    finally:
        await conn.close()


def run_replay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, ReplayReport, str]:
    code = main(["replay", "--json", *args])
    out = capsys.readouterr()
    return code, ReplayReport.model_validate_json(out.out), out.err


PERSISTENCE = """
SELECT c.relname, c.relpersistence::text AS relpersistence
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind = 'r'
"""


async def persistence(database_url: str, schema: str) -> dict[str, str]:
    """Each table of ``schema``: ``p`` (logged) or ``u`` (unlogged)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(PERSISTENCE, schema)
    finally:
        await conn.close()
    return {row["relname"]: row["relpersistence"] for row in rows}


def schema_exists(settings: Settings, name: str) -> bool:
    (rows,) = asyncio.run(execute(settings, f"SELECT 1 FROM pg_namespace WHERE nspname = '{name}'"))
    return bool(rows)


def test_a_replay_equals_live_names_a_corrupted_row_and_swaps_it_right(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(build_ledger(settings))
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)

    called = time.monotonic()
    code, report, progress = run_replay(
        capsys, "--schema", "replay_first", "--batch-size", "300", "--processes", "3"
    )
    returned = time.monotonic()
    assert code == 0, report.text()
    assert report.rebuild_monotonic is not None  # the rebuild's window, for the bench's CPU
    began, ended = report.rebuild_monotonic
    assert called < began < ended < returned  # inside the command: the comparison came after
    assert ended - began == pytest.approx(report.seconds, abs=0.001)
    assert report.equal
    assert report.processes == 3
    assert "in 3 processes" in report.text()
    assert [t.table for t in report.tables] == ALL_TABLES
    for table in report.tables:
        assert table.live_rows == table.replay_rows > 0, table
        assert table.live_checksum == table.replay_checksum
    assert report.undecodable == 1
    assert report.applied == report.tables[3].live_rows  # every event of the mirror, once
    assert "records/s" in progress
    assert "ETA" in progress
    assert not schema_exists(settings, "replay_first")  # equal: nothing is left behind
    assert report.logged_seconds is None  # dropped, so never made logged

    # A withdrawn person is made eligible behind the ledger's back, and a notice vanishes.
    asyncio.run(
        execute(
            settings,
            "UPDATE subscribers SET purposes = jsonb_set(purposes, '{newsletter,eligible}',"
            " 'true') WHERE subject_id = 's-00007'",
            "DELETE FROM recipient_notifications WHERE subject_id = 'crm-2' AND action = 'erasure'",
        )
    )
    code, report, _ = run_replay(capsys, "--schema", "replay_audit")
    assert code == 1
    assert not report.equal
    tables = {t.table: t for t in report.tables}
    assert tables["subscribers"].differing_rows == 1
    assert tables["subscribers"].differences == [
        RowDifference(key={"subject_id": "s-00007"}, columns=["purposes"])
    ]
    assert tables["subscribers"].live_checksum != tables["subscribers"].replay_checksum
    (gone,) = tables["recipient_notifications"].differences
    assert gone.only_in == "replay"
    assert tables["ledger_events"].equal
    assert tables["rights_requests"].equal
    assert report.kept
    assert schema_exists(settings, "replay_audit")  # left for inspection

    code = main(["replay", "--schema", "replay_fix", "--swap"])
    assert code == 0
    swapped = capsys.readouterr().out
    assert "swapped in" in swapped
    assert "made durable (logged) in" in swapped
    fixed, previous = asyncio.run(
        execute(
            settings,
            "SELECT purposes->'newsletter'->>'eligible' AS e FROM subscribers"
            " WHERE subject_id = 's-00007'",
            "SELECT purposes->'newsletter'->>'eligible' AS e FROM replay_fix_previous.subscribers"
            " WHERE subject_id = 's-00007'",
        )
    )
    assert fixed[0]["e"] == "false"
    assert previous[0]["e"] == "true"  # the old live tables are kept aside
    swapped_in = asyncio.run(persistence(settings.database_url, "public"))
    assert {swapped_in[table] for table in ALL_TABLES[:4]} == {"p"}  # durable, as live must be
    assert not schema_exists(settings, "replay_fix")
    code, report, _ = run_replay(capsys, "--schema", "replay_after")
    assert code == 0, report.text()


async def test_a_swap_is_refused_once_the_projector_moved_past_the_replay(
    settings: Settings,
) -> None:
    await append_events(settings, consent_stream(subjects=20, events_per_subject=2))
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        async with serve(projector_app(settings), settings.projector_port):
            await wait_projected(pool, 40)
        report = await replay(settings, "replay_late", keep=True)
        assert report.equal
        assert set((await persistence(settings.database_url, "replay_late")).values()) == {"p"}
        async with serve(projector_app(settings), settings.projector_port):
            await append_events(settings, consent_stream(subjects=1, events_per_subject=1))
            await wait_projected(pool, 41)
        with pytest.raises(SwapRefusedError, match=r"partition \d+: live at \d+, replay ended"):
            await swap(settings.database_url, report)
        assert await pool.fetchval("SELECT count(*) FROM subscribers") == 20
        assert await pool.fetchval("SELECT count(*) FROM replay_late.subscribers") == 20
    finally:
        await pool.close()


async def test_a_replay_rebuilds_into_unlogged_tables_and_logs_a_kept_schema(
    settings: Settings,
) -> None:
    """While the rebuild runs, no table of the replay schema writes the write-ahead log; once
    the schema is kept, every table of it does (a crash must not empty what a swap puts live)."""
    await append_events(settings, consent_stream(subjects=300, events_per_subject=4))
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        async with serve(projector_app(settings), settings.projector_port):
            await wait_projected(pool, 1200)
    finally:
        await pool.close()
    seen: list[dict[str, str]] = []

    async def watch() -> None:
        while True:
            seen.append(await persistence(settings.database_url, "replay_watched"))
            await asyncio.sleep(0.01)

    watching = asyncio.create_task(watch())
    try:
        report = await replay(settings, "replay_watched", batch_size=100, keep=True)
    finally:
        watching.cancel()
    assert report.equal, report.text()
    assert report.logged_seconds is not None
    assert f"made durable (logged) in {report.logged_seconds:,.1f} s" in report.text()
    tables = set(await persistence(settings.database_url, "replay_watched"))
    assert set(ALL_TABLES) <= tables
    assert {"u"} in [set(s.values()) for s in seen if set(s) == tables]  # all unlogged at once
    assert set((await persistence(settings.database_url, "replay_watched")).values()) == {"p"}


async def test_a_replay_compares_with_live_as_it_stood_when_the_replay_started(
    settings: Settings,
) -> None:
    """The projector keeps folding new events while the replay runs; the replay reads up to
    the offsets it found and compares with the live tables of that same instant, so the two
    still agree."""
    await append_events(settings, consent_stream(subjects=200, events_per_subject=5))
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        async with serve(projector_app(settings), settings.projector_port):
            await wait_projected(pool, 1000)
            more = consent_stream(subjects=400, events_per_subject=1)

            async def keep_appending() -> None:
                for n in range(0, len(more), 10):
                    await append_events(settings, more[n : n + 10])

            appending = asyncio.create_task(keep_appending())
            report = await replay(settings, "replay_meanwhile", batch_size=50, processes=2)
            appending.cancel()
            moved = await pool.fetchval("SELECT count(*) FROM ledger_events")
        assert report.equal, report.text()
        assert report.processes == 2
        assert report.applied == 1000
        assert moved > 1000  # the live projection did move on while the replay ran
    finally:
        await pool.close()


async def test_a_replay_process_that_fails_fails_the_replay_and_leaves_nothing_behind(
    settings: Settings,
) -> None:
    """The stored offset of one partition lies past the end of the topic (as after the topic
    was recreated): the process holding it says so, the others are stopped, the schema is gone."""
    await append_events(settings, consent_stream(subjects=60, events_per_subject=2))
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        async with serve(projector_app(settings), settings.projector_port):
            await wait_projected(pool, 120)
        partition = await pool.fetchval(
            "UPDATE projector_offsets SET next_offset = next_offset + 1000 WHERE partition ="
            " (SELECT max(partition) FROM projector_offsets WHERE next_offset > 0)"
            " RETURNING partition"
        )
        short = rf"the topic {settings.ledger_topic} ends before the projector's stored offsets"
        with pytest.raises(
            ReplayError, match=rf"{short} \(partition: last stable offset \{{{partition}: "
        ):
            await replay(settings, "replay_short", processes=3)
        assert multiprocessing.active_children() == []
        assert not await pool.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = 'replay_short'")
    finally:
        await pool.close()


def test_a_replay_refuses_a_bad_or_taken_schema_name(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert main(["replay", "--schema", "Live; DROP"]) == 2
    assert "schema: 'Live; DROP' is not a plain lower-case name" in capsys.readouterr().err
    asyncio.run(execute(settings, "CREATE SCHEMA replay_taken"))
    assert main(["replay", "--schema", "replay_taken"]) == 2
    assert "schema: 'replay_taken' exists already" in capsys.readouterr().err
