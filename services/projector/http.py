"""Read API of the projections: a subject's current state, eligibility and history.

Personal data (the e-mail address, the personal sections of events) is withheld unless asked
for with ``personal=true`` and a reason, by a DPO or an auditor holding the ``personal_data``
grant; such a read is recorded in the ledger (``subject.accessed``) before it is served.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from events.envelope import ShortText, SubjectId
from projections.queries import read_subject
from projections.rows import state_to_json
from services.access.http import AUTH_ERRORS, Guard, require_grant
from services.access.recorder import AccessRecorder
from services.access.tokens import Caller
from services.errors import ProblemError
from services.privacy.history import HistoryReader
from services.views import SubjectOut

SubjectPath = Annotated[SubjectId, Path(description="The subject's id.")]
Personal = Annotated[
    bool, Query(description="Include personal data (recorded in the ledger; needs a reason).")
]
Reason = Annotated[
    ShortText | None, Query(description="Why personal data is read; required with personal.")
]
RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    404: {"description": "No event about this subject was projected yet."},
}


class HistoryEntry(BaseModel):
    partition: int
    offset: int
    event: dict[str, Any]


class HistoryOut(BaseModel):
    subject_id: str
    events: list[HistoryEntry]


class EligibilityOut(BaseModel):
    """What a mail tool may know: per purpose, whether the person may be e-mailed now."""

    subject_id: str
    eligible: dict[str, bool]
    reasons: dict[str, str]


def _not_found(subject_id: str) -> ProblemError:
    return ProblemError(404, "subject_not_found", f"no events about {subject_id!r} yet")


def subjects_router(
    pool: asyncpg.Pool[Any], guard: Guard, histories: HistoryReader, recorder: AccessRecorder
) -> APIRouter:
    router = APIRouter(prefix="/v1/subjects", tags=["subjects"], responses=RESPONSES)
    reader = guard.allow("dpo", "auditor")

    async def allow_personal(
        caller: Caller, subject_id: str, scope: Literal["subject", "history"], reason: str | None
    ) -> None:
        require_grant(caller, "personal_data", unless="dpo")
        if reason is None:
            message = "reason: say why personal data is read (it is recorded in the ledger)"
            raise ProblemError(422, "validation_failed", message)
        await recorder.record(caller, subject_id, scope, reason)

    async def current(subject_id: str) -> dict[str, Any]:
        state = await read_subject(pool, subject_id)
        if state is None:
            raise _not_found(subject_id)
        return state_to_json(state, datetime.now(UTC))

    @router.get("/{subject_id}", summary="Current state of a subject")
    async def get_subject(
        subject_id: SubjectPath,
        caller: Caller = reader,
        personal: Personal = False,
        reason: Reason = None,
    ) -> SubjectOut:
        """Per-purpose status, legal basis, notice version, version, last event; the e-mail
        address only with ``personal=true``."""
        subject = await current(subject_id)
        if personal and subject["email"] is not None:
            await allow_personal(caller, subject_id, "subject", reason)
            return SubjectOut.model_validate({**subject, "personal_state": "open"})
        state = "none" if subject["email"] is None else "withheld"
        return SubjectOut.model_validate({**subject, "email": None, "personal_state": state})

    @router.get(
        "/{subject_id}/eligibility",
        summary="May this person be e-mailed, per purpose",
        dependencies=[guard.allow("mail_tool", "dpo", "auditor")],
    )
    async def get_eligibility(subject_id: SubjectPath) -> EligibilityOut:
        purposes = (await current(subject_id))["purposes"]
        return EligibilityOut(
            subject_id=subject_id,
            eligible={p: v["eligible"] for p, v in purposes.items()},
            reasons={p: v["eligibility_reason"] for p, v in purposes.items()},
        )

    @router.get("/{subject_id}/history", summary="Every event about a subject, in ledger order")
    async def get_history(
        subject_id: SubjectPath,
        caller: Caller = reader,
        personal: Personal = False,
        reason: Reason = None,
    ) -> HistoryOut:
        """The events as appended, each with its partition and offset; personal sections only
        with ``personal=true`` (``personal_state`` says why one is not shown)."""
        if personal:
            await current(subject_id)  # 404 before recording a read of nothing
            await allow_personal(caller, subject_id, "history", reason)
        events = await histories.read(subject_id, personal=personal)
        if not events:
            raise _not_found(subject_id)
        return HistoryOut.model_validate({"subject_id": subject_id, "events": events})

    return router
