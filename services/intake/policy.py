"""What the ledger checks and adds before it appends, beyond each event's own schema.

- Every purpose, notice version and lawful basis must be one the register names.
- Rights-request events must follow the request's lifecycle (known request, not yet answered,
  one extension, only within the first month, no step dated before the receipt); the ledger
  sets the deadlines and the pointer to the supervisory authority itself, so that no producer
  can promise a wrong date.
- A suppressed address is attached to no new subject without an explicit consent, and a
  suppression reaches every subject holding the address (:mod:`services.privacy.suppression`).
- Each rectification, erasure and restriction brings one Art. 19 ``recipient.notified`` event
  per recipient the register names for it, appended in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from events.catalog import SUBMISSION_ADAPTER, AnySubmission
from events.consent import SUPPRESSION_SOURCE, ObjectionReceivedIn
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
from services.privacy.suppression import AddressBook, why

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
    extended: bool = False


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

    def record(self, submission: AnySubmission) -> None:
        """What an accepted rights-request event changes for the items after it."""
        if isinstance(submission, RequestReceivedIn):
            assert submission.subject_id is not None
            self.put(
                KnownRequest(
                    submission.data.request_id,
                    submission.subject_id,
                    submission.occurred_at,
                    answered=False,
                )
            )
        elif isinstance(submission, RequestFulfilledIn | RequestRejectedIn | RequestExtendedIn):
            request = self.of(submission.data.request_id, submission.subject_id)
            assert request is not None, "an accepted step names a known request"
            if isinstance(submission, RequestExtendedIn):
                self.put(replace(request, extended=True))
            else:
                self.put(replace(request, answered=True))


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
    """A submission ready to become an event. ``cause`` is the index of the draft that brought
    it (an Art. 19 notice's rectification, a derived objection's suppressing event): its event
    id becomes this event's ``causation_id``."""

    submission: AnySubmission
    cause: int | None = None


@dataclass(slots=True)
class Decision:
    """What a batch amounts to: the drafts of the accepted items, in order, and per item the
    range of its drafts (empty when it was refused) or its problems."""

    drafts: list[Draft] = field(default_factory=list)
    spans: list[range] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def refusals(self, item: int) -> list[Problem]:
        return [p for p in self.problems if p.item == item]


class LedgerPolicy:
    """Checks submissions against the register, the requests' state and the suppression list,
    and completes them (pure: what the ledger committed comes in as arguments)."""

    def __init__(self, register: Register) -> None:
        self._register = register

    def decide(
        self,
        submissions: Sequence[AnySubmission],
        keys: Mapping[int, bytes],
        book: AddressBook,
        known: KnownRequests,
        minted: Mapping[bytes, str],
    ) -> Decision:
        """Decide item by item; an accepted item's effects (a new request, a newly held or
        suppressed address) are seen by the items after it, a refused item's are not.
        ``minted``: the subject id a new address named without one gets (made by the caller,
        so that deciding stays pure)."""
        decision = Decision()
        for index, submission in enumerate(submissions):
            key = keys.get(index)
            subject = submission.subject_id or (
                (book.owners.get(key) or minted[key]) if key else None
            )
            assert subject is not None, "a submission names its person (Submission validator)"
            named = submission.model_copy(update={"subject_id": subject})
            problems = self._register_problems(index, named)
            refusal = book.refusal(key, subject, named) if key else None
            if refusal is not None:
                problems.append(Problem(index, "personal.email", refusal))
            completed, lifecycle = self._complete(index, named, known)
            problems += lifecycle
            if problems:
                decision.problems += problems
                decision.spans.append(range(0))
                continue
            start = len(decision.drafts)
            self._accept(completed, known, key, book, decision)
            decision.spans.append(range(start, len(decision.drafts)))
        return decision

    def _accept(
        self,
        submission: AnySubmission,
        known: KnownRequests,
        key: bytes | None,
        book: AddressBook,
        decision: Decision,
    ) -> None:
        """Record an accepted item's effects and append its drafts to the decision."""
        subject = submission.subject_id
        assert subject is not None
        cause = len(decision.drafts)
        decision.drafts.append(Draft(submission))
        decision.drafts += [Draft(n, cause) for n in self._notices(submission)]
        known.record(submission)
        if key is not None:
            book.attach(key, subject)
        reason = why(submission)
        if reason is not None:
            others = book.suppress(subject, reason, cause)
            decision.drafts += [Draft(o, cause) for o in self._objections(submission, others)]

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
            known_ids = ", ".join(r.id for r in self._register.recipients)
            reason = f"unknown recipient {submission.data.recipient_id!r}; known: {known_ids}"
            problems.append(Problem(index, "data.recipient_id", reason))
        return problems

    def _complete(
        self, index: int, submission: AnySubmission, known: KnownRequests
    ) -> tuple[AnySubmission, list[Problem]]:
        """Set what only the ledger may set, and check the request's lifecycle."""
        tz = self._register.tz
        if isinstance(submission, RequestReceivedIn):
            due = deadline(submission.occurred_at, tz).due_on
            problems = []
            if known.taken(submission.data.request_id):
                problems.append(Problem(index, "data.request_id", "this request already exists"))
            return _with_data(submission, due_on=due), problems
        if not isinstance(submission, LifecycleIn):
            return submission, []
        request = known.of(submission.data.request_id, submission.subject_id)
        if request is None:
            reason = f"no request {submission.data.request_id} for subject {submission.subject_id}"
            return submission, [Problem(index, "data.request_id", reason)]
        problems = _lifecycle_problems(index, submission, request)
        if isinstance(submission, RequestExtendedIn):
            limits = deadline(request.received_at, tz)
            if not can_extend(limits, submission.occurred_at.astimezone(tz).date()):
                reason = (
                    f"an extension must be told within the first month, by {limits.due_on}; "
                    "Art. 12(3)"
                )
                problems.append(Problem(index, "occurred_at", reason))
            return _with_data(submission, extended_due_on=limits.extended_due_on), problems
        if isinstance(submission, RequestRejectedIn):
            authority = self._register.supervisory_authority
            pointer = f"{authority.name}, {authority.url}"
            return _with_data(submission, authority=pointer), problems
        return submission, problems

    def _notices(self, submission: AnySubmission) -> list[AnySubmission]:
        """One Art. 19 notice per recipient of the action; the event id it is about is set
        when the events are made (:func:`services.intake.recording.materialize`)."""
        action = ART19_ACTION.get(type(submission))
        if action is None:
            return []
        request_id = getattr(submission.data, "request_id", None)
        return [
            _ledger_event(
                submission,
                submission.subject_id,
                "recipient.notified",
                {
                    "recipient_id": recipient.id,
                    "action": action,
                    "about_event_id": UUID(int=0),
                    "request_id": request_id,
                },
                source=LEDGER_SOURCE,
            )
            for recipient in self._register.recipients_for(action)
        ]

    def _objections(self, cause: AnySubmission, subjects: set[str]) -> list[AnySubmission]:
        """The objection each other holder of a suppressed address gets: for the objected
        purpose, or for every purpose of the register after an erasure."""
        if isinstance(cause, ObjectionReceivedIn):
            purposes = [cause.purpose]
        else:
            purposes = [p.id for p in self._register.purposes]
        data = {"scope": "direct_marketing", "channel": "automated", "automated": True}
        return [
            _ledger_event(cause, subject, "objection.received", data, SUPPRESSION_SOURCE, purpose)
            for subject in sorted(subjects)
            for purpose in purposes
        ]


def _lifecycle_problems(
    index: int, submission: LifecycleIn, request: KnownRequest
) -> list[Problem]:
    """A step after the answer, a second extension, or a step dated before the receipt."""
    problems = []
    if request.answered:
        problems.append(Problem(index, "data.request_id", "the request was already answered"))
    elif isinstance(submission, RequestExtendedIn) and request.extended:
        reason = "the request was already extended; Art. 12(3) allows one extension"
        problems.append(Problem(index, "data.request_id", reason))
    if submission.occurred_at < request.received_at:
        received = request.received_at.isoformat()
        reason = f"must not be before the request was received ({received})"
        problems.append(Problem(index, "occurred_at", reason))
    return problems


def _ledger_event(
    cause: AnySubmission,
    subject_id: str | None,
    kind: str,
    data: dict[str, Any],
    source: Source,
    purpose: str | None = None,
) -> AnySubmission:
    """An event the ledger adds because of ``cause``: dated and correlated like it."""
    body: dict[str, Any] = {
        "type": kind,
        "subject_id": subject_id,
        "occurred_at": cause.occurred_at,
        "source": source,
        "correlation_id": cause.correlation_id,
        "data": data,
    }
    if purpose is not None:
        body["purpose"] = purpose
    return SUBMISSION_ADAPTER.validate_python(body)


def _with_data(submission: AnySubmission, **changes: Any) -> AnySubmission:
    data = submission.data.model_copy(update=changes)
    return submission.model_copy(update={"data": data})


def requested_ids(submissions: Sequence[AnySubmission]) -> list[UUID]:
    """The rights requests a batch's request events name: what admission looks up."""
    return [
        s.data.request_id for s in submissions if isinstance(s, LifecycleIn | RequestReceivedIn)
    ]
