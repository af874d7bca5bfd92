"""The subject state and the pure fold ``evolve(state, event) -> state``.

No clock, no I/O, no randomness: live projection, replay and point-in-time answers all call
this same function, so they cannot disagree.

Order rule: events are folded in log order (one subject's events share a partition). A
purpose's status follows the event that *occurred* last; ties go to the later entry in the log.
So a paper consent typed in a week late does not undo a withdrawal made in between, and a
withdrawal that occurs after a consent always wins. Every event still counts in ``version``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal
from uuid import UUID

from events.catalog import AnyEvent, ConsentGiven, ConsentWithdrawn, LegalBasis

PurposeStatus = Literal["given", "withdrawn"]


@dataclass(frozen=True, slots=True)
class PurposeState:
    """Where one purpose stands for one person, and the event that put it there."""

    status: PurposeStatus
    legal_basis: LegalBasis | None
    notice_version: str | None
    changed_at: datetime
    event_id: UUID
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class SubjectState:
    """Current state of one data subject."""

    subject_id: str
    email: str | None = None
    purposes: Mapping[str, PurposeState] = field(default_factory=dict)
    version: int = 0
    last_event_id: UUID | None = None
    updated_at: datetime | None = None


def evolve(state: SubjectState | None, event: AnyEvent) -> SubjectState:
    """Apply one event to a subject's state."""
    current = state if state is not None else SubjectState(subject_id=event.subject_id)
    if current.subject_id != event.subject_id:
        raise ValueError(f"event {event.event_id} is not about subject {current.subject_id}")
    purposes = dict(current.purposes)
    previous = purposes.get(event.purpose)
    if previous is None or event.occurred_at >= previous.changed_at:
        purposes[event.purpose] = _purpose_after(previous, event)
    email = event.personal.email if event.personal.email is not None else current.email
    return replace(
        current,
        email=email,
        purposes=purposes,
        version=current.version + 1,
        last_event_id=event.event_id,
        updated_at=event.recorded_at,
    )


def _purpose_after(previous: PurposeState | None, event: AnyEvent) -> PurposeState:
    if isinstance(event, ConsentGiven):
        return PurposeState(
            status="given",
            legal_basis=event.data.legal_basis,
            notice_version=event.data.notice_version,
            changed_at=event.occurred_at,
            event_id=event.event_id,
            valid_until=event.data.valid_until,
        )
    assert isinstance(event, ConsentWithdrawn)
    return PurposeState(
        status="withdrawn",
        legal_basis=previous.legal_basis if previous else None,
        notice_version=previous.notice_version if previous else None,
        changed_at=event.occurred_at,
        event_id=event.event_id,
    )


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
