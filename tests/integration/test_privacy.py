"""Privacy by design, end to end: crypto-shredding, the identity index and its suppression list,
master-key rotation, and tamper detection, through the HTTP APIs, the topic and the tables."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from events.codec import decode, encode
from events.sealing import MasterKey, TamperedError, unseal
from services.config import Settings
from services.logs import JsonFormatter
from services.privacy.keystore import KeyStore, rotate_master
from services.privacy.secrets import load_secrets
from services.replay.run import replay
from tests.integration.conftest import (
    PERSONAL,
    TopicRecord,
    append_events,
    eventually,
    read_topic,
    wait_projected,
)
from tests.samples import given_json, valid_json

pytestmark = pytest.mark.integration

EMAIL = "kadonnut.henkilo@example.fi"
IP = "203.0.113.77"
AGENT = 'Mozilla/5.0 (Förget-me "quoted") Gecko/20100101'


def encodings(secret: str) -> set[bytes]:
    """The secret as it could appear in bytes: plain, case-folded, JSON-escaped, hex, and base64
    (standard and url-safe, at each of the three alignments it can have inside longer text)."""
    raw = secret.encode()
    forms = {raw, raw.lower(), raw.upper(), orjson.dumps(secret)[1:-1]}
    forms.add(secret.encode("unicode_escape"))
    forms |= {raw.hex().encode(), raw.hex().upper().encode()}
    for pad in (b"", b"x", b"xy"):
        for b64 in (base64.b64encode, base64.urlsafe_b64encode):
            text = b64(pad + raw)
            forms.add(text[len(pad) * 4 // 3 + (2 if pad else 0) : -4])
    return {f for f in forms if len(f) >= 8}


def leaks(haystack: bytes) -> list[str]:
    found = []
    for secret in (EMAIL, IP, AGENT):
        found += [f"{secret!r} as {form!r}" for form in encodings(secret) if form in haystack]
    return found


@pytest.fixture
def service_logs() -> Iterator[io.StringIO]:
    """Everything the in-process services log, as the JSON lines they write in production."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def dump_database(pool: asyncpg.Pool[Any]) -> bytes:
    """Every row of every table of the database, as text."""
    tables = await pool.fetch(
        "SELECT schemaname, tablename FROM pg_tables"
        " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
    )
    out = []
    for t in tables:
        rows = await pool.fetch(f'SELECT t::text AS row FROM "{t[0]}"."{t[1]}" AS t')
        out += [r["row"].encode() for r in rows]
    return b"\n".join(out)


async def erased_state(pool: asyncpg.Pool[Any], subject: str) -> None:
    async def done() -> bool:
        return bool(
            await pool.fetchval(
                "SELECT erased_at IS NOT NULL FROM subscribers WHERE subject_id = $1", subject
            )
        )

    await eventually(done)


async def test_after_an_erasure_the_person_is_nowhere_in_any_encoding(
    settings: Settings,
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
    pool: asyncpg.Pool[Any],
    service_logs: io.StringIO,
) -> None:
    personal = {"email": EMAIL, "ip_address": IP, "user_agent": AGENT}
    given = await intake.post("/v1/events", json=given_json("crm-77", personal=personal))
    assert given.status_code == 202, given.text
    before = await read_topic(settings, settings.ledger_topic)
    assert leaks(b"".join(r.value for r in before)) == [], "sealed from the first append"

    async def read_as_dpo() -> bool:  # a read of personal data is logged and recorded too
        answer = await projector.get("/v1/subjects/crm-77", params=PERSONAL)
        return answer.status_code == 200 and answer.json()["email"] == EMAIL

    await eventually(read_as_dpo)
    erasure = valid_json("subject.erased", subject_id="crm-77")
    assert (await intake.post("/v1/events", json=erasure)).status_code == 202
    await erased_state(pool, "crm-77")

    records = await read_topic(settings, settings.ledger_topic)
    topic = b"\n".join(
        r.value + (r.key or b"") + b"".join(records_headers(r.headers)) for r in records
    )
    assert leaks(topic) == []
    assert leaks(await dump_database(pool)) == []
    assert leaks(service_logs.getvalue().encode()) == []
    assert service_logs.getvalue(), "the services did log"

    ours = [decode(r.value) for r in records if r.key == b"crm-77"]
    types = [e.type for e in ours]
    assert types[0] == "consent.given"
    assert "subject.erased" in types
    assert ours[0].sealed is not None
    assert ours[0].personal.email is None
    history = await projector.get("/v1/subjects/crm-77/history", params=PERSONAL)
    first = history.json()["events"][0]["event"]
    assert first["personal_state"] == "shredded"
    assert first["purpose"] == "newsletter"
    assert first["data"]["notice_version"] == "2022-02-22"

    # Replay: every projection rebuilt from offset 0 of the shredded log equals the live one.
    # (The reads of personal data above were recorded as events too: read the topic again.)
    everything = await read_topic(settings, settings.ledger_topic)
    await wait_projected(pool, len({decode(r.value).event_id for r in everything}))
    report = await replay(settings)
    assert report.equal, report.text()
    assert report.records == len(everything)


def records_headers(headers: dict[str, bytes]) -> list[bytes]:
    return [k.encode() + v for k, v in headers.items()]


async def test_a_crm_reimport_of_a_suppressed_address_needs_an_explicit_consent(
    intake: httpx.AsyncClient, projector: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    """Erased or objected: a registration under a new CRM id is refused and names the field;
    under the same id it is accepted and not eligible; a fresh explicit consent subscribes."""
    crm = {"legal_basis": "legitimate_interest", "method": "crm_import"}
    for subject, ending in (("crm-e", "subject.erased"), ("crm-o", "objection.received")):
        address = {"email": f"{subject}.person@example.fi"}
        first = given_json(subject, personal=address)
        created = await intake.post("/v1/events", json=first)
        assert created.status_code == 202, created.text
        end = await intake.post("/v1/events", json=valid_json(ending, subject_id=subject))
        assert end.status_code == 202, end.text

        async def suppressed(subject: str = subject) -> bool:
            return bool(
                await pool.fetchval(
                    "SELECT count(*) FROM identities WHERE subject_id = $1"
                    " AND suppression IS NOT NULL",
                    subject,
                )
            )

        await eventually(suppressed)
        data = {**first["data"], **crm}
        reimport = given_json(f"{subject}-new", personal=address, data=data)
        refused = await intake.post("/v1/events", json=reimport)
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["errors"]
        assert error["field"] == "personal.email"
        assert "suppression list" in error["reason"]

        by_email = {k: v for k, v in reimport.items() if k != "subject_id"}
        same = await intake.post("/v1/events", json=by_email)
        assert same.status_code == 202, same.text
        assert same.json()["events"][0]["subject_id"] == subject, "named by e-mail: same person"

        explicit = given_json(f"{subject}-new", personal=address)
        assert (await intake.post("/v1/events", json=explicit)).status_code == 202

    seen: dict[str, str] = {}

    async def settled() -> bool:
        rows = await pool.fetch(
            "SELECT subject_id, purposes->'newsletter'->>'eligible' AS ok FROM subscribers"
            " WHERE subject_id LIKE 'crm-%'"
        )
        seen.update({r["subject_id"]: r["ok"] for r in rows})
        return seen == {
            "crm-e": "false", "crm-o": "false", "crm-e-new": "true", "crm-o-new": "true",
        }  # fmt: skip

    try:
        await eventually(settled)
    except AssertionError as exc:
        raise AssertionError(f"eligibility by subject: {seen}") from exc


async def test_a_person_named_only_by_email_gets_one_subject_id(
    intake: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    body = {k: v for k, v in given_json("x", personal={"email": "Only.Email@Example.fi"}).items()
            if k != "subject_id"}  # fmt: skip
    first = await intake.post("/v1/events", json=body)
    again = await intake.post(
        "/v1/events", json={**body, "personal": {"email": " only.email@example.FI"}}
    )
    assert first.status_code == again.status_code == 202
    minted = first.json()["events"][0]["subject_id"]
    assert minted.startswith("sub-")
    assert again.json()["events"][0]["subject_id"] == minted
    neither = {k: v for k, v in body.items() if k != "personal"}
    refused = await intake.post("/v1/events", json=neither)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "subject_id"
    assert await pool.fetchval("SELECT count(*) FROM identities WHERE subject_id = $1", minted) == 1


async def test_after_master_key_rotation_old_events_open_and_the_old_key_opens_nothing(
    settings: Settings, intake: httpx.AsyncClient, pool: asyncpg.Pool[Any], tmp_path: Any
) -> None:
    for n in range(5):
        assert (await intake.post("/v1/events", json=given_json(f"rot-{n}"))).status_code == 202
    old = load_secrets(settings).master
    new = MasterKey.from_text(MasterKey.generate_text())
    assert await rotate_master(pool, old, new) == 5
    rows = await pool.fetch("SELECT subject_id, generation, wrapped FROM subject_keys")
    for row in rows:
        with pytest.raises(TamperedError):
            old.unwrap(row["subject_id"], row["generation"], row["wrapped"])
    keys = KeyStore(pool, new)
    for record in await read_topic(settings, settings.ledger_topic):
        event = decode(record.value)
        assert event.sealed is not None
        found = await keys.find_exact([(event.subject_id, event.sealed.key_generation)])
        key = found[(event.subject_id, event.sealed.key_generation)]
        assert unseal(event.sealed, key, event.event_id).email == f"{event.subject_id}@example.com"
    with pytest.raises(ValueError, match="neither"):
        await rotate_master(pool, old, MasterKey(b"z" * 32))


async def test_a_changed_ciphertext_is_refused_by_the_projector_and_the_reader(
    settings: Settings,
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
    pool: asyncpg.Pool[Any],
) -> None:
    answer = await intake.post("/v1/events", json=given_json("crm-t"))
    assert answer.status_code == 202
    await wait_projected(pool, 1)
    (record,) = await read_topic(settings, settings.ledger_topic)
    event = decode(record.value)
    assert event.sealed is not None
    other = given_json("crm-u")
    moved = await intake.post("/v1/events", json=other)  # a second person's sealed section
    assert moved.status_code == 202
    await wait_projected(pool, 2)

    # In the mirror: a changed ciphertext, and a section moved from another event.
    text = event.sealed.ciphertext
    changed = ("B" if text[0] == "A" else "A") + text[1:]  # the first byte's bits change
    await pool.execute(
        "UPDATE ledger_events SET payload ="
        " jsonb_set(payload, '{sealed,ciphertext}', to_jsonb($1::text)) WHERE subject_id = 'crm-t'",
        changed,
    )
    history = await projector.get("/v1/subjects/crm-t/history", params=PERSONAL)
    assert history.json()["events"][0]["event"]["personal_state"] == "tampered"
    assert "personal" not in history.json()["events"][0]["event"]

    # On the topic: a forged record is dead-lettered with the reason, never folded.
    forged = event.model_copy(
        update={"sealed": event.sealed.model_copy(update={"ciphertext": changed})}
    )
    await append_events(settings, [forged])
    dead: list[TopicRecord] = []

    async def dead_lettered() -> bool:
        dead[:] = await read_topic(settings, settings.dead_letter_topic)
        return bool(dead)

    await eventually(dead_lettered)
    assert dead[0].headers["x-error-reason"] == b"tampered_event"
    assert orjson.loads(encode(forged))["sealed"]["ciphertext"] == changed
