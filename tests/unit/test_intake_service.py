"""IntakeService and the topic path's Translator on the in-memory adapters: the write path's
guarantees (answer after append, nothing left by a refusal, idempotent retries, marks taken
back after a failed append, suppression without the projector) in milliseconds, no stack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson
import pytest
from aiokafka import ConsumerRecord

from events.catalog import SUBMISSION_ADAPTER, AnySubmission
from events.register import load_register
from services.config import Settings
from services.intake.admission import Admission
from services.intake.memory import (
    MemoryAdmission,
    MemoryAppender,
    MemoryIdempotency,
    MemoryKeyStore,
)
from services.intake.policy import LedgerPolicy, PolicyError
from services.intake.ports import AdmissionBatch, Deadlock
from services.intake.service import IdempotencyConflictError, IntakeService
from services.intake.topic_intake import Translator
from services.messaging.records import AppendError, OutRecord, Receipt
from services.privacy.identity import IdentityIndex
from tests.samples import given_json, valid_json

POLICY = LedgerPolicy(load_register())
SETTINGS = Settings()
INDEX = IdentityIndex(b"unit-test-identity-secret")
ADDRESS = "a@example.fi"
LI = {"notice_version": "2022-02-22", "language": "fi", "method": "crm_import",
      "legal_basis": "legitimate_interest"}  # fmt: skip


@dataclass
class ScriptedAppender:
    """The in-memory log, which can be made to fail or to hold its answer."""

    log: MemoryAppender = field(default_factory=MemoryAppender)
    failing: bool = False
    gate: asyncio.Event | None = None
    attempts: list[Sequence[OutRecord]] = field(default_factory=list)
    reached: asyncio.Event = field(default_factory=asyncio.Event)

    async def append(self, records: Sequence[OutRecord]) -> list[Receipt]:
        self.attempts.append(records)
        self.reached.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise AppendError("Kafka did not accept the events (scripted)")
        return await self.log.append(records)


@dataclass
class Ledger:
    """An intake service and the in-memory state behind it."""

    service: IntakeService
    admission: Admission
    work: MemoryAdmission
    claims: MemoryIdempotency
    keys: MemoryKeyStore
    appender: ScriptedAppender

    async def submit(self, *bodies: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        accepted = await self.service.submit([sub(b) for b in bodies], key, "test")
        return accepted.body

    def suppression(self, address: str = ADDRESS) -> str | None:
        return self.work.owners[INDEX.key(address)].suppression


@pytest.fixture
def ledger() -> Ledger:
    claims, keys, appender = MemoryIdempotency(), MemoryKeyStore(), ScriptedAppender()
    work = MemoryAdmission(claims)
    admission = Admission(work, POLICY, INDEX)
    service = IntakeService(appender, claims, admission, SETTINGS.ledger_topic, keys)
    return Ledger(service, admission, work, claims, keys, appender)


def sub(body: dict[str, Any]) -> AnySubmission:
    return SUBMISSION_ADAPTER.validate_python(body)


def given(subject: str, address: str = ADDRESS, **overrides: Any) -> dict[str, Any]:
    return given_json(subject, personal={"email": address}, **overrides)


def objection(subject: str) -> dict[str, Any]:
    return valid_json("objection.received", subject)


async def test_the_answer_comes_only_after_the_append(ledger: Ledger) -> None:
    ledger.appender.gate = asyncio.Event()
    submitting = asyncio.create_task(ledger.submit(given("crm-a"), key="k"))
    await ledger.appender.reached.wait()
    assert not submitting.done()
    assert await ledger.claims.answered("k", ledger.claims.claimed["k"].digest) is None
    ledger.appender.gate.set()
    body = await submitting
    [record] = ledger.appender.log.log
    [event] = body["events"]
    assert (event["subject_id"], event["offset"]) == ("crm-a", 0)
    assert record.headers[1] == ("event-id", event["event_id"].encode())


async def test_a_refused_batch_leaves_no_owner_holder_claim_key_or_record(ledger: Ledger) -> None:
    with pytest.raises(PolicyError):
        await ledger.submit(given("crm-a"), given("crm-b", purpose="no_such_purpose"), key="k")
    assert (ledger.work.owners, ledger.work.holders) == ({}, set())
    assert (ledger.claims.claimed, ledger.keys.generations) == ({}, {})
    assert ledger.appender.attempts == []


async def test_a_retry_with_the_same_key_replays_the_answer(ledger: Ledger) -> None:
    first = await ledger.service.submit([sub(given("crm-a"))], "k", "test")
    again = await ledger.service.submit([sub(given("crm-a"))], "k", "test")
    assert (first.replayed, again.replayed, again.body) == (False, True, first.body)
    assert len(ledger.appender.log.log) == 1


async def test_a_key_is_refused_for_another_body_and_while_its_request_is_in_flight(
    ledger: Ledger,
) -> None:
    ledger.appender.gate = asyncio.Event()
    in_flight = asyncio.create_task(ledger.submit(given("crm-a"), key="k"))
    await ledger.appender.reached.wait()
    with pytest.raises(IdempotencyConflictError) as busy:
        await ledger.submit(given("crm-a"), key="k")
    with pytest.raises(IdempotencyConflictError) as other:
        await ledger.submit(given("crm-b"), key="k")
    ledger.appender.gate.set()
    await in_flight
    assert (busy.value.status, other.value.status) == (409, 422)


async def test_a_failed_append_takes_the_marks_back_and_releases_the_key(ledger: Ledger) -> None:
    await ledger.submit(given("crm-a"))
    ledger.appender.failing = True
    with pytest.raises(AppendError):
        await ledger.submit(objection("crm-a"), key="k")
    assert ledger.suppression() is None
    ledger.appender.failing = False
    body = await ledger.submit(objection("crm-a"), key="k")  # taken over at once
    planned = dict(ledger.appender.attempts[1][0].headers)["event-id"]
    assert body["events"][0]["event_id"].encode() == planned
    assert ledger.suppression() == "objected"


async def test_an_import_right_after_an_objection_is_refused_without_the_projector(
    ledger: Ledger,
) -> None:
    await ledger.submit(given("crm-a"))
    await ledger.submit(objection("crm-a"))
    with pytest.raises(PolicyError) as refused:
        await ledger.submit(given("crm-b", data=LI))
    assert [(p.item, p.field) for p in refused.value.problems] == [(0, "personal.email")]
    assert ledger.work.holders == {(INDEX.key(ADDRESS), "crm-a")}


async def test_an_erasure_shreds_the_subjects_key_once_appended(ledger: Ledger) -> None:
    await ledger.submit(given("crm-a"))
    await ledger.submit(valid_json("subject.erased", "crm-a"))
    assert ledger.keys.generations["crm-a"] == {1: None}
    assert ledger.suppression() == "erased"


class DeadlockOnce:
    """The in-memory unit of work, whose first transaction the backend aborts at its end."""

    def __init__(self, work: MemoryAdmission) -> None:
        self._work = work
        self.aborted = 0

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AdmissionBatch]:
        async with self._work.begin() as batch:
            yield batch
            if not self.aborted:
                self.aborted += 1
                raise Deadlock("deadlock detected")

    async def unmark(self, event_ids: Iterable[UUID]) -> None:
        await self._work.unmark(event_ids)


async def test_a_batch_aborted_by_a_deadlock_is_decided_again(ledger: Ledger) -> None:
    await ledger.submit(given("crm-a"))
    aborting = DeadlockOnce(ledger.work)
    admission = Admission(aborting, POLICY, INDEX)
    service = IntakeService(ledger.appender, ledger.claims, admission, "ledger", ledger.keys)
    accepted = await service.submit([sub(objection("crm-a"))], "k", "test")
    assert (aborting.aborted, len(accepted.body["events"])) == (1, 1)
    assert ledger.suppression() == "objected"


def consumed(offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(SETTINGS.intake_topic, 0, offset, 0, 0, None, value, None, 0, 0, [])


async def test_the_topic_path_refuses_each_bad_record_alone(ledger: Ledger) -> None:
    translator = Translator(SETTINGS, ledger.admission, ledger.keys)
    await ledger.submit(given("crm-a"), objection("crm-a"))
    bodies = [given("crm-c", "c@example.fi"), given("crm-b", data=LI), given("crm-d", "d@x.fi")]
    values = [orjson.dumps(b) for b in bodies]
    values.insert(1, b"{not json")
    records = [consumed(offset, value) for offset, value in enumerate(values)]
    translation = await translator.translate(records)
    assert [reason for _, reason in translation.outcomes] == [
        None,
        "malformed_json",
        "policy",
        None,
    ]
    topics = [r.topic for r in translation.records]
    ledger_topic, dead = SETTINGS.ledger_topic, SETTINGS.dead_letter_topic
    assert topics == [ledger_topic, dead, dead, ledger_topic]
