"""The DPO's API: log rights requests, move them through their lifecycle, export a person's data.

Every step is an event appended through the same intake service (and policy) as any producer's,
so the ledger holds the whole lifecycle; reads come from the projections. The projection lags
the log by a batch (typically well under a second): a step taken right after the previous one
may be refused as "no request" until the projector caught up; retry it.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
import orjson
from fastapi import APIRouter, Header, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from events.catalog import SUBMISSION_ADAPTER, AnySubmission
from events.envelope import OccurredAt, ShortText, SubjectId
from events.ids import uuid7
from events.register import Register
from events.requests import Right
from events.types import Reasons
from projections.deadlines import RequestTiming, deadline, timing
from projections.queries import read_requests, read_subject
from projections.rows import state_to_json
from services.access.http import AUTH_ERRORS, Guard
from services.access.tokens import Caller
from services.errors import ProblemError
from services.intake.http import AcceptedOut, IntakeCall
from services.privacy.history import HistoryReader
from services.views import RequestOut

Whose = Annotated[
    SubjectId | None,
    Query(
        alias="subject_id",
        description="Whose request: needed only when the id names requests of two people "
        "(two intakes accepted the same client-chosen id at once); the answer 409 says so.",
    ),
]
Actor = Annotated[
    ShortText | None,
    Header(
        alias="X-Actor",
        description="Who acts (a staff id, not a name or an address: it is stored in clear); "
        "default: the token's label.",
    ),
]


class RequestIn(BaseModel):
    """A rights request as the DPO logs it."""

    model_config = ConfigDict(extra="forbid")
    subject_id: SubjectId
    right: Right
    channel: Literal["email", "letter", "web_form", "phone", "in_person"]
    written: bool
    signed: bool
    received_by: ShortText
    received_at: OccurredAt


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    occurred_at: OccurredAt | None = Field(default=None, description="Default: now.")


class IdentityIn(StepIn):
    method: Literal["signature", "id_document", "email_confirmation", "in_person", "other"]


class ExtensionIn(StepIn):
    reasons: Reasons


class FulfilmentIn(StepIn):
    outcome: Literal["granted", "partially_granted"]
    delivered: list[ShortText] = Field(default_factory=list)


class RejectionIn(StepIn):
    reasons: Reasons


class RequestStatusOut(RequestOut):
    """A request, whose it is, and where it stands against its deadline today."""

    subject_id: str
    timing: RequestTiming = Field(description="Against the deadline that applies, today.")


class CreatedOut(AcceptedOut):
    request_id: UUID


def with_timing(row: asyncpg.Record, register: Register, today: date) -> RequestStatusOut:
    """A ``rights_requests`` row with where it stands today in the register's time zone."""
    limits = deadline(row["received_at"], register.tz)
    answered = row["answered_at"]
    verdict = timing(
        limits,
        extended=row["extended_due_on"] is not None,
        answered_on=answered.astimezone(register.tz).date() if answered else None,
        today=today,
    )
    return RequestStatusOut.model_validate({**dict(row), "timing": verdict})


def rights_router(
    call: IntakeCall,
    pool: asyncpg.Pool[Any],
    register: Register,
    guard: Guard,
    histories: HistoryReader,
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["rights requests"], responses=AUTH_ERRORS)
    dpo = guard.allow("dpo")
    readers = [guard.allow("dpo", "auditor")]

    def today() -> date:
        return datetime.now(register.tz).date()

    def event(
        kind: str,
        subject_id: str,
        actor: str | None,
        caller: Caller,
        occurred_at: datetime | None,
        data: dict[str, Any],
    ) -> AnySubmission:
        return SUBMISSION_ADAPTER.validate_python(
            {
                "type": kind,
                "subject_id": subject_id,
                "occurred_at": occurred_at or datetime.now(UTC),
                "source": {"system": "dpo-api", "actor": actor or caller.name},
                "data": data,
            }
        )

    async def one_request(request_id: UUID, subject_id: str | None) -> asyncpg.Record:
        """The request of that id (and subject, if named); 404 if none, 409 if the id names
        requests of more than one person and no subject was named."""
        rows = await read_requests(pool, request_ids=[request_id], subject_id=subject_id)
        if not rows:
            whose = "" if subject_id is None else f" for subject {subject_id}"
            raise ProblemError(
                404, "request_not_found", f"no rights request {request_id}{whose} (yet)"
            )
        if len(rows) > 1:
            subjects = sorted(str(r["subject_id"]) for r in rows)
            raise ProblemError(
                409,
                "request_id_ambiguous",
                f"rights request id {request_id} names requests of {len(rows)} subjects; "
                "name one with ?subject_id=",
                subjects=subjects,
            )
        return rows[0]

    async def step(
        request_id: UUID,
        kind: str,
        body: StepIn,
        whose: str | None,
        actor: str | None,
        caller: Caller,
        response: Response,
    ) -> AcceptedOut:
        data = {"request_id": str(request_id), **body.model_dump(exclude={"occurred_at"})}
        subject = str((await one_request(request_id, whose))["subject_id"])
        submission = event(kind, subject, actor, caller, body.occurred_at, data)
        return await call([submission], None, response, single=True)

    @router.post("/requests", status_code=status.HTTP_202_ACCEPTED, summary="Log a request")
    async def create(
        body: RequestIn, response: Response, caller: Caller = dpo, actor: Actor = None
    ) -> CreatedOut:
        """Record a rights request; the ledger sets its due date (one calendar month)."""
        request_id = uuid7()
        data = body.model_dump(exclude={"subject_id", "received_at"})
        data["request_id"] = str(request_id)
        submission = event(
            "request.received", body.subject_id, actor, caller, body.received_at, data
        )
        accepted = await call([submission], None, response, single=True)
        return CreatedOut(request_id=request_id, events=accepted.events)

    @router.post("/requests/{request_id}/identity-verification", status_code=202)
    async def verify(
        request_id: UUID,
        body: IdentityIn,
        response: Response,
        whose: Whose = None,
        caller: Caller = dpo,
        actor: Actor = None,
    ) -> AcceptedOut:
        """Record that the requester was verified to be the data subject."""
        return await step(
            request_id, "request.identity_verified", body, whose, actor, caller, response
        )

    @router.post("/requests/{request_id}/extension", status_code=202)
    async def extend(
        request_id: UUID,
        body: ExtensionIn,
        response: Response,
        whose: Whose = None,
        caller: Caller = dpo,
        actor: Actor = None,
    ) -> AcceptedOut:
        """Extend by two months, with reasons; only within the first month (Art. 12(3))."""
        return await step(request_id, "request.extended", body, whose, actor, caller, response)

    @router.post("/requests/{request_id}/fulfilment", status_code=202)
    async def fulfil(
        request_id: UUID,
        body: FulfilmentIn,
        response: Response,
        whose: Whose = None,
        caller: Caller = dpo,
        actor: Actor = None,
    ) -> AcceptedOut:
        """Record the answer: what was done and delivered."""
        return await step(request_id, "request.fulfilled", body, whose, actor, caller, response)

    @router.post("/requests/{request_id}/rejection", status_code=202)
    async def reject(
        request_id: UUID,
        body: RejectionIn,
        response: Response,
        whose: Whose = None,
        caller: Caller = dpo,
        actor: Actor = None,
    ) -> AcceptedOut:
        """Refuse with written reasons; the ledger adds where the person can complain."""
        return await step(request_id, "request.rejected", body, whose, actor, caller, response)

    @router.get(
        "/requests",
        summary="Requests and where they stand against their deadlines",
        dependencies=readers,
    )
    async def list_requests(
        timing_is: Annotated[RequestTiming | None, Query(alias="timing")] = None,
        subject_id: SubjectId | None = None,
    ) -> list[RequestStatusOut]:
        rows = await read_requests(pool, subject_id=subject_id)
        out = [with_timing(r, register, today()) for r in rows]
        return [r for r in out if timing_is is None or r.timing == timing_is]

    @router.get("/requests/{request_id}", summary="One request", dependencies=readers)
    async def get_request(request_id: UUID, whose: Whose = None) -> RequestStatusOut:
        return with_timing(await one_request(request_id, whose), register, today())

    @router.get(
        "/subjects/{subject_id}/export",
        summary="Export everything held about a person (Art. 15 access, Art. 20 portability)",
        responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
    )
    async def export(
        subject_id: Annotated[SubjectId, Path()],
        caller: Caller = dpo,
        actor: Actor = None,
        kind: Literal["access", "portability"] = "access",
        fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
        request_id: UUID | None = None,
    ) -> Response:
        """The export is recorded in the ledger (``subject.exported``) before it is returned."""
        state = await read_subject(pool, subject_id)
        if state is None:
            raise ProblemError(404, "subject_not_found", f"no events about {subject_id!r}")
        history = await histories.read(subject_id, personal=True)
        data = {
            "kind": kind,
            "formats": [fmt],
            "request_id": str(request_id) if request_id else None,
        }
        exported = event("subject.exported", subject_id, actor, caller, None, data)
        await call([exported], None, Response(), single=True)
        if fmt == "csv":
            return Response(history_csv(history), media_type="text/csv")
        requests = [
            with_timing(r, register, today()).model_dump(mode="json")
            for r in await read_requests(pool, subject_id=subject_id)
        ]
        subject = state_to_json(state, datetime.now(UTC))
        body = export_document(register, subject, history, requests)
        return Response(orjson.dumps(body), media_type="application/json")

    return router


def export_document(
    register: Register,
    subject: dict[str, Any],
    history: list[dict[str, Any]],
    requests: list[dict[str, Any]],
) -> dict[str, Any]:
    """Everything held about a person, with the purposes' notices and the recipients."""
    purposes = [p for p in register.purposes if p.id in subject["purposes"]]
    recipient_ids = {r for p in purposes for r in p.recipients}
    return {
        "generated_at": datetime.now(UTC).isoformat(),
        "controller": register.controller.model_dump(mode="json"),
        "supervisory_authority": register.supervisory_authority.model_dump(mode="json"),
        "subject": subject,
        "purposes": [p.model_dump(mode="json") for p in purposes],
        "recipients": [
            r.model_dump(mode="json") for r in register.recipients if r.id in recipient_ids
        ],
        "requests": requests,
        "history": history,
    }


HISTORY_COLUMNS = (
    "partition", "offset", "event_id", "type", "purpose", "occurred_at", "recorded_at",
    "source_system", "source_actor",
)  # fmt: skip


def history_csv(history: list[dict[str, Any]]) -> str:
    """The history as CSV, one event a row (personal data stays in the JSON export)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HISTORY_COLUMNS)
    for entry in history:
        event = entry["event"]
        source = event.get("source", {})
        writer.writerow([
            entry["partition"], entry["offset"], event["event_id"], event["type"],
            event.get("purpose", ""), event["occurred_at"], event["recorded_at"],
            source.get("system", ""), source.get("actor", ""),
        ])  # fmt: skip
    return out.getvalue()
