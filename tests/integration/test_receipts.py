"""Consent receipts: fetched over HTTP, verified offline, and any single change breaks them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from events.catalog import EVENT_TYPES, AnyEvent
from services.audit.receipts import ReceiptError, verify_receipt
from services.audit.signing import SignatureError, public_pem, read_signing_key
from services.config import Settings
from services.projector.main import create_app
from tests.integration.conftest import append_events, eventually, issue_token, serve
from tests.integration.test_audit import chained, erasure, keyed, run_cli
from tests.samples import given_event, valid_json

pytestmark = pytest.mark.integration
__all__ = ["keyed"]  # the fixture, shared with test_audit

SUBJECT = "crm-receipts-1"
RECEIPT_TYPES = {
    "consent.requested": "requested",
    "consent.confirmed": "confirmed",
    "consent.given": "given",
    "consent.withdrawn": "withdrawn",
    "consent.expired": "expired",
    "objection.received": "objected",
}


def recorded(kind: str) -> AnyEvent:
    event = EVENT_TYPES[kind].model_validate(
        {
            **valid_json(kind, SUBJECT),
            "event_id": str(uuid.uuid4()),
            "schema_version": 1,
            "recorded_at": "2024-03-05T00:00:00Z",
        }
    )
    assert isinstance(event, AnyEvent)
    return event


async def fetch_receipts(
    settings: Settings, pool: asyncpg.Pool[Any], events: list[AnyEvent]
) -> dict[str, httpx.Response]:
    """Project ``events`` and GET the receipt of each, by event type."""
    await append_events(settings, events)
    async with serve(
        create_app(settings), settings.projector_port, await issue_token(settings)
    ) as client:

        async def done() -> bool:
            return await chained(pool) >= len(events)

        await eventually(done)
        return {e.type: await client.get(f"/v1/receipts/{e.event_id}") for e in events}


async def test_a_receipt_fetched_over_http_verifies_offline(
    keyed: Settings, pool: asyncpg.Pool[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = given_event(SUBJECT)  # carries an e-mail and an IP address
    events = [given, *(recorded(kind) for kind in RECEIPT_TYPES if kind != "consent.given")]
    answers = await fetch_receipts(keyed, pool, events)
    public = tmp_path / "public.pem"
    assert keyed.signing_key_file is not None
    public.write_bytes(public_pem(read_signing_key(keyed.signing_key_file).public_key()))
    # Offline: no Kafka, no PostgreSQL reachable.
    monkeypatch.setenv("CONSENT_LEDGER_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("CONSENT_LEDGER_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    for event in events:
        answer = answers[event.type]
        assert answer.status_code == 200, answer.text
        receipt = answer.json()
        assert receipt["action"] == RECEIPT_TYPES[event.type]
        assert receipt["subject_id"] == SUBJECT
        assert receipt["event"]["event_id"] == str(event.event_id)
        hash_hex = (
            await pool.fetchval("SELECT hash FROM ledger_chain WHERE event_id = $1", event.event_id)
        ).hex()
        assert receipt["event"]["hash"] == hash_hex
        saved = tmp_path / f"{event.type}.json"
        saved.write_bytes(answer.content)
        code, out = await run_cli("receipt", "verify", str(saved), "--public-key", str(public))
        assert (code, out.split()[0]) == (0, "OK"), out
    text = answers["consent.given"].text
    assert given.personal.email is not None
    assert str(given.personal.email) not in text
    assert str(given.personal.ip_address) not in text
    assert answers["consent.given"].json()["purposes"][0]["notice"]["version"] == "2022-02-22"


def mutations(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every receipt with exactly one field changed or removed: (where, the altered copy)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key, "removed"), {k: v for k, v in value.items() if k != key}
            for where, altered in mutations(item, (*path, key)):
                yield where, {**value, key: altered}
    elif isinstance(value, list):
        for i, item in enumerate(value):
            for where, altered in mutations(item, (*path, i)):
                yield where, [*value[:i], altered, *value[i + 1 :]]
    elif isinstance(value, bool):
        yield path, not value
    elif isinstance(value, int):
        yield path, value + 1
    elif isinstance(value, str):
        yield path, value[:-1] + ("y" if value.endswith("x") else "x") if value else "x"


def verifies(receipt: Any, key: Ed25519PublicKey) -> bool:
    try:
        verify_receipt(orjson.dumps(receipt), key)
    except (ReceiptError, SignatureError):
        return False
    return True


async def test_a_receipt_with_any_field_changed_does_not_verify(
    keyed: Settings, pool: asyncpg.Pool[Any], tmp_path: Path
) -> None:
    answers = await fetch_receipts(keyed, pool, [recorded("consent.confirmed")])
    receipt = answers["consent.confirmed"].json()
    assert keyed.signing_key_file is not None
    key = read_signing_key(keyed.signing_key_file).public_key()
    assert verify_receipt(orjson.dumps(receipt), key).event.type == "consent.confirmed"
    changed = list(mutations(receipt))
    assert len(changed) > 40  # every leaf of the receipt, and every key removed
    assert [where for where, altered in changed if verifies(altered, key)] == []

    public = tmp_path / "public.pem"
    public.write_bytes(public_pem(key))
    saved = tmp_path / "altered.json"
    saved.write_bytes(orjson.dumps({**receipt, "subject_id": "crm-someone-else"}))
    code, out = await run_cli("receipt", "verify", str(saved), "--public-key", str(public))
    assert (code, out.split()[0]) == (1, "INVALID")
    assert "does not match the document" in out


async def test_only_consent_events_have_receipts(keyed: Settings, pool: asyncpg.Pool[Any]) -> None:
    answers = await fetch_receipts(keyed, pool, [erasure(SUBJECT)])
    answer = answers["subject.erased"]
    assert (answer.status_code, answer.json()["error"]) == (404, "no_receipt")
    assert "consent and objection events only" in answer.json()["message"]
    async with serve(create_app(keyed), keyed.projector_port, await issue_token(keyed)) as client:
        unknown = await client.get(f"/v1/receipts/{uuid.uuid4()}")
        malformed = await client.get("/v1/receipts/not-a-uuid")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "event_not_found")
    assert malformed.status_code == 422
    assert "event_id" in malformed.text
