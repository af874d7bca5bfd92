"""What the ledger checks and adds before it appends, beyond each event's own schema.

- Every purpose, notice version and lawful basis must be one the register names.
- Rights-request events must follow the request's lifecycle (known request, not yet answered,
  extension only within the first month); the ledger sets the deadlines and the pointer to the
  supervisory authority itself, so that no producer can promise a wrong date.
- Each rectification, erasure and restriction brings one Art. 19 ``recipient.notified`` event
  per recipient the register names for it, appended in the same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from events.catalog import SUBMISSION_ADAPTER, AnySubmission
from events.envelope import Source
from events.register import Register
from events.requests import (
    IdentityVerifiedIn,
    RecipientNotifiedIn,
    RequestExtendedIn,
    RequestFulfilledIn,
    RequestReceivedIn,
    RequestRejectedIn,
)
from events.subject import ErasedIn, RectifiedIn, RestrictionAppliedIn
from projections.deadlines import can_extend, deadline
from projections.queries import read_requests

LEDGER_SOURCE = Source(system="consent-ledger", actor="art19-notifier")
LifecycleIn = IdentityVerifiedIn | RequestExtendedIn | RequestFulfilledIn | RequestRejectedIn
ART19_ACTION: dict[type, str] = {
    RectifiedIn: "rectification",
    ErasedIn: "erasure",
    RestrictionAppliedIn: "restriction",
}


@dataclass(frozen=True, slots=True)
class KnownRequest:
    """What the ledger knows of a rights request, from the projection or the same batch."""

    request_id: UUID
    subject_id: str
    received_at: datetime
    answered: bool


class KnownRequests:
    """The requests a batch refers to. An id is taken once any request has it, but a step
    belongs to its own subject's request: two intakes may accept the same client-chosen id for
    two people at once, and then each has a request of that id (migration 007)."""

    def __init__(self, found: Iterable[KnownRequest]) -> None:
        self._by_key: dict[tuple[UUID, str], KnownRequest] = {}
        self._ids: set[UUID] = set()
        for request in found:
            self.put(request)

    def taken(self, request_id: UUID) -> bool:
        return request_id in self._ids

    def of(self, request_id: UUID, subject_id: str | None) -> KnownRequest | None:
        return self._by_key.get((request_id, subject_id)) if subject_id is not None else None

    def put(self, request: KnownRequest) -> None:
        self._by_key[(request.request_id, request.subject_id)] = request
        self._ids.add(request.request_id)


#: Looks up requests by id in the projection (one round trip for a whole batch).
RequestLookup = Callable[[list[UUID]], Awaitable[list[KnownRequest]]]


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason an item cannot be appended."""

    item: int
    field: str
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"item": self.item, "field": self.field, "reason": self.reason, "type": "policy"}


class PolicyError(ValueError):
    """Items break the register or a request's lifecycle; nothing is appended."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"item {p.item}: {p.field}: {p.reason}" for p in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Draft:
    """A submission ready to become an event; ``about`` points at the draft it notifies of."""

    submission: AnySubmission
    about: int | None = None


class LedgerPolicy:
    """Checks submissions against the register and the requests' state, and completes them."""

    def __init__(self, register: Register, lookup: RequestLookup) -> None:
        self._register = register
        self._lookup = lookup

    async def prepare(self, submissions: Sequence[AnySubmission]) -> list[Draft]:
        """The drafts to append, in order; raises :class:`PolicyError` naming every problem."""
        problems = [p for i, s in enumerate(submissions) for p in self._register_problems(i, s)]
        known = KnownRequests(
            await self._lookup(
                [
                    s.data.request_id
                    for s in submissions
                    if isinstance(s, LifecycleIn | RequestReceivedIn)
                ]
            )
        )
        drafts: list[Draft] = []
        for index, submission in enumerate(submissions):
            completed = self._complete(index, submission, known, problems)
            drafts.append(Draft(completed))
            drafts.extend(self._notices(len(drafts) - 1, completed))
        if problems:
            raise PolicyError(problems)
        return drafts

    def _register_problems(self, index: int, submission: AnySubmission) -> list[Problem]:
        data = submission.data
        purpose = getattr(submission, "purpose", None) or getattr(data, "purpose", None)
        found = self._register.check_reference(
            purpose, getattr(data, "notice_version", None), getattr(data, "legal_basis", None)
        )
        problems = [Problem(index, field, reason) for field, reason in found]
        if isinstance(submission, ErasedIn) and problems:  # its purpose sits in data
            problems = [Problem(index, "data.purpose", p.reason) for p in problems]
        if isinstance(submission, RecipientNotifiedIn) and not any(
            r.id == submission.data.recipient_id for r in self._register.recipients
        ):
            known = ", ".join(r.id for r in self._register.recipients)
            reason = f"unknown recipient {submission.data.recipient_id!r}; known: {known}"
            problems.append(Problem(index, "data.recipient_id", reason))
        return problems

    def _complete(
        self,
        index: int,
        submission: AnySubmission,
        known: KnownRequests,
        problems: list[Problem],
    ) -> AnySubmission:
        """Set what only the ledger may set, and check the request's lifecycle."""
        tz = self._register.tz
        if isinstance(submission, RequestReceivedIn):
            due = deadline(submission.occurred_at, tz).due_on
            request_id = submission.data.request_id
            if known.taken(request_id):
                problems.append(Problem(index, "data.request_id", "this request already exists"))
            subject_id = submission.subject_id
            assert subject_id is not None  # named (IdentityIndex.resolve) before the policy runs
            known.put(KnownRequest(request_id, subject_id, submission.occurred_at, answered=False))
            return _with_data(submission, due_on=due)
        if not isinstance(submission, LifecycleIn):
            return submission
        request = known.of(submission.data.request_id, submission.subject_id)
        if request is None:
            reason = f"no request {submission.data.request_id} for subject {submission.subject_id}"
            problems.append(Problem(index, "data.request_id", reason))
            return submission
        if request.answered:
            problems.append(Problem(index, "data.request_id", "the request was already answered"))
        if isinstance(submission, RequestFulfilledIn | RequestRejectedIn):
            known.put(replace(request, answered=True))
        if isinstance(submission, RequestExtendedIn):
            limits = deadline(request.received_at, tz)
            if not can_extend(limits, submission.occurred_at.astimezone(tz).date()):
                reason = (
                    f"an extension must be told within the first month, by {limits.due_on}; "
                    "Art. 12(3)"
                )
                problems.append(Problem(index, "occurred_at", reason))
            return _with_data(submission, extended_due_on=limits.extended_due_on)
        if isinstance(submission, RequestRejectedIn):
            authority = self._register.supervisory_authority
            pointer = f"{authority.name}, {authority.url}"
            return _with_data(submission, authority=pointer)
        return submission

    def _notices(self, about: int, submission: AnySubmission) -> list[Draft]:
        action = ART19_ACTION.get(type(submission))
        if action is None:
            return []
        request_id = getattr(submission.data, "request_id", None)
        return [
            Draft(
                SUBMISSION_ADAPTER.validate_python(
                    {
                        "type": "recipient.notified",
                        "subject_id": submission.subject_id,
                        "occurred_at": submission.occurred_at,
                        "source": LEDGER_SOURCE,
                        "correlation_id": submission.correlation_id,
                        "data": {
                            "recipient_id": recipient.id,
                            "action": action,
                            # placeholder until the event id is minted: see Draft.about
                            "about_event_id": UUID(int=0),
                            "request_id": request_id,
                        },
                    }
                ),
                about=about,
            )
            for recipient in self._register.recipients_for(action)
        ]


def _with_data(submission: AnySubmission, **changes: Any) -> AnySubmission:
    data = submission.data.model_copy(update=changes)
    return submission.model_copy(update={"data": data})


def request_lookup(pool: asyncpg.Pool[Any]) -> RequestLookup:
    """Look requests up in the ``rights_requests`` projection."""

    async def lookup(request_ids: list[UUID]) -> list[KnownRequest]:
        rows = await read_requests(pool, request_ids=request_ids) if request_ids else []
        return [
            KnownRequest(
                r["request_id"], r["subject_id"], r["received_at"], r["answered_at"] is not None
            )
            for r in rows
        ]

    return lookup
