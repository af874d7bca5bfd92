"""The intake HTTP API: producers submit one event or a batch."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Header, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from events.catalog import EVENT_TYPES, AnySubmission, SubmissionIn
from services.access.http import AUTH_ERRORS, Guard
from services.access.tokens import Caller
from services.errors import ProblemError, invalid_message, problem
from services.intake.policy import PolicyError
from services.intake.service import Accepted, IdempotencyConflictError, IntakeService
from services.messaging.records import AppendError
from services.metrics import EVENTS_REJECTED

#: Upper bound on items per batch request; larger imports are split by the producer or go
#: through the Kafka intake topic.
MAX_BATCH_ITEMS = 1000

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Retry with the same key and body: the same answer, nothing appended twice.",
    ),
]


class BatchIn(BaseModel):
    """A batch: every item is valid and appended, or none is."""

    model_config = ConfigDict(extra="forbid")
    events: list[SubmissionIn] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class ReceiptOut(BaseModel):
    event_id: str
    type: str
    subject_id: str
    recorded_at: datetime
    topic: str
    partition: int
    offset: int


class AcceptedOut(BaseModel):
    events: list[ReceiptOut]


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not JSON."},
    409: {"description": "A request with this Idempotency-Key is still in progress."},
    413: {"description": "The body is too large."},
    422: {"description": "Invalid items, each named with its field and reason; none appended."},
    503: {"description": "Kafka did not acknowledge; nothing was appended. Retry."},
}


class IntakeCall(Protocol):
    """Submit through intake and answer in HTTP terms (errors become :class:`ProblemError`)."""

    async def __call__(
        self, submissions: list[AnySubmission], key: str | None, response: Response, *, single: bool
    ) -> AcceptedOut: ...


def intake_call(service: IntakeService) -> IntakeCall:
    """The one place where intake outcomes are turned into HTTP answers."""

    async def answer(
        submissions: list[AnySubmission], key: str | None, response: Response, *, single: bool
    ) -> AcceptedOut:
        try:
            accepted: Accepted = await service.submit(submissions, key, channel="http")
        except IdempotencyConflictError as exc:
            raise ProblemError(exc.status, "idempotency_conflict", str(exc)) from exc
        except PolicyError as exc:
            for item in sorted({p.item for p in exc.problems}):
                EVENTS_REJECTED.labels(submissions[item].type, "policy", "http").inc()
            items = [p.as_json() for p in exc.problems]
            if single:
                items = [{k: v for k, v in i.items() if k != "item"} for i in items]
            message = invalid_message(items)
            raise ProblemError(422, "validation_failed", message, errors=items) from exc
        except AppendError as exc:
            message = f"{exc}; nothing was appended, retry later"
            raise ProblemError(503, "ledger_unavailable", message) from exc
        if accepted.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return AcceptedOut.model_validate(accepted.body)

    return answer


def check_event_types(caller: Caller, submissions: list[AnySubmission], *, single: bool) -> None:
    """403 naming every item whose event type the caller's role may not submit."""
    refused = [
        {"item": i, "field": "type", "reason": f"the role {caller.role!r} may not submit {s.type}"}
        for i, s in enumerate(submissions)
        if not caller.may_submit(s.type)
    ]
    if refused:
        items = (
            [{k: v for k, v in r.items() if k != "item"} for r in refused] if single else refused
        )
        raise ProblemError(403, "forbidden", invalid_message(items), errors=items)


def intake_router(answer: IntakeCall, guard: Guard) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["intake"], responses=AUTH_ERRORS)
    producer = guard.allow("signup", "crm", "dpo")

    @router.post(
        "/events",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=AcceptedOut,
        responses=ERRORS,
        summary="Record one event",
    )
    async def post_event(
        event: SubmissionIn,
        response: Response,
        caller: Caller = producer,
        idempotency_key: IdempotencyKey = None,
    ) -> AcceptedOut:
        """Append one event; the answer comes after the broker acknowledged it."""
        check_event_types(caller, [event], single=True)
        return await answer([event], idempotency_key, response, single=True)

    @router.post(
        "/events/batch",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=AcceptedOut,
        responses=ERRORS,
        summary="Record a batch of events, all or none",
    )
    async def post_batch(
        batch: BatchIn,
        response: Response,
        caller: Caller = producer,
        idempotency_key: IdempotencyKey = None,
    ) -> AcceptedOut:
        """Append up to 1000 events atomically; invalid items are all named, none appended."""
        check_event_types(caller, list(batch.events), single=False)
        return await answer(list(batch.events), idempotency_key, response, single=False)

    return router


class BodyLimit:
    """Refuse bodies over ``max_bytes``: at once when ``Content-Length`` says so, else (a chunked
    body) as soon as the bytes received pass it, so no body is read whole first. Plain ASGI: a
    ``BaseHTTPMiddleware`` wraps every request in a task group and a streaming response, a
    tenth of intake's CPU in a py-spy profile (docs/performance.md)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes
        self._refusal = problem(413, "body_too_large", f"the body exceeds {max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self._max_bytes:
            await self._refusal(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            """The app's next body chunk; past the limit, the client is gone to the app."""
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_bytes:
                    return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if received <= self._max_bytes:
                await send(message)

        try:
            await self._app(scope, counted, unless_refused)
        except Exception:
            if received <= self._max_bytes:
                raise  # past the limit, how the app took the disconnect does not matter
        if received > self._max_bytes:
            await self._refusal(scope, receive, send)


def count_rejections(body: Any, errors: list[dict[str, Any]]) -> None:
    """Count each refused item by its event type (as sent) and the kind of error."""
    items = body.get("events") if isinstance(body, dict) and "events" in body else [body]
    for error in errors:
        index = error.get("item", 0)
        sent = items[index] if isinstance(items, list) and index < len(items) else None
        kind = sent.get("type") if isinstance(sent, dict) else None
        event_type = kind if isinstance(kind, str) and kind in EVENT_TYPES else "unknown"
        EVENTS_REJECTED.labels(event_type, error["type"], "http").inc()
