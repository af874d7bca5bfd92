"""The subject state and the pure fold ``evolve(state, event) -> state``.

No clock, no I/O, no randomness, no configuration: live projection, replay and point-in-time
answers all call this same function, so they cannot disagree.

Rules, in the order they matter:

- Events are folded in log order (one subject's events share a partition).
- A purpose's status is decided by its events' times of *occurrence* (ties: the later event
  id), whatever order they reached the log in. So a paper consent typed in a week late does not
  undo a withdrawal made in between, and a withdrawal after a consent always wins.
- After a withdrawal, an objection or an erasure, only a later *explicit* consent (a
  ``consent.given`` with legal basis ``consent``, or a confirmed double opt-in) makes the purpose
  given again; a registration under legitimate interest (a CRM re-import) never does, whenever
  it occurred.
- A restricted person is eligible for no purpose until the restriction is lifted.
- An erasure drops every piece of personal data from the state and keeps a trace: when, and the
  statuses of the purposes, without anything that identifies the person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal
from uuid import UUID

from events.catalog import AnyEvent
from events.consent import (
    ConsentConfirmed,
    ConsentExpired,
    ConsentGiven,
    ConsentRequested,
    ConsentWithdrawn,
    ObjectionReceived,
)
from events.requests import (
    IdentityVerified,
    RequestExtended,
    RequestFulfilled,
    RequestReceived,
    RequestRejected,
)
from events.subject import Erased, Rectified, RestrictionApplied, RestrictionLifted
from events.types import LegalBasis

#: The only field of a personal section the fold reads: the projector opens no more than this.
FOLDED_PERSONAL = frozenset({"email"})

PurposeStatus = Literal["pending", "given", "withdrawn", "expired", "objected", "erased"]
RequestStatus = Literal["open", "extended", "fulfilled", "rejected"]
PurposeEvent = (
    ConsentRequested
    | ConsentConfirmed
    | ConsentGiven
    | ConsentWithdrawn
    | ConsentExpired
    | ObjectionReceived
)
RequestEvent = IdentityVerified | RequestExtended | RequestFulfilled | RequestRejected


@dataclass(frozen=True, slots=True)
class Mark:
    """One decisive event for a purpose: when it occurred and what it said."""

    at: datetime
    event_id: UUID
    notice_version: str | None = None
    valid_until: datetime | None = None
    kind: str = ""

    @property
    def key(self) -> tuple[datetime, UUID]:
        """Order of occurrence; ties go to the later event id (ids are time-ordered)."""
        return (self.at, self.event_id)


def _later(current: Mark | None, candidate: Mark) -> Mark:
    return candidate if current is None or candidate.key > current.key else current


@dataclass(frozen=True, slots=True)
class PurposeState:
    """The latest event of each decisive kind for one purpose.

    The status is derived from these marks by their time of occurrence, so it does not depend
    on the order in which the events reached the log.
    """

    explicit: Mark | None = None  # latest explicit consent: given with basis consent, or confirmed
    registration: Mark | None = None  # latest registration under legitimate interest
    pending: Mark | None = None  # latest double opt-in request
    block: Mark | None = None  # latest withdrawal or objection (kind says which)
    expiry: Mark | None = None  # latest lapse of a consent's validity

    def view(self, erased: Mark | None) -> PurposeView:
        """Status, basis and notice as of all the marks (an erasure blocks every purpose)."""
        block = self.block if erased is None else _later(self.block, erased)
        explicit = self.explicit
        live = explicit if explicit and (block is None or explicit.key > block.key) else None
        expired = live is not None and self.expiry is not None and self.expiry.key >= live.key
        if live is not None and not expired:
            return PurposeView("given", "consent", live.notice_version, live)
        if self.registration is not None and block is None:
            reg = self.registration
            return PurposeView("given", "legitimate_interest", reg.notice_version, reg)
        pending = self.pending
        if (
            pending is not None
            and (block is None or pending.key > block.key)
            and (explicit is None or pending.key > explicit.key)
        ):
            return PurposeView("pending", "consent", pending.notice_version, pending)
        basis: LegalBasis | None = (
            "consent" if explicit else "legitimate_interest" if self.registration else None
        )
        notice = next((m.notice_version for m in (explicit, self.registration, pending) if m), None)
        if live is not None and self.expiry is not None:
            return PurposeView("expired", basis, notice, self.expiry)
        if block is not None:
            return PurposeView(_BLOCK_STATUS[block.kind], basis, notice, block)
        if self.expiry is not None:
            return PurposeView("expired", basis, notice, self.expiry)
        assert pending is not None, "a purpose exists only once one of its events was folded"
        return PurposeView("pending", "consent", pending.notice_version, pending)


_BLOCK_STATUS: dict[str, PurposeStatus] = {
    "withdrawn": "withdrawn",
    "objected": "objected",
    "erased": "erased",
}


@dataclass(frozen=True, slots=True)
class PurposeView:
    """What the marks of a purpose amount to."""

    status: PurposeStatus
    legal_basis: LegalBasis | None
    notice_version: str | None
    decided_by: Mark

    @property
    def valid_until(self) -> datetime | None:
        return self.decided_by.valid_until if self.status == "given" else None


@dataclass(frozen=True, slots=True)
class RequestState:
    """A rights request and where its lifecycle stands."""

    request_id: UUID
    right: str
    channel: str
    written: bool
    signed: bool
    received_by: str
    received_at: datetime
    due_on: date | None
    status: RequestStatus
    last_event_id: UUID
    identity_verified_at: datetime | None = None
    extended_due_on: date | None = None
    answered_at: datetime | None = None
    outcome: str | None = None
    reasons: str | None = None


@dataclass(frozen=True, slots=True)
class Eligibility:
    """Whether the person may be processed (e-mailed) for a purpose, and why."""

    eligible: bool
    reason: str
    event_id: UUID | None


@dataclass(frozen=True, slots=True)
class SubjectState:
    """Current state of one data subject."""

    subject_id: str
    email: str | None = None
    purposes: Mapping[str, PurposeState] = field(default_factory=dict)
    restricted_since: datetime | None = None
    erased: Mark | None = None
    requests: Mapping[UUID, RequestState] = field(default_factory=dict)
    version: int = 0
    last_event_id: UUID | None = None
    updated_at: datetime | None = None


def evolve(state: SubjectState | None, event: AnyEvent) -> SubjectState:
    """Apply one event to a subject's state."""
    current = state if state is not None else SubjectState(subject_id=event.subject_id)
    if current.subject_id != event.subject_id:
        raise ValueError(f"event {event.event_id} is not about subject {current.subject_id}")
    changed = _apply(current, event)
    return replace(
        changed,
        version=current.version + 1,
        last_event_id=event.event_id,
        updated_at=event.recorded_at,
    )


def _apply(state: SubjectState, event: AnyEvent) -> SubjectState:
    match event:
        case (
            ConsentRequested()
            | ConsentConfirmed()
            | ConsentGiven()
            | ConsentWithdrawn()
            | ConsentExpired()
            | ObjectionReceived()
        ):
            return _apply_purpose_event(state, event)
        case Rectified():
            return replace(state, email=_newer_email(state, event) or state.email)
        case RestrictionApplied():
            return replace(state, restricted_since=state.restricted_since or event.occurred_at)
        case RestrictionLifted():
            return replace(state, restricted_since=None)
        case Erased():
            return _erase(state, event)
        case RequestReceived():
            return _with_request(state, _received(event))
        case IdentityVerified() | RequestExtended() | RequestFulfilled() | RequestRejected():
            request = state.requests.get(event.data.request_id)
            if request is None:  # about a request this subject never had: history only
                return state
            return _with_request(state, _request_after(request, event))
        case _:  # exports and recipient notices change no state
            return state


def _apply_purpose_event(state: SubjectState, event: PurposeEvent) -> SubjectState:
    marks = state.purposes.get(event.purpose, PurposeState())
    after = _marks_after(marks, event)
    email = state.email
    if isinstance(event, ConsentRequested | ConsentGiven | ConsentConfirmed):
        email = _newer_email(state, event) or email
    if after is marks:
        return replace(state, email=email)
    return replace(state, email=email, purposes={**state.purposes, event.purpose: after})


def _marks_after(marks: PurposeState, event: PurposeEvent) -> PurposeState:
    at, event_id = event.occurred_at, event.event_id
    match event:
        case ConsentGiven():
            mark = Mark(at, event_id, event.data.notice_version, event.data.valid_until)
            if event.data.legal_basis == "consent":
                return replace(marks, explicit=_later(marks.explicit, mark))
            return replace(marks, registration=_later(marks.registration, mark))
        case ConsentRequested():
            mark = Mark(at, event_id, event.data.notice_version)
            return replace(marks, pending=_later(marks.pending, mark))
        case ConsentConfirmed():
            mark = Mark(at, event_id, event.data.notice_version, event.data.valid_until)
            return replace(marks, explicit=_later(marks.explicit, mark))
        case ConsentWithdrawn():
            return replace(marks, block=_later(marks.block, Mark(at, event_id, kind="withdrawn")))
        case ObjectionReceived():
            return replace(marks, block=_later(marks.block, Mark(at, event_id, kind="objected")))
        case ConsentExpired():
            return replace(marks, expiry=_later(marks.expiry, Mark(at, event_id)))


def _newer_email(state: SubjectState, event: AnyEvent) -> str | None:
    """The event's e-mail address, unless an erasure occurred after the event."""
    if state.erased is not None and (event.occurred_at, event.event_id) < state.erased.key:
        return None
    return event.personal.email


def _erase(state: SubjectState, event: Erased) -> SubjectState:
    mark = Mark(event.occurred_at, event.event_id, kind="erased")
    return replace(state, email=None, erased=_later(state.erased, mark))


def _received(event: RequestReceived) -> RequestState:
    data = event.data
    return RequestState(
        request_id=data.request_id,
        right=data.right,
        channel=data.channel,
        written=data.written,
        signed=data.signed,
        received_by=data.received_by,
        received_at=event.occurred_at,
        due_on=data.due_on,
        status="open",
        last_event_id=event.event_id,
    )


def _request_after(request: RequestState, event: RequestEvent) -> RequestState:
    moved = replace(request, last_event_id=event.event_id)
    match event:
        case IdentityVerified():
            return replace(moved, identity_verified_at=event.occurred_at)
        case RequestExtended():
            return replace(
                moved,
                status="extended",
                extended_due_on=event.data.extended_due_on,
                reasons=event.data.reasons,
            )
        case RequestFulfilled():
            return replace(
                moved, status="fulfilled", answered_at=event.occurred_at, outcome=event.data.outcome
            )
        case RequestRejected():
            return replace(
                moved,
                status="rejected",
                answered_at=event.occurred_at,
                outcome="rejected",
                reasons=event.data.reasons,
            )


def _with_request(state: SubjectState, request: RequestState) -> SubjectState:
    return replace(state, requests={**state.requests, request.request_id: request})


def eligibility(state: SubjectState, purpose: str) -> Eligibility:
    """Whether the person may be processed for ``purpose`` as of the events folded so far.

    A consent's ``valid_until`` is not applied here (that needs a clock); readers compare it
    with their own "now", and the expiry job records the lapse as ``consent.expired``.
    """
    return verdict(state, purpose_view(state, purpose))


def verdict(state: SubjectState, view: PurposeView | None) -> Eligibility:
    """:func:`eligibility` from a purpose's view, for callers that need both (the projector's
    hot path computes each view once)."""
    if state.restricted_since is not None:
        since = state.restricted_since.date().isoformat()
        return Eligibility(False, f"processing restricted since {since}", state.last_event_id)
    if view is None:
        return Eligibility(False, "no consent or registration recorded", None)
    on = view.decided_by.at.date().isoformat()
    if view.status != "given":
        return Eligibility(False, _NOT_GIVEN[view.status].format(on=on), view.decided_by.event_id)
    if view.legal_basis == "legitimate_interest":
        reason = f"registered under legitimate interest on {on}; no withdrawal or objection"
    else:
        reason = f"consent given on {on} under notice {view.notice_version}"
    return Eligibility(True, reason, view.decided_by.event_id)


_NOT_GIVEN: dict[PurposeStatus, str] = {
    "pending": "double opt-in requested on {on}, not confirmed",
    "withdrawn": "consent withdrawn on {on}",
    "expired": "consent expired on {on}",
    "objected": "objected on {on} (Art. 21)",
    "erased": "personal data erased on {on}",
    "given": "",
}


def fold(
    events: Iterable[AnyEvent], states: Mapping[str, SubjectState] | None = None
) -> dict[str, SubjectState]:
    """Fold many events (any subjects, log order) onto known states; returns changed states."""
    known = dict(states or {})
    changed: dict[str, SubjectState] = {}
    for event in events:
        new = evolve(changed.get(event.subject_id) or known.get(event.subject_id), event)
        changed[event.subject_id] = new
    return changed


def purpose_view(state: SubjectState, purpose: str) -> PurposeView | None:
    """What a purpose's marks amount to for this person, or ``None`` if never named."""
    marks = state.purposes.get(purpose)
    return marks.view(state.erased) if marks is not None else None
