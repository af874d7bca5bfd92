"""Point-in-time answers: a person's state, and who was eligible for a purpose, at an instant.

Both fold the subject's events from the ``ledger_events`` mirror with the live projection's pure
fold, keeping only the events up to the instant T. Which instant an event has is the ``basis``:

- ``occurred`` (the default): events that *occurred* at or before T — what was true at T, as the
  ledger knows it now (a paper consent typed in a week late counts from when it was signed).
- ``recorded``: events the ledger *recorded* at or before T — what the ledger knew at T, which is
  what the ledger could have answered then.

A consent whose ``valid_until`` is at or before T is not eligible at T (as for the live read
API). E-mail addresses are not answered: the mirror's personal sections are emptied on erasure
and sealed per subject, so the state carries no address.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

from events.catalog import AnyEvent
from events.codec import decode_raw
from projections.state import SubjectState, evolve, purpose_view, verdict_at

Basis = Literal["occurred", "recorded"]
BASES: tuple[Basis, ...] = ("occurred", "recorded")
_COLUMN: dict[Basis, str] = {"occurred": "occurred_at", "recorded": "recorded_at"}


def _subject_sql(basis: Basis) -> str:
    return (
        f"SELECT payload FROM ledger_events WHERE subject_id = $1 AND {_COLUMN[basis]} <= $2"
        ' ORDER BY partition, "offset"'
    )


def _eligible_sql(basis: Basis) -> str:
    """Every event up to T of every subject who has an event for the purpose up to T, grouped
    by subject in log order (the ``ledger_events_by_subject`` index gives this order)."""
    column = _COLUMN[basis]
    return (
        f"SELECT subject_id, payload FROM ledger_events WHERE {column} <= $1 AND subject_id IN"
        f" (SELECT subject_id FROM ledger_events WHERE purpose = $2 AND {column} <= $1)"
        ' ORDER BY subject_id, partition, "offset"'
    )


def fold_subject(events: Sequence[AnyEvent]) -> SubjectState:
    """One subject's events, in log order, folded; without the e-mail (see the module doc)."""
    state: SubjectState | None = None
    for event in events:
        state = evolve(state, event)
    assert state is not None, "a subject has at least one event"
    return replace(state, addresses=())


async def subject_as_of(
    pool: asyncpg.Pool[Any], subject_id: str, at: datetime, basis: Basis = "occurred"
) -> SubjectState | None:
    """The person's state at ``at``, or ``None`` if no event about them is up to ``at``."""
    rows = await pool.fetch(_subject_sql(basis), subject_id, at)
    return fold_subject([decode_raw(r["payload"]) for r in rows]) if rows else None


@dataclass(frozen=True, slots=True)
class EligibleAsOf:
    """One person eligible for a purpose at an instant, and the events that make them so."""

    subject_id: str
    purpose: str
    legal_basis: str
    notice_version: str | None
    since: datetime
    valid_until: datetime | None
    event_ids: tuple[UUID, ...]
    reason: str


def eligible_at(events: Sequence[AnyEvent], purpose: str, at: datetime) -> EligibleAsOf | None:
    """Whether one subject (all their events up to ``at``) is eligible for ``purpose`` at ``at``.

    ``event_ids`` holds the deciding event (the consent, its confirmation, or the registration
    under legitimate interest) and, for a confirmed double opt-in, the request it confirmed.
    """
    state = fold_subject(events)
    view = purpose_view(state, purpose)
    judged = verdict_at(state, view, at)
    if view is None or not judged.eligible:
        return None
    decided = view.decided_by
    request = state.purposes[purpose].pending
    ids = [decided.event_id]
    confirmed = any(
        e.event_id == decided.event_id and e.type == "consent.confirmed" for e in events
    )
    if confirmed and request is not None and request.key < decided.key:
        ids.insert(0, request.event_id)
    assert view.legal_basis is not None, "a given purpose has its basis"
    return EligibleAsOf(
        subject_id=state.subject_id,
        purpose=purpose,
        legal_basis=view.legal_basis,
        notice_version=view.notice_version,
        since=decided.at,
        valid_until=view.valid_until,
        event_ids=tuple(ids),
        reason=judged.reason,
    )


async def _by_subject(rows: AsyncIterable[asyncpg.Record]) -> AsyncIterator[list[AnyEvent]]:
    """Consecutive rows of one subject as that subject's events."""
    current: str | None = None
    events: list[AnyEvent] = []
    async for row in rows:
        if row["subject_id"] != current and events:
            yield events
            events = []
        current = row["subject_id"]
        events.append(decode_raw(row["payload"]))
    if events:
        yield events


async def eligible_as_of(
    pool: asyncpg.Pool[Any],
    purpose: str,
    at: datetime,
    basis: Basis = "occurred",
    chunk: int = 2000,
) -> AsyncIterator[EligibleAsOf]:
    """Everyone eligible for ``purpose`` at ``at``, grouped by subject id.

    The mirror is read with a server-side cursor, ``chunk`` rows at a time, and each subject is
    folded as soon as their last event is read: memory holds one subject, not the ledger.
    """
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        rows = conn.cursor(_eligible_sql(basis), at, purpose, prefetch=chunk)
        async for events in _by_subject(rows):
            found = eligible_at(events, purpose, at)
            if found is not None:
                yield found
