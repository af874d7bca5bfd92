"""The pure fold: ordering rules, and equality of every way to apply it (property tests)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.catalog import AnyEvent
from events.codec import decode, encode
from projections.rows import purposes_from_json, purposes_to_json
from projections.state import SubjectState, evolve, fold, purpose_view
from tests.samples import given_event, withdrawn_event
from tests.strategies import consent_log


def one_by_one(events: list[AnyEvent]) -> dict[str, SubjectState]:
    states: dict[str, SubjectState] = {}
    for event in events:
        states[event.subject_id] = evolve(states.get(event.subject_id), event)
    return states


@given(consent_log(), st.integers(1, 10))
def test_batches_of_any_size_give_the_same_state(events: list[AnyEvent], size: int) -> None:
    states: dict[str, SubjectState] = {}
    for start in range(0, len(events), size):
        states.update(fold(events[start : start + size], states))
    assert states == one_by_one(events)


@given(consent_log())
def test_replaying_the_encoded_log_gives_the_same_state(events: list[AnyEvent]) -> None:
    replayed = [decode(encode(event)) for event in events]
    assert replayed == events
    assert fold(replayed) == one_by_one(events)


@given(consent_log())
def test_state_survives_the_row_mapping(events: list[AnyEvent]) -> None:
    for state in fold(events).values():
        assert purposes_from_json(purposes_to_json(state)) == state.purposes


@given(consent_log())
def test_the_purposes_column_writes_times_and_ids_as_the_other_columns_do(
    events: list[AnyEvent],
) -> None:
    """Rows already stored and their readers expect ISO 8601 with ``+00:00`` and canonical
    ids, whether the column is written by orjson from the objects or by hand."""
    for state in fold(events).values():
        column = purposes_to_json(state)
        for purpose, marks in state.purposes.items():
            view = purpose_view(state, purpose)
            assert view is not None
            said = column[purpose]
            assert said["changed_at"] == view.decided_by.at.isoformat()
            assert said["event_id"] == str(view.decided_by.event_id)
            until = view.valid_until
            assert said["valid_until"] == (until.isoformat() if until else None)
            for name in ("explicit", "registration", "pending", "block", "expiry"):
                mark = getattr(marks, name)
                expected = None
                if mark is not None:
                    expected = {
                        "at": mark.at.isoformat(),
                        "event_id": str(mark.event_id),
                        "notice_version": mark.notice_version,
                        "valid_until": mark.valid_until.isoformat() if mark.valid_until else None,
                        "kind": mark.kind,
                    }
                assert said["marks"][name] == expected


@given(consent_log())
def test_version_counts_events_and_last_event_is_the_greatest_id(events: list[AnyEvent]) -> None:
    states = fold(events)
    for subject_id, state in states.items():
        mine = [e for e in events if e.subject_id == subject_id]
        assert state.version == len(mine)
        assert state.last_event_id == max(e.event_id for e in mine)


@given(st.integers(0, 600), st.integers(0, 600))
def test_purpose_follows_the_event_that_occurred_last(consent_at: int, withdraw_at: int) -> None:
    consent, withdrawal = given_event(minutes=consent_at), withdrawn_event(minutes=withdraw_at)
    logs: list[list[AnyEvent]] = [[consent, withdrawal], [withdrawal, consent]]
    for log in logs:
        state = fold(log)["crm-1"]
        later = max(log, key=lambda e: (e.occurred_at, e.event_id))
        expected = "given" if later is consent else "withdrawn"
        view = purpose_view(state, "newsletter")
        assert view is not None
        assert view.status == expected
        assert view.decided_by.event_id == later.event_id
        assert state.version == 2
        assert state.last_event_id == max(e.event_id for e in log)


def test_a_withdrawal_after_a_consent_wins_and_keeps_the_notice() -> None:
    state = fold([given_event(minutes=0), withdrawn_event(minutes=5)])["crm-1"]
    newsletter = purpose_view(state, "newsletter")
    assert newsletter is not None
    assert newsletter.status == "withdrawn"
    assert newsletter.notice_version == "2022-02-22"
    assert state.email == "crm-1@example.com"


def test_an_event_about_another_subject_is_refused() -> None:
    state = fold([given_event("crm-1")])["crm-1"]
    with pytest.raises(ValueError, match="not about subject crm-1"):
        evolve(state, given_event("crm-2"))
