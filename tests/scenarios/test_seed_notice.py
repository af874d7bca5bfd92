"""The seed register's privacy notice (Seiverkot Oy's newsletter register, 22.2.2022), walked
line by line on the real stack: what it promises a person, and what the DPO does about it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.config import Settings
from services.retention.main import run_once
from tests.integration.conftest import PERSONAL, eventually

pytestmark = pytest.mark.integration

NOTICE = {"notice_version": "2022-02-22", "language": "fi"}
DPO = {"X-Actor": "dpo-maija"}


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def event(kind: str, subject: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {
        "type": kind,
        "subject_id": subject,
        "occurred_at": ago(minutes=1),
        "source": {"system": "signup-form", "actor": "web-visitor"},
        "data": data,
    }
    return {**body, **extra}


async def post(intake: httpx.AsyncClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    answer = await intake.post("/v1/events", json=body)
    assert answer.status_code == 202, answer.text
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


async def settled(projector: httpx.AsyncClient, subject: str, version: int) -> dict[str, Any]:
    """The subject's state once the projector folded ``version`` events."""
    state: dict[str, Any] = {}

    async def caught_up() -> bool:
        nonlocal state
        answer = await projector.get(f"/v1/subjects/{subject}")
        state = answer.json() if answer.status_code == 200 else {}
        return bool(state) and state["version"] >= version

    await eventually(caught_up)
    return state


async def email_of(projector: httpx.AsyncClient, subject: str) -> str | None:
    """The subject's e-mail address, read as a DPO (the read is recorded in the ledger)."""
    answer = await projector.get(f"/v1/subjects/{subject}", params=PERSONAL)
    assert answer.status_code == 200, answer.text
    email: str | None = answer.json()["email"]
    return email


def newsletter(state: dict[str, Any]) -> dict[str, Any]:
    purpose: dict[str, Any] = state["purposes"]["newsletter"]
    return purpose


async def test_signup_with_double_opt_in(
    intake: httpx.AsyncClient, projector: httpx.AsyncClient
) -> None:
    """Newsletter sign-up on the web: pending until the e-mailed link is clicked."""
    personal = {"personal": {"email": "liisa@example.fi", "ip_address": "198.51.100.4"}}
    data = {**NOTICE, "method": "double_opt_in", "form_url": "https://www.sen.fi/uutiskirje"}
    await post(intake, event("consent.requested", "web-1", data, purpose="newsletter", **personal))
    pending = newsletter(await settled(projector, "web-1", 1))
    assert pending["status"] == "pending"
    assert pending["eligible"] is False
    assert "not confirmed" in pending["eligibility_reason"]

    confirm = {**NOTICE, "confirmation": "email_link"}
    await post(intake, event("consent.confirmed", "web-1", confirm, purpose="newsletter"))
    given = newsletter(await settled(projector, "web-1", 2))
    assert given["status"] == "given"
    assert given["legal_basis"] == "consent"
    assert given["eligible"] is True
    assert given["eligibility_reason"].endswith("under notice 2022-02-22")


async def test_crm_import_under_legitimate_interest_then_objection_by_phone(
    intake: httpx.AsyncClient, projector: httpx.AsyncClient
) -> None:
    """The register's legal basis is legitimate interest (direct marketing); the person can
    forbid direct marketing (Art. 21(3)) by contacting customer service."""
    crm = {"system": "crm", "actor": "nightly-import"}
    imported = {**NOTICE, "method": "crm_import", "legal_basis": "legitimate_interest"}
    personal = {"personal": {"email": "pekka@example.fi"}}
    await post(
        intake,
        event("consent.given", "crm-77", imported, purpose="newsletter", source=crm, **personal),
    )
    assert newsletter(await settled(projector, "crm-77", 1))["eligible"] is True

    by_phone = {"scope": "direct_marketing", "channel": "phone"}
    phone = {"system": "customer-service", "actor": "cs-anna"}
    await post(intake, event("objection.received", "crm-77", by_phone, purpose="newsletter",
                             source=phone, personal={"note": "called on Tuesday"}))  # fmt: skip
    objected = newsletter(await settled(projector, "crm-77", 2))
    assert objected["status"] == "objected"
    assert objected["eligible"] is False

    # The next nightly import does not subscribe the person again ...
    await post(
        intake,
        event("consent.given", "crm-77", imported, purpose="newsletter", source=crm, **personal),
    )
    assert newsletter(await settled(projector, "crm-77", 3))["eligible"] is False
    # ... only a fresh explicit consent does.
    explicit = {**NOTICE, "method": "web_form", "legal_basis": "consent"}
    await post(intake, event("consent.given", "crm-77", explicit, purpose="newsletter",
                             occurred_at=ago(seconds=5)))  # fmt: skip
    assert newsletter(await settled(projector, "crm-77", 4))["eligible"] is True


async def test_an_objection_by_automated_means_is_accepted(
    intake: httpx.AsyncClient, projector: httpx.AsyncClient
) -> None:
    """Art. 21(5): a list-unsubscribe click is an objection."""
    await post(intake, event("consent.given", "auto-1", {**NOTICE, "method": "web_form"},
                             purpose="newsletter", occurred_at=ago(hours=1)))  # fmt: skip
    click = {"scope": "direct_marketing", "channel": "unsubscribe_link", "automated": True}
    await post(intake, event("objection.received", "auto-1", click, purpose="newsletter"))
    assert newsletter(await settled(projector, "auto-1", 2))["status"] == "objected"


async def create_request(
    intake: httpx.AsyncClient, subject: str, right: str, received_at: str
) -> str:
    body = {
        "subject_id": subject,
        "right": right,
        "channel": "letter",
        "written": True,
        "signed": True,
        "received_by": "dpo-maija",
        "received_at": received_at,
    }
    answer = await intake.post("/v1/requests", json=body, headers=DPO)
    assert answer.status_code == 202, answer.text
    request_id: str = answer.json()["request_id"]
    return request_id


async def request_state(intake: httpx.AsyncClient, request_id: str, status: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal found
        answer = await intake.get(f"/v1/requests/{request_id}")
        found = answer.json() if answer.status_code == 200 else {}
        return found.get("status") == status

    await eventually(reached)
    return found


async def test_an_access_request_by_signed_letter_answered_within_the_month(
    intake: httpx.AsyncClient, projector: httpx.AsyncClient
) -> None:
    """Right of access: a written, signed request in Finnish or English, answered in a month."""
    signup = {**NOTICE, "method": "web_form"}
    personal = {"email": "ville@example.fi"}
    await post(
        intake, event("consent.given", "crm-5", signup, purpose="newsletter", personal=personal)
    )
    await settled(projector, "crm-5", 1)
    request_id = await create_request(intake, "crm-5", "access", ago(days=3))
    opened = await request_state(intake, request_id, "open")
    received = datetime.fromisoformat(opened["received_at"])
    assert opened["due_on"] > received.date().isoformat()
    assert opened["timing"] in ("open", "due_soon")

    verified = await intake.post(
        f"/v1/requests/{request_id}/identity-verification", json={"method": "signature"},
        headers=DPO,
    )  # fmt: skip
    assert verified.status_code == 202, verified.text

    export = await intake.get(
        "/v1/subjects/crm-5/export", params={"request_id": request_id}, headers=DPO
    )
    assert export.status_code == 200
    document = export.json()
    assert document["subject"]["email"] == "ville@example.fi"
    assert document["controller"]["business_id"] == "2083762-5"
    assert [p["id"] for p in document["purposes"]] == ["newsletter"]
    assert [r["id"] for r in document["recipients"]] == ["newsletter_tool"]
    assert [r["request_id"] for r in document["requests"]] == [request_id]
    assert [h["event"]["type"] for h in document["history"]][:1] == ["consent.given"]
    history_csv = await intake.get(
        "/v1/subjects/crm-5/export", params={"format": "csv"}, headers=DPO
    )
    assert history_csv.text.splitlines()[0].startswith("partition,offset,event_id,type")

    done = await intake.post(
        f"/v1/requests/{request_id}/fulfilment",
        json={"outcome": "granted", "delivered": ["export.json"]}, headers=DPO,
    )  # fmt: skip
    assert done.status_code == 202, done.text
    answered = await request_state(intake, request_id, "fulfilled")
    assert answered["timing"] == "answered"
    exports = await projector.get("/v1/subjects/crm-5/history")
    types = [h["event"]["type"] for h in exports.json()["events"]]
    assert types.count("subject.exported") == 2
    assert "request.fulfilled" in types


async def test_an_extension_with_reasons_only_within_the_first_month(
    intake: httpx.AsyncClient, projector: httpx.AsyncClient
) -> None:
    request_id = await create_request(intake, "crm-6", "portability", "2024-01-31T22:30:00Z")
    opened = await request_state(intake, request_id, "open")
    # 22:30 UTC on 31 January is 1 February in Helsinki: due one calendar month later.
    assert opened["due_on"] == "2024-03-01"
    assert opened["timing"] == "overdue"
    too_late = await intake.post(
        f"/v1/requests/{request_id}/extension", json={"reasons": "many archives"}, headers=DPO
    )
    assert too_late.status_code == 422
    assert "within the first month" in too_late.text

    fresh = await create_request(intake, "crm-6", "portability", ago(days=2))
    await request_state(intake, fresh, "open")
    extended = await intake.post(
        f"/v1/requests/{fresh}/extension",
        json={"reasons": "The request covers paper archives in two offices."}, headers=DPO,
    )  # fmt: skip
    assert extended.status_code == 202, extended.text
    state = await request_state(intake, fresh, "extended")
    assert state["extended_due_on"] > state["due_on"]
    assert state["reasons"].startswith("The request covers")


async def test_a_rectification_notifies_the_newsletter_provider(
    intake: httpx.AsyncClient, projector: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    """Rectification is done without delay, and those who received the data are told."""
    signup = {**NOTICE, "method": "web_form"}
    old = {"email": "old@example.fi"}
    await post(intake, event("consent.given", "crm-8", signup, purpose="newsletter", personal=old))
    appended = await post(intake, event("subject.rectified", "crm-8", {"fields": ["email"]},
                                        personal={"email": "new@example.fi"}))  # fmt: skip
    assert [e["type"] for e in appended] == ["subject.rectified", "recipient.notified"]
    await settled(projector, "crm-8", 3)
    assert await email_of(projector, "crm-8") == "new@example.fi"
    rows = await pool.fetch("SELECT * FROM recipient_notifications WHERE subject_id = 'crm-8'")
    assert [(r["recipient_id"], r["action"]) for r in rows] == [
        ("newsletter_tool", "rectification")
    ]
    assert str(rows[0]["about_event_id"]) == appended[0]["event_id"]


async def test_a_refusal_comes_with_written_reasons_and_the_authority(
    intake: httpx.AsyncClient, projector: httpx.AsyncClient
) -> None:
    """A contact person of a company cannot be removed while they are one: refused in writing,
    with a pointer to the Data Protection Ombudsman."""
    request_id = await create_request(intake, "crm-9", "erasure", ago(days=1))
    await request_state(intake, request_id, "open")
    reasons = "The requester is the registered contact person of a customer company."
    refused = await intake.post(
        f"/v1/requests/{request_id}/rejection", json={"reasons": reasons}, headers=DPO
    )
    assert refused.status_code == 202, refused.text
    state = await request_state(intake, request_id, "rejected")
    assert state["reasons"] == reasons
    history = (await projector.get("/v1/subjects/crm-9/history")).json()["events"]
    rejection = next(h["event"] for h in history if h["event"]["type"] == "request.rejected")
    assert rejection["data"]["authority"].startswith("Tietosuojavaltuutetun toimisto")
    again = await intake.post(
        f"/v1/requests/{request_id}/rejection", json={"reasons": reasons}, headers=DPO
    )
    assert again.status_code == 422
    assert "already answered" in again.text


async def test_after_an_erasure_no_projection_holds_the_email(
    intake: httpx.AsyncClient, projector: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    """The right to be forgotten: every table is searched for the address afterwards."""
    email = "forget.me@example.fi"
    personal = {"personal": {"email": email, "user_agent": "Mozilla/5.0 (forget-me)"}}
    await post(intake, event("consent.given", "crm-10", {**NOTICE, "method": "web_form"},
                             purpose="newsletter", **personal))  # fmt: skip
    await post(intake, event("subject.rectified", "crm-10", {"fields": ["email"]}, **personal))
    erased = await post(intake, event("subject.erased", "crm-10", {"grounds": "request"}))
    assert [e["type"] for e in erased] == ["subject.erased", "recipient.notified"]
    state = await settled(projector, "crm-10", 5)
    assert await email_of(projector, "crm-10") is None
    assert state["erased_at"] is not None
    assert newsletter(state)["status"] == "erased"
    assert newsletter(state)["eligible"] is False
    for table in ("subscribers", "ledger_events", "rights_requests", "recipient_notifications",
                  "intake_requests", "projector_offsets"):  # fmt: skip
        found = await pool.fetchval(f"SELECT count(*) FROM {table} t WHERE t::text ILIKE $1",
                                    f"%{email.split('@')[0]}%")  # fmt: skip
        assert found == 0, table
    history = await projector.get("/v1/subjects/crm-10/history", params=PERSONAL)
    events = [h["event"] for h in history.json()["events"]]
    assert [e["type"] for e in events][:3] == [
        "consent.given", "subject.rectified", "recipient.notified",
    ]  # fmt: skip
    assert [e["personal_state"] for e in events][:2] == ["shredded", "shredded"]
    assert all("personal" not in e for e in events)


async def test_a_withdrawal_leads_to_retention_erasure(
    settings: Settings,
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
    pool: asyncpg.Pool[Any],
) -> None:
    """ "Tiedot ... poistetaan suostumuksen peruuttamisella": data is deleted on withdrawal."""
    signup = {**NOTICE, "method": "web_form"}
    await post(
        intake,
        event(
            "consent.given",
            "crm-11",
            signup,
            purpose="newsletter",
            occurred_at=ago(hours=2),
            personal={"email": "bye@example.fi"},
        ),
    )
    await post(
        intake,
        event("consent.withdrawn", "crm-11", {"channel": "unsubscribe_link"}, purpose="newsletter"),
    )
    await settled(projector, "crm-11", 2)

    report = await run_once(settings)
    assert report.erased == 1
    state = await settled(projector, "crm-11", 4)  # erasure + its Art. 19 notice
    assert await email_of(projector, "crm-11") is None
    assert newsletter(state)["status"] == "erased"
    erasure = next(
        h["event"]
        for h in (await projector.get("/v1/subjects/crm-11/history")).json()["events"]
        if h["event"]["type"] == "subject.erased"
    )
    assert erasure["data"] == {"grounds": "retention", "purpose": "newsletter", "key_generation": 1}
    assert (await run_once(settings)).erased == 0
    assert await pool.fetchval("SELECT count(*) FROM subscribers WHERE email IS NOT NULL") == 0


async def test_a_restriction_stops_processing_until_lifted(
    intake: httpx.AsyncClient, projector: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    """Art. 18: while the accuracy of the data is contested, the person is e-mailed nothing;
    the newsletter provider is told (Art. 19)."""
    signup = {**NOTICE, "method": "web_form"}
    await post(
        intake,
        event(
            "consent.given",
            "crm-12",
            signup,
            purpose="newsletter",
            occurred_at=ago(hours=1),
            personal={"email": "r@example.fi"},
        ),
    )
    restricted = await post(
        intake, event("restriction.applied", "crm-12", {"grounds": "accuracy_contested"})
    )
    assert [e["type"] for e in restricted] == ["restriction.applied", "recipient.notified"]
    state = await settled(projector, "crm-12", 3)
    assert state["restricted_since"] is not None
    assert newsletter(state)["eligible"] is False
    assert newsletter(state)["eligibility_reason"].startswith("processing restricted since")
    told = await pool.fetchval(
        "SELECT action FROM recipient_notifications WHERE subject_id = 'crm-12'"
    )
    assert told == "restriction"

    await post(intake, event("restriction.lifted", "crm-12", {"reason": "accuracy_verified"}))
    lifted = await settled(projector, "crm-12", 4)
    assert lifted["restricted_since"] is None
    assert newsletter(lifted)["eligible"] is True
