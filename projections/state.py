"""The subject state and the pure fold ``evolve(state, event) -> state``.

No clock, no I/O, no randomness, no configuration: live projection, replay and point-in-time
answers all call this same function, so they cannot disagree.

Every field of the state is a function of the *set* of the subject's events, ordered by
``(occurred_at, event_id)`` (a tie goes to the later event id), whatever order they were folded
in. Each field keeps the marks it is derived from:

- A purpose's status: the latest explicit consent (a ``consent.given`` with legal basis
  ``consent``, or a confirmed double opt-in), registration under legitimate interest, double
  opt-in request, withdrawal or objection, and lapse. After a withdrawal, an objection or an
  erasure, only an explicit consent that occurred after it makes the purpose given again; a
  registration under legitimate interest never does.
- Restriction (Art. 18): restricted while the latest ``restriction.applied`` is later than the
  latest ``restriction.lifted``; a restricted person is eligible for no purpose.
- The e-mail address: the address of the latest event that carries one (a consent requested,
  given or confirmed with ``personal.email``, or ``subject.rectified``) and that no erasure
  covers (see below).
- A rights request: its receipt, the earliest identity verification, the earliest extension,
  the earliest answer (fulfilled or rejected), and its latest event.
- ``last_event_id`` and ``updated_at``: the greatest event id and recording time folded;
  ``version``: the number of events folded.

The exception the law needs: an erasure is final for every event that occurred before it or was
recorded before it (event ids are time-ordered and minted when the ledger records the event; the
erasure destroys the data keys of everything recorded before it, so a replay could not read that
data again). Such an event gives no e-mail address, and makes no purpose given or pending again:
a purpose is given again only if its latest explicit consent occurred after the latest erasure
and was recorded after every erasure. An erasure keeps a trace: when, and the statuses of the
purposes, without anything that identifies the person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal, Protocol, TypeVar
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
RequestEvent = (
    RequestReceived | IdentityVerified | RequestExtended | RequestFulfilled | RequestRejected
)
Key = tuple[datetime, UUID]


class _Keyed(Protocol):
    @property
    def key(self) -> Key: ...


K = TypeVar("K", bound=_Keyed)


@dataclass(frozen=True, slots=True)
class Mark:
    """One decisive event: when it occurred and what it said."""

    at: datetime
    event_id: UUID
    notice_version: str | None = None
    valid_until: datetime | None = None
    kind: str = ""

    @property
    def key(self) -> Key:
        """Order of occurrence; ties go to the later event id (ids are time-ordered)."""
        return (self.at, self.event_id)


def _later(current: K | None, candidate: K) -> K:
    return candidate if current is None or candidate.key > current.key else current


def _earlier(current: K | None, candidate: K) -> K:
    return candidate if current is None or candidate.key < current.key else current


def _key(event: AnyEvent) -> Key:
    return (event.occurred_at, event.event_id)


@dataclass(frozen=True, slots=True)
class Erasure:
    """What the erasures amount to: the latest by occurrence, and the last one recorded."""

    latest: Mark
    recorded_last: UUID  # the greatest erasure event id (ids are minted when recorded)

    def covers(self, at: datetime, event_id: UUID) -> bool:
        """Whether an event occurred or was recorded before an erasure: it is erased for good."""
        return (at, event_id) < self.latest.key or event_id < self.recorded_last


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

    def view(self, erasure: Erasure | None) -> PurposeView:
        """Status, basis and notice as of all the marks (an erasure blocks every purpose)."""
        block = self.block if erasure is None else _later(self.block, erasure.latest)
        explicit = self.explicit
        live = explicit if explicit and _after(explicit, block, erasure) else None
        expired = live is not None and self.expiry is not None and self.expiry.key >= live.key
        if live is not None and not expired:
            return PurposeView("given", "consent", live.notice_version, live)
        if self.registration is not None and block is None:
            reg = self.registration
            return PurposeView("given", "legitimate_interest", reg.notice_version, reg)
        pending = self.pending
        if (
            pending is not None
            and _after(pending, block, erasure)
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


def _after(mark: Mark, block: Mark | None, erasure: Erasure | None) -> bool:
    """Whether a consent or a double opt-in request occurred after the block, and no erasure
    covers it."""
    if block is not None and mark.key <= block.key:
        return False
    return erasure is None or not erasure.covers(mark.at, mark.event_id)


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
class Address:
    """An e-mail address and the event that carried it."""

    at: datetime
    event_id: UUID
    email: str

    @property
    def key(self) -> Key:
        return (self.at, self.event_id)

    def outranks(self, other: Address) -> bool:
        """Later in both occurrence and recording: ``other`` can never be the address again,
        since an erasure that covers this address covers ``other`` too."""
        return self.key > other.key and self.event_id > other.event_id


@dataclass(frozen=True, slots=True)
class Receipt:
    """The ``request.received`` part of a rights request."""

    at: datetime
    event_id: UUID
    right: str
    channel: str
    written: bool
    signed: bool
    received_by: str
    due_on: date | None

    @property
    def key(self) -> Key:
        return (self.at, self.event_id)


@dataclass(frozen=True, slots=True)
class Step:
    """An extension or an answer of a rights request."""

    at: datetime
    event_id: UUID
    status: RequestStatus
    extended_due_on: date | None = None
    outcome: str | None = None
    reasons: str | None = None

    @property
    def key(self) -> Key:
        return (self.at, self.event_id)


@dataclass(frozen=True, slots=True)
class RequestState:
    """A rights request: the earliest event of each lifecycle step, and its latest event.

    ``receipt`` is ``None`` while only lifecycle events of the request were folded (a shuffled
    fold, or a request never received): such a request is kept to be completed, not shown.
    """

    request_id: UUID
    last: Mark
    receipt: Receipt | None = None
    verified: Mark | None = None
    extension: Step | None = None
    answer: Step | None = None

    @property
    def status(self) -> RequestStatus:
        step = self.answer or self.extension
        return step.status if step is not None else "open"

    @property
    def last_event_id(self) -> UUID:
        return self.last.event_id

    @property
    def identity_verified_at(self) -> datetime | None:
        return self.verified.at if self.verified else None

    @property
    def extended_due_on(self) -> date | None:
        return self.extension.extended_due_on if self.extension else None

    @property
    def answered_at(self) -> datetime | None:
        return self.answer.at if self.answer else None

    @property
    def outcome(self) -> str | None:
        return self.answer.outcome if self.answer else None

    @property
    def reasons(self) -> str | None:
        """The rejection's reasons, else the extension's."""
        answered = self.answer.reasons if self.answer else None
        return answered or (self.extension.reasons if self.extension else None)


@dataclass(frozen=True, slots=True)
class Eligibility:
    """Whether the person may be processed (e-mailed) for a purpose, and why."""

    eligible: bool
    reason: str
    event_id: UUID | None


@dataclass(frozen=True, slots=True)
class SubjectState:
    """Current state of one data subject, and the marks it is derived from."""

    subject_id: str
    addresses: tuple[Address, ...] = ()  # by occurrence; none outranks another
    purposes: Mapping[str, PurposeState] = field(default_factory=dict)
    restriction_applied: Mark | None = None  # latest restriction.applied
    restriction_lifted: Mark | None = None  # latest restriction.lifted
    erasure: Erasure | None = None
    requests: Mapping[UUID, RequestState] = field(default_factory=dict)
    version: int = 0
    last_event_id: UUID | None = None
    updated_at: datetime | None = None

    @property
    def email(self) -> str | None:
        """The address of the latest event carrying one that no erasure covers."""
        return self.addresses[-1].email if self.addresses else None

    @property
    def restricted_since(self) -> datetime | None:
        applied, lifted = self.restriction_applied, self.restriction_lifted
        if applied is None or (lifted is not None and lifted.key > applied.key):
            return None
        return applied.at

    @property
    def erased(self) -> Mark | None:
        return self.erasure.latest if self.erasure else None


def evolve(state: SubjectState | None, event: AnyEvent) -> SubjectState:
    """Apply one event to a subject's state."""
    current = state if state is not None else SubjectState(subject_id=event.subject_id)
    if current.subject_id != event.subject_id:
        raise ValueError(f"event {event.event_id} is not about subject {current.subject_id}")
    changed = _apply(current, event)
    return replace(
        changed,
        version=current.version + 1,
        last_event_id=_max(current.last_event_id, event.event_id),
        updated_at=_max(current.updated_at, event.recorded_at),
    )


T = TypeVar("T", datetime, UUID)


def _max(current: T | None, candidate: T) -> T:
    return candidate if current is None or candidate > current else current


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
            return _with_address(state, event)
        case RestrictionApplied():
            mark = Mark(event.occurred_at, event.event_id)
            return replace(state, restriction_applied=_later(state.restriction_applied, mark))
        case RestrictionLifted():
            mark = Mark(event.occurred_at, event.event_id)
            return replace(state, restriction_lifted=_later(state.restriction_lifted, mark))
        case Erased():
            return _erase(state, event)
        case (
            RequestReceived()
            | IdentityVerified()
            | RequestExtended()
            | RequestFulfilled()
            | RequestRejected()
        ):
            return _apply_request_event(state, event)
        case _:  # exports and recipient notices change no state
            return state


def _apply_purpose_event(state: SubjectState, event: PurposeEvent) -> SubjectState:
    if isinstance(event, ConsentRequested | ConsentGiven | ConsentConfirmed):
        state = _with_address(state, event)
    marks = state.purposes.get(event.purpose, PurposeState())
    after = _marks_after(marks, event)
    if after is marks:
        return state
    return replace(state, purposes={**state.purposes, event.purpose: after})


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


def _with_address(state: SubjectState, event: AnyEvent) -> SubjectState:
    """The state with the event's e-mail address among the candidates, unless an erasure covers
    the event or a candidate outranks it.

    Only the latest candidate is the address; the others stay because an erasure folded later
    may cover it and not them (one recorded between them), so that the answer is that of the
    set of events."""
    email = event.personal.email
    if email is None or (state.erasure and state.erasure.covers(*_key(event))):
        return state
    new = Address(event.occurred_at, event.event_id, email)
    if any(a.outranks(new) for a in state.addresses):
        return state
    kept = [a for a in state.addresses if not new.outranks(a)]
    return replace(state, addresses=tuple(sorted([*kept, new], key=lambda a: a.key)))


def _erase(state: SubjectState, event: Erased) -> SubjectState:
    mark = Mark(event.occurred_at, event.event_id, kind="erased")
    before = state.erasure
    erasure = Erasure(
        latest=_later(before.latest if before else None, mark),
        recorded_last=_max(before.recorded_last if before else None, event.event_id),
    )
    kept = tuple(a for a in state.addresses if not erasure.covers(a.at, a.event_id))
    return replace(state, addresses=kept, erasure=erasure)


def _apply_request_event(state: SubjectState, event: RequestEvent) -> SubjectState:
    mark = Mark(event.occurred_at, event.event_id)
    request_id = event.data.request_id
    known = state.requests.get(request_id)
    request = _request_after(known or RequestState(request_id, last=mark), event)
    request = replace(request, last=_later(request.last, mark))
    return replace(state, requests={**state.requests, request_id: request})


def _request_after(request: RequestState, event: RequestEvent) -> RequestState:
    at, event_id = event.occurred_at, event.event_id
    match event:
        case RequestReceived():
            data = event.data
            receipt = Receipt(
                at, event_id, data.right, data.channel, data.written, data.signed,
                data.received_by, data.due_on,
            )  # fmt: skip
            return replace(request, receipt=_earlier(request.receipt, receipt))
        case IdentityVerified():
            return replace(request, verified=_earlier(request.verified, Mark(at, event_id)))
        case RequestExtended():
            step = Step(
                at, event_id, "extended", event.data.extended_due_on, reasons=event.data.reasons
            )
            return replace(request, extension=_earlier(request.extension, step))
        case RequestFulfilled():
            step = Step(at, event_id, "fulfilled", outcome=event.data.outcome)
            return replace(request, answer=_earlier(request.answer, step))
        case RequestRejected():
            step = Step(at, event_id, "rejected", outcome="rejected", reasons=event.data.reasons)
            return replace(request, answer=_earlier(request.answer, step))


def received_requests(state: SubjectState) -> list[RequestState]:
    """The requests whose receipt was folded, by id: the ones readers are shown."""
    return [r for _, r in sorted(state.requests.items()) if r.receipt is not None]


def eligibility(state: SubjectState, purpose: str) -> Eligibility:
    """Whether the person may be processed for ``purpose`` as of the events folded so far.

    A consent's ``valid_until`` is not applied here (that needs a clock); readers apply it at
    their own instant (:func:`verdict_at`), and the expiry job records the lapse as
    ``consent.expired``.
    """
    return verdict(state, purpose_view(state, purpose))


def verdict(state: SubjectState, view: PurposeView | None) -> Eligibility:
    """:func:`eligibility` from a purpose's view, for callers that need both (the projector's
    hot path computes each view once)."""
    if state.restricted_since is not None:
        since = state.restricted_since.date().isoformat()
        applied = state.restriction_applied
        assert applied is not None, "restricted only by a restriction.applied"
        return Eligibility(False, f"processing restricted since {since}", applied.event_id)
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


def verdict_at(state: SubjectState, view: PurposeView | None, at: datetime | None) -> Eligibility:
    """:func:`verdict` at the instant ``at`` (``None``: on the events alone): a consent whose
    validity ended by then is not eligible, even before the expiry job recorded its lapse.
    Readers pass their "now" (or a point in time); the projection's column passes ``None``."""
    judged = verdict(state, view)
    until = view.valid_until if view is not None else None
    if at is None or not judged.eligible or until is None or until > at:
        return judged
    reason = f"consent lapsed on {until.date().isoformat()} (its validity ended)"
    return Eligibility(False, reason, judged.event_id)


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
    """Fold many events (any subjects, any order) onto known states; returns changed states."""
    known = dict(states or {})
    changed: dict[str, SubjectState] = {}
    for event in events:
        new = evolve(changed.get(event.subject_id) or known.get(event.subject_id), event)
        changed[event.subject_id] = new
    return changed


def purpose_view(state: SubjectState, purpose: str) -> PurposeView | None:
    """What a purpose's marks amount to for this person, or ``None`` if never named."""
    marks = state.purposes.get(purpose)
    return marks.view(state.erasure) if marks is not None else None
