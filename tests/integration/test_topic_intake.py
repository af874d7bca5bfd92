"""Producers over Kafka: valid items reach the ledger, poison goes to the dead-letter topic."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from events.codec import decode
from services.config import Settings
from services.intake.main import create_app
from tests.integration.conftest import eventually, read_topic, serve
from tests.samples import given_json, valid_json, withdrawn_json

pytestmark = pytest.mark.integration


async def produce(settings: Settings, values: list[bytes], *, together: bool = False) -> None:
    """Produce in this order under one key; ``together``: in one produce request, so that
    intake reads them in one batch."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        if together:
            sent = [await producer.send(settings.intake_topic, v, key=b"crm") for v in values]
            await asyncio.gather(*sent)
        else:
            for value in values:
                await producer.send_and_wait(settings.intake_topic, value, key=b"crm")
    finally:
        await producer.stop()


def as_bytes(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


async def test_poison_goes_to_the_dead_letter_topic_and_intake_goes_on(
    settings: Settings, intake: httpx.AsyncClient
) -> None:
    await produce(
        settings,
        [
            as_bytes(given_json("crm-1")),
            b"{not json at all",
            as_bytes({**given_json("crm-2"), "type": "consent.teleported"}),
            as_bytes({**given_json("crm-3"), "occurred_at": "2024-02-30T00:00:00Z"}),
            as_bytes({**given_json("crm-5"), "purpose": "newzletter"}),
            as_bytes(withdrawn_json("crm-1")),
        ],
    )

    async def arrived() -> bool:  # dead letters and appends are separate writes: wait for both
        dead = await read_topic(settings, settings.dead_letter_topic)
        return len(dead) >= 4 and len(await read_topic(settings, settings.ledger_topic)) >= 2

    await eventually(arrived)
    ledger = [decode(r.value) for r in await read_topic(settings, settings.ledger_topic)]
    assert [(e.type, e.subject_id) for e in ledger] == [
        ("consent.given", "crm-1"),
        ("consent.withdrawn", "crm-1"),
    ]

    dead = await read_topic(settings, settings.dead_letter_topic)
    assert [r.headers["x-origin-offset"] for r in dead] == [b"1", b"2", b"3", b"4"]
    assert {r.headers["x-origin-topic"] for r in dead} == {settings.intake_topic.encode()}
    assert [r.headers["x-error-reason"] for r in dead] == [
        b"malformed_json",
        b"validation_failed",
        b"validation_failed",
        b"policy",
    ]
    assert b"type" in dead[1].headers["x-error-detail"]
    assert b"occurred_at" in dead[2].headers["x-error-detail"]
    assert dead[0].value == b"{not json at all"
    assert b"unknown purpose 'newzletter'" in dead[3].headers["x-error-detail"]

    # Intake keeps running after poison, and did not append anything twice.
    await produce(settings, [as_bytes(given_json("crm-4"))])

    async def next_one_arrived() -> bool:
        return len(await read_topic(settings, settings.ledger_topic)) == 3

    await eventually(next_one_arrived)
    metrics = (await intake.get("/metrics")).text
    assert 'consent_ledger_events_rejected_total{channel="kafka",reason="malformed_json"' in metrics


async def test_a_restarted_intake_resumes_after_what_it_committed(settings: Settings) -> None:
    async with serve(create_app(settings), settings.intake_port):
        await produce(settings, [as_bytes(given_json(f"crm-{i}")) for i in range(30)])

        async def all_appended() -> bool:
            return len(await read_topic(settings, settings.ledger_topic)) == 30

        await eventually(all_appended)
    async with serve(create_app(settings), settings.intake_port):
        await produce(settings, [as_bytes(given_json("crm-last"))])

        async def one_more() -> bool:
            return len(await read_topic(settings, settings.ledger_topic)) >= 31

        await eventually(one_more)
    subjects = [
        decode(r.value).subject_id for r in await read_topic(settings, settings.ledger_topic)
    ]
    assert len(subjects) == 31
    assert sorted(subjects) == sorted([f"crm-{i}" for i in range(30)] + ["crm-last"])


async def test_over_kafka_as_over_http_people_are_named_sealed_and_suppressed(
    settings: Settings, intake: httpx.AsyncClient, projector: httpx.AsyncClient
) -> None:
    """The intake topic takes the HTTP path's privacy steps: an address names the person, the
    personal section is sealed before the append, an erased address cannot be registered again
    under another id without an explicit consent (dead-lettered, naming the field), and the
    erasure destroys the person's data key."""
    address = {"email": "kafka.person@example.fi", "ip_address": "198.51.100.23"}
    by_email = {k: v for k, v in given_json("x", personal=address).items() if k != "subject_id"}
    await produce(settings, [as_bytes(given_json("crm-k", personal=address)), as_bytes(by_email)])

    async def both_appended() -> bool:
        return len(await read_topic(settings, settings.ledger_topic)) >= 2

    await eventually(both_appended)
    records = await read_topic(settings, settings.ledger_topic)
    assert not any(b"kafka.person" in r.value or b"198.51.100.23" in r.value for r in records)
    events = [decode(r.value) for r in records]
    assert all(e.sealed is not None and e.personal.email is None for e in events)
    assert [e.subject_id for e in events] == ["crm-k", "crm-k"], "the address named the person"

    await produce(settings, [as_bytes(valid_json("subject.erased", subject_id="crm-k"))])
    pool = await asyncpg.connect(settings.database_url)
    try:

        async def suppressed_and_shredded() -> bool:
            return bool(
                await pool.fetchval(
                    "SELECT bool_and(suppression = 'erased') FROM identities"
                    " WHERE subject_id = 'crm-k'"
                )
            ) and not await pool.fetchval(
                "SELECT count(*) FROM subject_keys WHERE subject_id = 'crm-k'"
                " AND wrapped IS NOT NULL"
            )

        await eventually(suppressed_and_shredded)
    finally:
        await pool.close()
    crm = {**given_json()["data"], "legal_basis": "legitimate_interest", "method": "crm_import"}
    reimport = given_json("crm-k-new", personal=address, data=crm)
    await produce(settings, [as_bytes(reimport)])

    async def refused() -> bool:
        return len(await read_topic(settings, settings.dead_letter_topic)) >= 1

    await eventually(refused)
    (dead,) = await read_topic(settings, settings.dead_letter_topic)
    assert dead.headers["x-error-reason"] == b"policy"
    assert b"personal.email" in dead.headers["x-error-detail"]
    assert b"suppression list" in dead.headers["x-error-detail"]
    assert b"kafka.person" not in dead.headers["x-error-detail"]


async def test_personal_data_in_a_clear_field_is_dead_lettered_naming_the_field(
    settings: Settings, intake: httpx.AsyncClient
) -> None:
    """The ledger topic keeps clear fields for good: an address there goes no further."""
    source = {"system": "signup-form", "actor": "jane@example.com"}
    await produce(
        settings, [as_bytes(given_json("crm-1", source=source)), as_bytes(given_json("crm-2"))]
    )

    async def arrived() -> bool:
        dead = await read_topic(settings, settings.dead_letter_topic)
        return len(dead) >= 1 and len(await read_topic(settings, settings.ledger_topic)) >= 1

    await eventually(arrived)
    ledger = [decode(r.value) for r in await read_topic(settings, settings.ledger_topic)]
    assert [e.subject_id for e in ledger] == ["crm-2"]
    (dead,) = await read_topic(settings, settings.dead_letter_topic)
    assert dead.headers["x-error-reason"] == b"validation_failed"
    detail = dead.headers["x-error-detail"]
    assert b"source.actor" in detail
    assert b"looks like an e-mail address" in detail
    assert b"jane@example.com" not in detail


async def test_the_intake_topic_refuses_an_import_of_an_address_objected_in_the_same_batch(
    settings: Settings, intake: httpx.AsyncClient
) -> None:
    """As over HTTP, but item by item: the objection and the steps around it are appended, the
    import under another subject id is dead-lettered; and a request received with its identity
    verification in one batch is accepted, the second seeing the first."""
    li = {"notice_version": "2022-02-22", "language": "fi", "method": "crm_import",
          "legal_basis": "legitimate_interest"}  # fmt: skip
    address = {"email": "objected.over.kafka@example.fi"}
    await produce(settings, [as_bytes(given_json("crm-x", data=li, personal=address))])

    async def imported() -> bool:
        return len(await read_topic(settings, settings.ledger_topic)) == 1

    await eventually(imported)
    await produce(
        settings,
        [
            as_bytes(valid_json("objection.received", "crm-x")),
            as_bytes(given_json("crm-y", data=li, personal=address)),
            as_bytes(valid_json("request.received", "crm-x")),
            as_bytes(valid_json("request.identity_verified", "crm-x")),
        ],
        together=True,
    )

    async def decided() -> bool:
        return len(await read_topic(settings, settings.dead_letter_topic)) == 1

    await eventually(decided)
    ledger = [decode(r.value) for r in await read_topic(settings, settings.ledger_topic)]
    assert [(e.type, e.subject_id) for e in ledger[1:]] == [
        ("objection.received", "crm-x"),
        ("request.received", "crm-x"),
        ("request.identity_verified", "crm-x"),
    ]
    (dead,) = await read_topic(settings, settings.dead_letter_topic)
    assert dead.headers["x-origin-offset"] == b"2"
    assert b"personal.email" in dead.headers["x-error-detail"]
