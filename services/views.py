"""Read models shared by the HTTP APIs: what a subject and a rights request look like."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from projections.state import PurposeStatus


class PurposeOut(BaseModel):
    status: PurposeStatus
    legal_basis: str | None
    notice_version: str | None
    changed_at: datetime = Field(description="When the deciding event occurred.")
    event_id: str = Field(description="The event that decides the status.")
    valid_until: datetime | None
    eligible: bool = Field(description="May be processed (e-mailed) for this purpose now.")
    eligibility_reason: str
    marks: dict[str, dict[str, Any] | None] = Field(
        description="The latest event of each kind the status is derived from."
    )


class RequestOut(BaseModel):
    request_id: UUID
    right: str
    channel: str
    written: bool
    signed: bool
    received_by: str
    received_at: datetime
    due_on: date | None
    status: str
    last_event_id: UUID
    identity_verified_at: datetime | None
    extended_due_on: date | None
    answered_at: datetime | None
    outcome: str | None
    reasons: str | None


class SubjectStateOut(BaseModel):
    """What every answer about a subject's state holds, now or at an instant; each answer's
    model adds its own fields. Built from ``projections/rows.py`` ``state_to_json``, the one
    mapping of a state to JSON, with eligibility at the answer's instant."""

    subject_id: str
    purposes: dict[str, PurposeOut]
    restricted_since: datetime | None
    erased_at: datetime | None
    requests: dict[str, RequestOut]
    version: int = Field(description="Number of the subject's events (up to the instant).")
    last_event_id: str | None
    updated_at: datetime | None


class SubjectOut(SubjectStateOut):
    """A subject's current state."""

    email: str | None = Field(description="Only when personal data was asked for and allowed.")
    personal_state: Literal["open", "withheld", "none"] = Field(
        default="open", description="Whether the e-mail address is shown, withheld, or not held."
    )
