"""The authorisation matrix: every endpoint of both services, against every role, no token, an
expired, a revoked and a malformed token: 401 or 403 where it must, 2xx where it may."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.access.tokens import ROLES, Role, TokenStore
from services.config import Settings
from tests.integration.conftest import (
    PERSONAL,
    bearer,
    eventually,
    issue_token,
    read_topic,
    serve,
)
from tests.samples import given_json, valid_json

pytestmark = pytest.mark.integration

PRODUCERS: set[Role] = {"signup", "crm", "dpo"}
READERS: set[Role] = {"dpo", "auditor"}
#: (service, method, route) -> the roles that may call it. Every route must be listed here.
MATRIX: dict[tuple[str, str, str], set[Role]] = {
    ("intake", "POST", "/v1/events"): PRODUCERS,
    ("intake", "POST", "/v1/events/batch"): PRODUCERS,
    ("intake", "POST", "/v1/requests"): {"dpo"},
    ("intake", "POST", "/v1/requests/{request_id}/identity-verification"): {"dpo"},
    ("intake", "POST", "/v1/requests/{request_id}/extension"): {"dpo"},
    ("intake", "POST", "/v1/requests/{request_id}/fulfilment"): {"dpo"},
    ("intake", "POST", "/v1/requests/{request_id}/rejection"): {"dpo"},
    ("intake", "GET", "/v1/requests"): READERS,
    ("intake", "GET", "/v1/requests/{request_id}"): READERS,
    ("intake", "GET", "/v1/subjects/{subject_id}/export"): {"dpo"},
    ("intake", "POST", "/v1/tokens"): {"admin"},
    ("intake", "GET", "/v1/tokens"): {"admin"},
    ("intake", "DELETE", "/v1/tokens/{token_id}"): {"admin"},
    ("projector", "GET", "/v1/subjects/{subject_id}"): READERS,
    ("projector", "GET", "/v1/subjects/{subject_id}/eligibility"): {"mail_tool", "dpo", "auditor"},
    ("projector", "GET", "/v1/subjects/{subject_id}/history"): READERS,
    ("projector", "GET", "/v1/mailing-lists/{purpose}"): {"mail_tool", "dpo"},
    ("projector", "GET", "/v1/suppressions"): {"mail_tool", "crm", "dpo"},
    ("projector", "GET", "/v1/receipts/{event_id}"): READERS,
    ("projector", "GET", "/v1/as-of/subjects/{subject_id}"): READERS,
    ("projector", "GET", "/v1/as-of/eligible/{purpose}"): READERS,
}
#: Operations endpoints: open to monitoring, they hold no personal data.
OPEN = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect",
        "/redoc"}  # fmt: skip


def routes(service: str, app: FastAPI) -> set[tuple[str, str, str]]:
    """Every (method, path) the app serves, as its OpenAPI document lists them."""
    return {
        (service, method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path not in OPEN
        for method in operations
    }


async def test_every_route_is_in_the_matrix(settings: Settings) -> None:
    """Async so that the apps are built in a running loop, as in service (asyncpg's pool
    asks for the current loop; a CLI test's ``asyncio.run`` before this one leaves none)."""
    from services.intake.main import create_app as intake_app
    from services.projector.main import create_app as projector_app

    found = routes("intake", intake_app(settings)) | routes("projector", projector_app(settings))
    assert found == set(MATRIX)


@dataclass
class World:
    """What the calls refer to: a projected subject and two open rights requests."""

    requests: list[str]
    spare_token_ids: list[str]
    consent_event_id: str


Call = Callable[[World], tuple[str, str, dict[str, Any]]]


def _event(_: World) -> tuple[str, str, dict[str, Any]]:
    return "POST", "/v1/events", {"json": given_json("crm-m")}


def _step(path: str, body: dict[str, Any], which: int) -> Call:
    return lambda w: ("POST", f"/v1/requests/{w.requests[which]}/{path}", {"json": body})


REQUEST = {"subject_id": "crm-m", "right": "access", "channel": "email", "written": True,
           "signed": False, "received_by": "dpo"}  # fmt: skip
#: A valid call of each route (what an allowed role must get a 2xx for).
CALLS: dict[tuple[str, str, str], Call] = {
    ("intake", "POST", "/v1/events"): _event,
    ("intake", "POST", "/v1/events/batch"): lambda w: (
        "POST", "/v1/events/batch", {"json": {"events": [given_json("crm-m")]}}
    ),
    ("intake", "POST", "/v1/requests"): lambda w: (
        "POST", "/v1/requests",
        {"json": {**REQUEST, "received_at": datetime.now(UTC).isoformat()}},
    ),
    ("intake", "POST", "/v1/requests/{request_id}/identity-verification"): _step(
        "identity-verification", {"method": "signature"}, 0
    ),
    ("intake", "POST", "/v1/requests/{request_id}/extension"): _step(
        "extension", {"reasons": "Many requests at once; the export needs a manual check."}, 0
    ),
    ("intake", "POST", "/v1/requests/{request_id}/fulfilment"): _step(
        "fulfilment", {"outcome": "granted"}, 0
    ),
    ("intake", "POST", "/v1/requests/{request_id}/rejection"): _step(
        "rejection", {"reasons": "The requester could not be identified as the person."}, 1
    ),
    ("intake", "GET", "/v1/requests"): lambda w: ("GET", "/v1/requests", {}),
    ("intake", "GET", "/v1/requests/{request_id}"): lambda w: (
        "GET", f"/v1/requests/{w.requests[1]}", {}
    ),
    ("intake", "GET", "/v1/subjects/{subject_id}/export"): lambda w: (
        "GET", "/v1/subjects/crm-m/export", {}
    ),
    ("intake", "POST", "/v1/tokens"): lambda w: (
        "POST", "/v1/tokens", {"json": {"role": "mail_tool", "label": "newsletter tool"}}
    ),
    ("intake", "GET", "/v1/tokens"): lambda w: ("GET", "/v1/tokens", {}),
    ("intake", "DELETE", "/v1/tokens/{token_id}"): lambda w: (
        "DELETE", f"/v1/tokens/{w.spare_token_ids.pop()}", {}
    ),
    ("projector", "GET", "/v1/subjects/{subject_id}"): lambda w: (
        "GET", "/v1/subjects/crm-m", {}
    ),
    ("projector", "GET", "/v1/subjects/{subject_id}/eligibility"): lambda w: (
        "GET", "/v1/subjects/crm-m/eligibility", {}
    ),
    ("projector", "GET", "/v1/subjects/{subject_id}/history"): lambda w: (
        "GET", "/v1/subjects/crm-m/history", {}
    ),
    ("projector", "GET", "/v1/mailing-lists/{purpose}"): lambda w: (
        "GET", "/v1/mailing-lists/newsletter", {}
    ),
    ("projector", "GET", "/v1/suppressions"): lambda w: ("GET", "/v1/suppressions", {}),
    ("projector", "GET", "/v1/receipts/{event_id}"): lambda w: (
        "GET", f"/v1/receipts/{w.consent_event_id}", {}
    ),
    ("projector", "GET", "/v1/as-of/subjects/{subject_id}"): lambda w: (
        "GET", "/v1/as-of/subjects/crm-m", {"params": {"at": datetime.now(UTC).isoformat()}}
    ),
    ("projector", "GET", "/v1/as-of/eligible/{purpose}"): lambda w: (
        "GET", "/v1/as-of/eligible/newsletter", {"params": {"at": datetime.now(UTC).isoformat()}}
    ),
}  # fmt: skip


async def _prepare(settings: Settings, intake: httpx.AsyncClient, dpo: str) -> World:
    given = await intake.post("/v1/events", json=given_json("crm-m"), headers=bearer(dpo))
    assert given.status_code == 202, given.text
    requests = []
    for _ in range(2):
        body = {**REQUEST, "received_at": datetime.now(UTC).isoformat()}
        made = await intake.post("/v1/requests", json=body, headers=bearer(dpo))
        assert made.status_code == 202, made.text
        requests.append(made.json()["request_id"])

    async def projected() -> bool:
        answer = await intake.get(f"/v1/requests/{requests[1]}", headers=bearer(dpo))
        return answer.status_code == 200

    await eventually(projected)
    db = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        # DELETE /v1/tokens/{id} is called once per caller kind; each call takes its own token.
        callers = len(ROLES) + 5
        spares = [(await TokenStore(db).create("crm", "spare"))[1].token_id for _ in range(callers)]
    finally:
        await db.close()
    return World(requests, spares, given.json()["events"][0]["event_id"])


async def _bad_tokens(settings: Settings) -> dict[str, str | None]:
    db = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        store = TokenStore(db)
        expired, _ = await store.create(
            "dpo", "expired", expires_at=datetime.now(UTC) - timedelta(seconds=1)
        )
        revoked, info = await store.create("dpo", "revoked")
        await store.revoke(info.token_id)
    finally:
        await db.close()
    forged = revoked.rsplit(".", 1)[0] + ".not-the-secret"
    return {"none": None, "expired": expired, "revoked": revoked, "wrong secret": forged,
            "malformed": "letmein"}  # fmt: skip


async def test_every_endpoint_against_every_role_and_bad_token(settings: Settings) -> None:
    from services.intake.main import create_app as intake_app
    from services.projector.main import create_app as projector_app

    tokens = {role: await issue_token(settings, role) for role in ROLES}
    bad = await _bad_tokens(settings)
    async with (
        serve(intake_app(settings), settings.intake_port) as intake,
        serve(projector_app(settings), settings.projector_port) as projector,
    ):
        world = await _prepare(settings, intake, tokens["dpo"])
        clients = {"intake": intake, "projector": projector}
        for key, allowed in MATRIX.items():
            client = clients[key[0]]
            for name, token in bad.items():
                method, path, kwargs = CALLS[key](world)
                headers = bearer(token) if token else {}
                answer = await client.request(method, path, headers=headers, **kwargs)
                assert answer.status_code == 401, (key, name, answer.text)
                assert answer.headers["www-authenticate"].startswith("Bearer")
            for role in ROLES:
                if role in allowed:
                    continue
                method, path, kwargs = CALLS[key](world)
                answer = await client.request(method, path, headers=bearer(tokens[role]), **kwargs)
                assert answer.status_code == 403, (key, role, answer.text)
                assert answer.json()["error"] == "forbidden"
            for permitted in sorted(allowed):
                method, path, kwargs = CALLS[key](world)
                headers = bearer(tokens[permitted])
                answer = await client.request(method, path, headers=headers, **kwargs)
                assert 200 <= answer.status_code < 300, (key, permitted, answer.text)


async def test_producers_may_submit_only_their_event_types(
    settings: Settings, intake: httpx.AsyncClient
) -> None:
    signup = bearer(await issue_token(settings, "signup"))
    crm = bearer(await issue_token(settings, "crm"))
    objection = valid_json("objection.received", subject_id="crm-p")
    refused = await intake.post("/v1/events", json=objection, headers=signup)
    assert refused.status_code == 403
    assert refused.json()["errors"] == [
        {"field": "type", "reason": "the role 'signup' may not submit objection.received"}
    ]
    assert (await intake.post("/v1/events", json=objection, headers=crm)).status_code == 202
    erasure = {"events": [given_json("crm-p"), valid_json("subject.erased", subject_id="crm-p")]}
    batch = await intake.post("/v1/events/batch", json=erasure, headers=crm)
    assert batch.status_code == 403
    assert [e["item"] for e in batch.json()["errors"]] == [1]


async def test_personal_data_needs_the_role_or_the_grant_and_a_reason(
    settings: Settings,
    intake: httpx.AsyncClient,
    projector: httpx.AsyncClient,
    pool: asyncpg.Pool[Any],
) -> None:
    assert (await intake.post("/v1/events", json=given_json("crm-g"))).status_code == 202

    async def projected() -> bool:
        return (await projector.get("/v1/subjects/crm-g")).status_code == 200

    await eventually(projected)
    auditor = bearer(await issue_token(settings, "auditor"))
    trusted = bearer(await issue_token(settings, "auditor", ["personal_data"]))
    url = "/v1/subjects/crm-g"
    plain = await projector.get(url, headers=auditor)
    assert (plain.json()["email"], plain.json()["personal_state"]) == (None, "withheld")
    assert (await projector.get(url, params=PERSONAL, headers=auditor)).status_code == 403
    no_reason = await projector.get(url, params={"personal": "true"}, headers=trusted)
    assert no_reason.status_code == 422
    assert "reason" in no_reason.json()["message"]
    read = await projector.get(url, params=PERSONAL, headers=trusted)
    assert read.json()["email"] == "crm-g@example.com"

    async def recorded() -> list[dict[str, Any]]:
        rows = await pool.fetch(
            "SELECT payload FROM ledger_events WHERE subject_id = 'crm-g'"
            " AND type = 'subject.accessed'"
        )
        return [r["payload"] for r in rows]

    async def one_read_recorded() -> bool:
        return len(await recorded()) == 1

    await eventually(one_read_recorded)
    (access,) = await recorded()
    assert access["data"]["role"] == "auditor"
    assert access["data"]["scope"] == "subject"
    assert access["data"]["reason"] == PERSONAL["reason"]
    assert "test auditor (token " in access["data"]["reader"]


async def test_personal_data_is_refused_in_a_token_label_and_a_rights_request(
    settings: Settings, intake: httpx.AsyncClient, pool: asyncpg.Pool[Any]
) -> None:
    """A label names its caller in events, in clear (``source.actor``, an access record's
    ``reader``): it is checked at creation, over HTTP and in the store the CLI uses."""
    admin = bearer(await issue_token(settings, "admin"))
    body = {"role": "crm", "label": "jane@example.com"}
    answer = await intake.post("/v1/tokens", json=body, headers=admin)
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert (error["field"], "looks like an e-mail address" in error["reason"]) == ("label", True)
    with pytest.raises(ValueError, match="looks like a phone number"):
        await TokenStore(pool).create("crm", "Maija 040 1234567")
    assert await pool.fetchval("SELECT count(*) FROM api_tokens WHERE role = 'crm'") == 0

    now = datetime.now(UTC).isoformat()
    received = {**REQUEST, "received_by": "+358 40 123 4567", "received_at": now}
    refused = await intake.post("/v1/requests", json=received)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["received_by"]
    assert await read_topic(settings, settings.ledger_topic) == []
    as_actor = await intake.post(
        "/v1/requests",
        json={**REQUEST, "received_at": now},
        headers={"X-Actor": "maija@sen.fi"},
    )
    assert as_actor.status_code == 422, as_actor.text
    [error] = as_actor.json()["errors"]
    assert (error["field"], "e-mail" in error["reason"]) == ("header.X-Actor", True)
    assert await read_topic(settings, settings.ledger_topic) == []
