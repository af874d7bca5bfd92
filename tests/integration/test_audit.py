"""Tamper evidence through the CLI: ``verify`` finds and locates every kind of tampering,
checkpoints pin the chain, and redelivery or a second projector never forks it."""

from __future__ import annotations

import asyncio
import contextlib
import io
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from events.catalog import AnyEvent
from events.chain import GENESIS, link
from events.codec import decode, encode
from events.subject import Erased
from services.audit.log import Record, read_log
from services.audit.models import CheckpointFile
from services.audit.signing import local_signing_key, public_pem
from services.audit.verify import Partition, check_checkpoints, log_chain
from services.cli import main
from services.config import Settings
from services.projector.main import create_app
from tests.integration.conftest import append_events, consent_stream, eventually, serve
from tests.samples import T0, given_event
from tools.stack.ports import free_port

pytestmark = pytest.mark.integration


async def run_cli_full(*argv: str) -> tuple[int, str, str]:
    """``consent-ledger ARGV`` in-process (in a thread: it runs its own event loop); the exit
    code, stdout and stderr."""

    def call() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
        return code, out.getvalue(), err.getvalue()

    return await asyncio.to_thread(call)


async def run_cli(*argv: str) -> tuple[int, str]:
    code, out, _ = await run_cli_full(*argv)
    return code, out


@pytest.fixture
def keyed(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test's namespace with a signing key of its own, also as the CLI's environment."""
    local_signing_key(tmp_path)
    keyed = settings.model_copy(update={"signing_key_file": tmp_path / "signing-key.pem"})
    for name, value in keyed.to_env().items():
        monkeypatch.setenv(name, value)
    return keyed


async def chained(pool: asyncpg.Pool[Any]) -> int:
    return int(await pool.fetchval("SELECT coalesce(sum(length), 0) FROM ledger_chain_heads"))


async def project(settings: Settings, pool: asyncpg.Pool[Any], positions: int) -> None:
    """Run the projector until the chain covers ``positions`` log positions."""
    async with serve(create_app(settings), settings.projector_port):

        async def done() -> bool:
            return await chained(pool) >= positions

        await eventually(done)


def chain_of(records: list[Record]) -> list[tuple[int, int, bytes]]:
    """(partition, offset, hash) of every position, recomputed here from the log's bytes."""
    heads: dict[int, bytes] = {}
    out = []
    for record in records:
        heads[record.partition] = link(heads.get(record.partition, GENESIS), record.value or b"")
        out.append((record.partition, record.offset, heads[record.partition]))
    return out


def erasure(subject_id: str) -> Erased:
    return Erased.model_validate(
        {
            "type": "subject.erased",
            "event_id": str(uuid.uuid4()),
            "schema_version": 1,
            "subject_id": subject_id,
            "occurred_at": T0.replace(year=2025),
            "recorded_at": T0.replace(year=2025),
            "source": {"system": "dpo-console", "actor": "dpo"},
            "data": {"grounds": "request"},
        }
    )


@dataclass
class Ledger:
    events: list[AnyEvent]
    target: AnyEvent  # an event the tamper tests aim at
    partition: int
    offset: int


@pytest.fixture
async def ledger(keyed: Settings, pool: asyncpg.Pool[Any]) -> Ledger:
    """A projected ledger with a retried append (one event twice) and an erased subject."""
    events: list[AnyEvent] = [*consent_stream(subjects=12, events_per_subject=3)]
    events += [events[5], erasure("s-00007")]  # the retry repeats the event's exact bytes
    await append_events(keyed, events)
    await project(keyed, pool, len(events))
    target = events[3]
    row = await pool.fetchrow(
        'SELECT partition, "offset" FROM ledger_events WHERE event_id = $1', target.event_id
    )
    assert row is not None
    return Ledger(events, target, row["partition"], row["offset"])


async def test_an_untouched_ledger_verifies(ledger: Ledger) -> None:
    code, out = await run_cli("verify", "--json")
    report = orjson.loads(out)
    assert (code, report["ok"], report["findings"]) == (0, True, [])
    partitions = report["partitions"]
    assert sum(p["log_positions"] for p in partitions) == len(ledger.events)
    assert sum(p["chained"] for p in partitions) == len(ledger.events)
    assert sum(p["duplicates"] for p in partitions) == 1
    code, text = await run_cli("verify")
    assert code == 0
    assert text.rstrip().endswith("OK")


async def forge_a_record(settings: Settings, pool: asyncpg.Pool[Any], target: AnyEvent) -> int:
    """Append a rewritten copy of ``target`` (same event id, other bytes); its new offset."""
    forged = decode(encode(target))
    forged = forged.model_copy(update={"source": forged.source.model_copy(update={"actor": "x"})})
    await append_events(settings, [forged])
    before = await chained(pool)
    await project(settings, pool, before + 1)
    offset: int = await pool.fetchval(
        'SELECT max("offset") FROM ledger_chain WHERE event_id = $1', target.event_id
    )
    return offset


@pytest.mark.parametrize("tamper", ["edit", "column", "delete", "insert", "forge", "wipe"])
async def test_tampering_fails_verify_and_says_where(
    tamper: str, ledger: Ledger, keyed: Settings, pool: asyncpg.Pool[Any]
) -> None:
    target, partition, offset = ledger.target.event_id, ledger.partition, ledger.offset
    if tamper == "edit":
        await pool.execute(
            "UPDATE ledger_events SET payload = jsonb_set(payload, '{data,method}', '\"paper\"')"
            " WHERE event_id = $1",
            target,
        )
        expected = ("changed", partition, offset, target)
    elif tamper == "column":  # moves the event into another subject's history
        await pool.execute(
            "UPDATE ledger_events SET subject_id = 's-99999' WHERE event_id = $1", target
        )
        expected = ("changed", partition, offset, target)
    elif tamper == "delete":
        await pool.execute("DELETE FROM ledger_events WHERE event_id = $1", target)
        expected = ("missing", partition, offset, target)
    elif tamper == "insert":
        fake = given_event("s-99999")
        await pool.execute(
            "INSERT INTO ledger_events SELECT $1, topic, partition, 10000, $2, $3, $9, $4, $5,"
            " $6, $7::jsonb FROM ledger_events WHERE event_id = $8",
            fake.event_id,
            fake.subject_id,
            fake.type,
            fake.purpose,
            fake.occurred_at,
            fake.recorded_at,
            orjson.loads(encode(fake)),
            target,
            fake.schema_version,
        )
        expected = ("inserted", partition, 10000, fake.event_id)
    elif tamper == "forge":
        expected = ("changed", partition, await forge_a_record(keyed, pool, ledger.target), target)
    else:  # the partition's whole mirror, chain and head: it must not pass for "not yet projected"
        rows = await pool.fetch(
            'SELECT "offset", event_id FROM ledger_chain WHERE partition = $1 ORDER BY "offset"',
            partition,
        )
        for table in ("ledger_events", "ledger_chain", "ledger_chain_heads"):
            await pool.execute(f"DELETE FROM {table} WHERE partition = $1", partition)
        code, out = await run_cli("verify", "--json")
        report = orjson.loads(out)
        assert code == 1
        assert [(f["kind"], f["offset"], f["event_id"]) for f in report["findings"]] == [
            ("missing", r["offset"], str(r["event_id"])) for r in rows
        ]
        return

    code, out = await run_cli("verify", "--json")
    report = orjson.loads(out)
    assert code == 1
    assert not report["ok"]
    found = [(f["kind"], f["partition"], f["offset"], f["event_id"]) for f in report["findings"]]
    assert found == [(expected[0], expected[1], expected[2], str(expected[3]))]

    code, text = await run_cli("verify")
    assert code == 1
    assert f"{expected[0].upper()}" in text
    assert f"partition {expected[1]} offset {expected[2]} event {expected[3]}" in text


async def test_redelivery_and_a_second_instance_do_not_fork_the_chain(
    ledger: Ledger, keyed: Settings, pool: asyncpg.Pool[Any]
) -> None:
    before = await pool.fetch('SELECT * FROM ledger_chain ORDER BY partition, "offset"')
    await pool.execute("UPDATE projector_offsets SET next_offset = 0")
    second = keyed.model_copy(
        update={"projector_group": keyed.projector_group + "-b", "projector_port": free_port()}
    )
    async with (
        serve(create_app(keyed), keyed.projector_port),
        serve(create_app(second), second.projector_port),
    ):

        async def caught_up() -> bool:
            ends = await pool.fetchval("SELECT sum(next_offset) FROM projector_offsets")
            return bool(ends == len(ledger.events))

        await eventually(caught_up)
        await asyncio.sleep(1)  # let both instances go idle
    assert await pool.fetch('SELECT * FROM ledger_chain ORDER BY partition, "offset"') == before

    # ...and the stored chain is the one the log's bytes give.
    log = await read_log(keyed.kafka_options(), keyed.ledger_topic)
    assert [(r["partition"], r["offset"], r["hash"]) for r in before] == chain_of(log)
    assert (await run_cli("verify"))[0] == 0


async def test_a_checkpoint_pins_the_chain(ledger: Ledger, keyed: Settings, tmp_path: Path) -> None:
    code, out = await run_cli("checkpoint")
    assert code == 0
    signed = CheckpointFile.model_validate_json(out)
    records = await read_log(keyed.kafka_options(), keyed.ledger_topic)
    heads: dict[int, tuple[int, str]] = {}
    for record in records:  # every partition's last position and the log's hash there
        previous = (
            bytes.fromhex(heads[record.partition][1]) if record.partition in heads else GENESIS
        )
        heads[record.partition] = (record.offset, link(previous, record.value or b"").hex())
    assert {c.partition: (c.offset, c.hash) for c in signed.checkpoints} == heads
    assert (await run_cli("checkpoint"))[1] == out  # no new events: the same checkpoints
    saved, public = tmp_path / "checkpoints.json", tmp_path / "public.pem"
    saved.write_text(out)
    code, pem = await run_cli("public-key")
    public.write_text(pem)

    code, text = await run_cli("verify", "--checkpoint", str(saved), "--public-key", str(public))
    assert code == 0, text
    assert "checkpoints checked: " in text

    # A checkpoint altered after signing, or signed by another key, is refused.
    first = signed.checkpoints[0]
    altered = signed.model_copy(
        update={"checkpoints": [first.model_copy(update={"hash": "0" * 64})]}
    )
    saved.write_text(altered.model_dump_json())
    code, out = await run_cli(
        "verify", "--json", "--checkpoint", str(saved), "--public-key", str(public)
    )
    kinds = [(f["kind"], f["partition"], f["offset"]) for f in orjson.loads(out)["findings"]]
    assert (code, kinds) == (1, [("signature", first.partition, first.offset)])
    other = tmp_path / "other"
    other.mkdir()
    public.write_bytes(public_pem(local_signing_key(other).public_key()))
    saved.write_text(signed.model_dump_json())
    code, out = await run_cli(
        "verify", "--json", "--checkpoint", str(saved), "--public-key", str(public)
    )
    assert code == 1
    assert {f["kind"] for f in orjson.loads(out)["findings"]} == {"signature"}

    # A log rewritten before the checkpoint (a chain built from altered bytes) does not match
    # it, even where the rewritten log and mirror agree with each other.
    victim = next(r for r in records if r.partition == first.partition)
    forged = decode(victim.value or b"")
    forged = forged.model_copy(update={"source": forged.source.model_copy(update={"actor": "x"})})
    rewritten = [replace(r, value=encode(forged)) if r is victim else r for r in records]
    key = local_signing_key(tmp_path).public_key()
    for log, expected in ((records, []), (rewritten, [(first.partition, first.offset)])):
        # the log alone: a mirror rebuilt from the rewritten log would agree with it
        partitions = {n: Partition(n, chain) for n, chain in log_chain(log, []).items()}
        found = check_checkpoints(signed, key, keyed.ledger_topic, partitions)
        assert [(f.partition, f.offset) for f in found if "log" in f.detail] == expected


async def test_the_projector_signs_a_checkpoint_every_n_positions(
    keyed: Settings, pool: asyncpg.Pool[Any], tmp_path: Path
) -> None:
    every_two = keyed.model_copy(update={"checkpoint_every": 2})
    events = consent_stream(subjects=1, events_per_subject=5)  # one subject: one partition
    await append_events(every_two, events)
    async with serve(create_app(every_two), every_two.projector_port):

        async def signed() -> bool:
            return bool(await pool.fetchval("SELECT count(*) FROM ledger_checkpoints"))

        await eventually(signed)
    code, out = await run_cli("checkpoint", "--stored")
    stored = CheckpointFile.model_validate_json(out)
    log = await read_log(keyed.kafka_options(), keyed.ledger_topic)
    positions = {(p, o, h.hex()) for p, o, h in chain_of(log)}
    assert code == 0
    assert stored.checkpoints
    assert {(c.partition, c.offset, c.hash) for c in stored.checkpoints} <= positions
    saved = tmp_path / "stored.json"
    saved.write_text(out)
    assert (await run_cli("verify", "--checkpoint", str(saved)))[0] == 0


async def test_bad_input_to_the_audit_commands_is_named(
    keyed: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "missing.json"
    code, _, err = await run_cli_full("verify", "--checkpoint", str(missing))
    assert code == 2
    assert "verify:" in err
    assert "missing.json" in err

    bad = tmp_path / "bad.json"
    bad.write_text('{"checkpoints": [{"topic": "t", "partition": -1}]}')
    code, _, err = await run_cli_full("verify", "--checkpoint", str(bad))
    assert code == 2
    assert "checkpoints.0.partition" in err
    assert "greater than or equal to 0" in err

    bad.write_text('{"receipt_version": "consent-ledger-receipt/0"}')
    code, out, _ = await run_cli_full("receipt", "verify", str(bad))
    assert code == 1
    assert out.startswith(f"INVALID {bad}: receipt: ")

    monkeypatch.delenv("CONSENT_LEDGER_SIGNING_KEY_FILE")
    monkeypatch.setenv("CONSENT_LEDGER_STACK_DIR", str(tmp_path / "empty"))
    code, _, err = await run_cli_full("receipt", "verify", str(bad))
    assert code == 2
    assert "no signing key: set CONSENT_LEDGER_SIGNING_KEY_FILE or pass --public-key" in err
