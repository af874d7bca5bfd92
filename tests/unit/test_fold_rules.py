"""The GDPR rules of the fold, as properties over random ledgers of every event type."""

from __future__ import annotations

from datetime import datetime
from random import Random
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from events.catalog import AnyEvent
from events.consent import ConsentConfirmed, ConsentGiven
from events.subject import Erased
from projections.state import SubjectState, eligibility, evolve, fold, purpose_view
from tests.strategies import PURPOSE_LEVEL, PURPOSES, ledger


def states_along(events: list[AnyEvent]) -> list[tuple[AnyEvent, SubjectState]]:
    """Each event with the state of its subject right after it."""
    states: dict[str, SubjectState] = {}
    out = []
    for event in events:
        states[event.subject_id] = evolve(states.get(event.subject_id), event)
        out.append((event, states[event.subject_id]))
    return out


def key(event: AnyEvent) -> tuple[datetime, UUID]:
    return (event.occurred_at, event.event_id)


def is_explicit_consent(event: AnyEvent, purpose: str) -> bool:
    if getattr(event, "purpose", None) != purpose:
        return False
    return isinstance(event, ConsentConfirmed) or (
        isinstance(event, ConsentGiven) and event.data.legal_basis == "consent"
    )


def blocks(event: AnyEvent, purpose: str) -> bool:
    if isinstance(event, Erased):
        return True
    return event.type in ("objection.received", "consent.withdrawn") and (
        getattr(event, "purpose", None) == purpose
    )


@settings(max_examples=400)
@given(ledger(max_size=30))
def test_objection_or_erasure_is_never_followed_by_eligibility_without_explicit_consent(
    events: list[AnyEvent],
) -> None:
    """Whatever order the events arrived in: eligible after an objection, a withdrawal or an
    erasure only through an explicit consent that occurred after it."""
    for index, (event, state) in enumerate(states_along(events)):
        seen = [e for e in events[: index + 1] if e.subject_id == event.subject_id]
        for purpose in PURPOSES:
            verdict = eligibility(state, purpose)
            blockers = [e for e in seen if blocks(e, purpose)]
            if not verdict.eligible or not blockers:
                continue
            latest_block = max(map(key, blockers))
            assert any(is_explicit_consent(e, purpose) and key(e) > latest_block for e in seen), (
                purpose,
                verdict,
            )


@settings(max_examples=200)
@given(ledger(max_size=20, types=sorted(PURPOSE_LEVEL)), st.randoms())
def test_the_status_does_not_depend_on_arrival_order(
    events: list[AnyEvent], random: Random
) -> None:
    shuffled = events[:]
    random.shuffle(shuffled)
    first, second = fold(events), fold(shuffled)
    for subject_id in first:
        for purpose in PURPOSES:
            assert purpose_view(first[subject_id], purpose) == purpose_view(
                second[subject_id], purpose
            )


@settings(max_examples=300)
@given(ledger(max_size=30))
def test_a_restricted_person_is_never_eligible(events: list[AnyEvent]) -> None:
    for _, state in states_along(events):
        if state.restricted_since is not None:
            assert not any(eligibility(state, p).eligible for p in PURPOSES)


@settings(max_examples=300)
@given(ledger(max_size=30))
def test_an_erased_person_has_no_personal_data_in_the_state(events: list[AnyEvent]) -> None:
    for event, state in states_along(events):
        if isinstance(event, Erased):
            assert state.email is None
            assert state.erased is not None
            assert state.erased.at >= event.occurred_at


@given(ledger(max_size=30))
def test_every_event_counts_once_in_the_version(events: list[AnyEvent]) -> None:
    for subject_id, state in fold(events).items():
        assert state.version == sum(e.subject_id == subject_id for e in events)
