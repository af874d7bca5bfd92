"""Point-in-time read API: a person's state and who was eligible for a purpose, at an instant.

The eligible list is streamed (NDJSON or CSV) as the mirror is read, so its size is not bounded
by memory. Neither answer holds an e-mail address (see ``services/point_in_time.py``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Collection
from datetime import datetime
from typing import Annotated, Any

import asyncpg
import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, Field

from events.envelope import SubjectId
from projections.rows import state_to_json
from projections.state import SubjectState
from services.access.http import AUTH_ERRORS, Guard
from services.errors import ProblemError
from services.exports import Format, FormatQuery, SqlText, known_purpose, negotiated
from services.point_in_time import Basis, EligibleAsOf, eligible_as_of, subject_as_of
from services.views import SubjectStateOut

At = Annotated[
    AwareDatetime,
    Query(
        description="The instant, ISO 8601 with a UTC offset.", examples=["2024-03-05T00:00:00Z"]
    ),
]
BasisQuery = Annotated[
    Basis,
    Query(
        description="occurred: what was true at the instant (events that occurred by then); "
        "recorded: what the ledger knew at the instant (events recorded by then)."
    ),
]
CSV_COLUMNS = (
    "subject_id", "purpose", "legal_basis", "notice_version", "since", "valid_until",
    "event_ids", "reason",
)  # fmt: skip
_MEDIA = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


class SubjectAsOfOut(SubjectStateOut):
    """A subject's state at an instant; no e-mail address."""

    at: datetime
    basis: Basis


class EligibleOut(BaseModel):
    """One line of the eligible list (NDJSON; CSV has the same columns, event ids joined by
    spaces)."""

    subject_id: str
    purpose: str
    legal_basis: str
    notice_version: str | None
    since: datetime = Field(description="When the deciding event occurred.")
    valid_until: datetime | None
    event_ids: list[str] = Field(description="The events that make the person eligible.")
    reason: str


def eligible_json(row: EligibleAsOf) -> dict[str, Any]:
    return EligibleOut(
        subject_id=row.subject_id,
        purpose=row.purpose,
        legal_basis=row.legal_basis,
        notice_version=row.notice_version,
        since=row.since,
        valid_until=row.valid_until,
        event_ids=[str(e) for e in row.event_ids],
        reason=row.reason,
    ).model_dump(mode="json")


def subject_as_of_out(state: SubjectState, at: datetime, basis: Basis) -> SubjectAsOfOut:
    """The state as the API shows it, with eligibility at ``at`` (a lapsed consent is not);
    the state holds no address (see ``services/point_in_time.py``), and the model none."""
    return SubjectAsOfOut.model_validate({**state_to_json(state, at), "at": at, "basis": basis})


async def render(rows: AsyncIterator[EligibleAsOf], fmt: Format) -> AsyncIterator[bytes]:
    """The eligible list as NDJSON lines or CSV (with a header), one chunk per person."""
    if fmt == "ndjson":
        async for row in rows:
            yield orjson.dumps(eligible_json(row)) + b"\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    async for row in rows:
        line = eligible_json(row)
        writer.writerow(
            [" ".join(line[c]) if c == "event_ids" else line[c] or "" for c in CSV_COLUMNS]
        )
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue().encode()


def as_of_router(pool: asyncpg.Pool[Any], purposes: Collection[str], guard: Guard) -> APIRouter:
    router = APIRouter(
        prefix="/v1/as-of",
        tags=["point in time"],
        responses=AUTH_ERRORS,
        dependencies=[guard.allow("dpo", "auditor")],
    )

    @router.get(
        "/subjects/{subject_id}",
        summary="A subject's state at an instant",
        responses={404: {"description": "No event about this subject up to the instant."}},
    )
    async def get_subject_as_of(
        subject_id: Annotated[SubjectId, Path(description="The subject's id.")],
        at: At,
        basis: BasisQuery = "occurred",
    ) -> SubjectAsOfOut:
        """Per purpose: status, basis, notice, deciding event, eligibility at the instant."""
        state = await subject_as_of(pool, subject_id, at, basis)
        if state is None:
            raise ProblemError(
                404, "subject_not_found", f"no events about {subject_id!r} up to {at.isoformat()}"
            )
        return subject_as_of_out(state, at, basis)

    @router.get(
        "/eligible/{purpose}",
        summary="Everyone eligible for a purpose at an instant (streamed)",
        response_class=StreamingResponse,
        responses={200: {"content": {m: {} for m in _MEDIA.values()}}},
    )
    async def get_eligible_as_of(
        purpose: Annotated[SqlText, Path(description="The purpose id, e.g. newsletter.")],
        at: At,
        request: Request,
        basis: BasisQuery = "occurred",
        format: FormatQuery = None,
    ) -> StreamingResponse:
        """One line per person, by subject id: basis, notice version, since when, the events
        that make them eligible, and why. A purpose of the register only, as the mailing
        lists."""
        known_purpose(purpose, purposes)
        fmt = negotiated(format, request)
        rows = eligible_as_of(pool, purpose, at, basis)
        return StreamingResponse(render(rows, fmt), media_type=_MEDIA[fmt])

    return router
