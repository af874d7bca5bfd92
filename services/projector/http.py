"""Read API of the projections: a subject's current state and history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Path
from pydantic import BaseModel

from events.envelope import SubjectId
from projections.queries import read_history, read_subject
from projections.rows import state_to_json
from services.errors import ProblemError
from services.views import SubjectOut, as_of

SubjectPath = Annotated[SubjectId, Path(description="The subject's id.")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No event about this subject was projected yet."}
}


class HistoryEntry(BaseModel):
    partition: int
    offset: int
    event: dict[str, Any]


class HistoryOut(BaseModel):
    subject_id: str
    events: list[HistoryEntry]


def _not_found(subject_id: str) -> ProblemError:
    return ProblemError(404, "subject_not_found", f"no events about {subject_id!r} yet")


def subjects_router(pool: asyncpg.Pool[Any]) -> APIRouter:
    router = APIRouter(prefix="/v1/subjects", tags=["subjects"])

    @router.get("/{subject_id}", summary="Current state of a subject", responses=NOT_FOUND)
    async def get_subject(subject_id: SubjectPath) -> SubjectOut:
        """E-mail, per-purpose status, legal basis, notice version, version, last event."""
        state = await read_subject(pool, subject_id)
        if state is None:
            raise _not_found(subject_id)
        return SubjectOut.model_validate(as_of(state_to_json(state), datetime.now(UTC)))

    @router.get(
        "/{subject_id}/history",
        summary="Every event about a subject, in ledger order",
        responses=NOT_FOUND,
    )
    async def get_history(subject_id: SubjectPath) -> HistoryOut:
        """The events as appended, each with its partition and offset."""
        events = await read_history(pool, subject_id)
        if not events:
            raise _not_found(subject_id)
        return HistoryOut.model_validate({"subject_id": subject_id, "events": events})

    return router
