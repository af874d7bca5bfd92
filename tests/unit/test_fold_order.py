"""The fold's answers are those of the set of events, whatever order they were folded in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import permutations
from random import Random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.catalog import EVENT_ADAPTER, AnyEvent
from events.envelope import Envelope
from events.ids import uuid7
from projections.rows import (
    purposes_doc,
    request_columns,
    request_from_json,
    request_to_json,
    state_to_json,
    subscriber_columns,
)
from projections.state import SubjectState, eligibility, fold
from tests.samples import REQUEST_ID, valid_json
from tests.strategies import PURPOSES, ledger


def nov(day: int) -> datetime:
    """Noon on a day of November 2024 (day 31 is 1 December)."""
    return datetime(2024, 11, 1, 12, tzinfo=UTC) + timedelta(days=day - 1)


def recorded(kind: str, occurred: int, on: int | None = None, **overrides: Any) -> AnyEvent:
    """An event that occurred on a day of November 2024, recorded on day ``on`` (the day it
    occurred by default); its id is minted now, so make events in the order they are recorded."""
    body = valid_json(kind, occurred_at=nov(occurred).isoformat(), **overrides)
    return EVENT_ADAPTER.validate_python(
        {
            **body,
            "event_id": uuid7(),
            "schema_version": Envelope.SCHEMA_VERSION,
            "recorded_at": nov(on or occurred),
        }
    )


def consent(occurred: int, email: str, on: int | None = None) -> AnyEvent:
    """An explicit consent to the newsletter, with the person's address."""
    return recorded("consent.given", occurred, on, personal={"email": email})


def every_order(events: list[AnyEvent]) -> list[SubjectState]:
    """The subject's state after folding the events in each of their orders."""
    return [fold(order)["crm-1"] for order in permutations(events)]


def canonical(state: SubjectState) -> list[Any]:
    """What the projector writes to ``subscribers`` and ``rights_requests`` for the state."""
    row = subscriber_columns([state], {state.subject_id: purposes_doc(state)})
    return [column[0] for column in row] + request_columns([state])


def test_a_lift_dated_before_the_restriction_does_not_lift_it() -> None:
    events = [
        consent(1, "a@example.fi"),
        recorded("restriction.applied", 20),
        recorded("restriction.lifted", 10, on=21),
    ]
    for state in every_order(events):
        assert state.restricted_since == nov(20)
        assert not eligibility(state, "newsletter").eligible


def test_a_restriction_typed_in_late_before_its_lift_is_lifted() -> None:
    events = [
        consent(1, "a@example.fi"),
        recorded("restriction.lifted", 20),
        recorded("restriction.applied", 10, on=21),
    ]
    for state in every_order(events):
        assert state.restricted_since is None
        assert eligibility(state, "newsletter").eligible


def test_a_paper_consent_typed_in_late_does_not_bring_back_an_old_address() -> None:
    events = [
        consent(1, "old@example.fi"),
        recorded("subject.rectified", 20, personal={"email": "new@example.fi"}),
        consent(5, "old@example.fi", on=21),
    ]
    assert {state.email for state in every_order(events)} == {"new@example.fi"}


def test_the_rectification_that_occurred_last_wins() -> None:
    events = [
        consent(1, "a@example.fi"),
        recorded("subject.rectified", 20, personal={"email": "late@example.fi"}),
        recorded("subject.rectified", 10, on=21, personal={"email": "early@example.fi"}),
    ]
    assert {state.email for state in every_order(events)} == {"late@example.fi"}


def test_an_erasure_typed_in_late_erases_what_was_recorded_before_it() -> None:
    """The erasure shreds the keys of everything recorded before it: a consent recorded then,
    even if it occurred after the erasure, neither revives the purpose nor keeps an address."""
    events = [
        consent(1, "a@example.fi"),
        consent(20, "new@example.fi"),
        recorded("subject.erased", 10, on=31),
    ]
    for state in every_order(events):
        assert state.email is None
        verdict = eligibility(state, "newsletter")
        assert not verdict.eligible
        assert verdict.event_id == events[2].event_id


def test_a_consent_after_an_erasure_starts_a_new_life() -> None:
    events = [
        consent(1, "a@example.fi"),
        recorded("subject.erased", 10),
        consent(20, "new@example.fi"),
    ]
    for state in every_order(events):
        assert state.email == "new@example.fi"
        assert eligibility(state, "newsletter").eligible


def test_an_address_typed_in_after_a_late_erasure_outlives_a_later_one_recorded_before_it() -> None:
    """The address that occurred last is erased (recorded before the erasure); the one that
    occurred after the erasure and was recorded after it is the address."""
    events = [
        consent(20, "new@example.fi"),
        recorded("subject.erased", 1, on=25),
        consent(5, "old@example.fi", on=30),
    ]
    assert {state.email for state in every_order(events)} == {"old@example.fi"}


def test_the_earliest_answer_and_extension_of_a_request_count() -> None:
    events = [
        recorded("request.received", 1),
        recorded("request.extended", 10, data={"request_id": REQUEST_ID, "reasons": "later"}),
        recorded("request.fulfilled", 20),
        recorded("request.extended", 8, on=21, data={"request_id": REQUEST_ID, "reasons": "first"}),
        recorded("request.rejected", 15, on=22),
    ]
    states = [fold(order)["crm-1"] for order in (events, events[::-1], events[2:] + events[:2])]
    for state in states:
        (request,) = state.requests.values()
        assert request.status == "rejected"
        assert request.answered_at == nov(15)
        assert request.reasons == "unfounded"
        assert request.last_event_id == events[2].event_id
        assert canonical(state) == canonical(states[0])


def test_lifecycle_events_before_the_receipt_are_kept_but_not_shown() -> None:
    received = recorded("request.received", 1)
    lifecycle = [recorded("request.identity_verified", 2), recorded("request.fulfilled", 3)]
    early = fold(lifecycle)["crm-1"]
    assert state_to_json(early, nov(4))["requests"] == {}
    (written,) = zip(*request_columns([early]), strict=True)  # the rights_requests row
    assert (written[7], written[10]) == (None, "fulfilled")  # not received, fulfilled
    complete = fold([received], fold(lifecycle))["crm-1"]
    shown = state_to_json(complete, nov(4))["requests"][REQUEST_ID]
    assert shown["status"] == "fulfilled"
    assert shown["identity_verified_at"] == nov(2).isoformat()
    assert shown["received_at"] == nov(1).isoformat()
    assert canonical(complete) == canonical(fold([received, *lifecycle])["crm-1"])


@pytest.mark.parametrize(
    "lifecycle",
    [
        [],
        ["request.identity_verified"],
        ["request.extended", "request.identity_verified", "request.fulfilled"],
        ["request.extended", "request.rejected"],
    ],
)
def test_a_request_row_written_before_the_marks_reads_back(lifecycle: list[str]) -> None:
    events = [recorded(kind, day) for day, kind in enumerate(["request.received", *lifecycle], 1)]
    (request,) = fold(events)["crm-1"].requests.values()
    old = request_to_json(request)
    del old["marks"]
    again = request_to_json(request_from_json(old))
    assert {k: v for k, v in again.items() if k != "marks"} == old


#: The subject-wide events, drawn alone too: in a ledger of every type, an erasure recorded
#: between two addresses whose occurrence order is the other way round is rare.
SUBJECT_WIDE = [
    "consent.given",
    "subject.rectified",
    "subject.erased",
    "restriction.applied",
    "restriction.lifted",
]


@settings(max_examples=300)
@given(
    st.one_of(ledger(max_size=30), ledger(max_size=12, types=SUBJECT_WIDE)),
    st.randoms(use_true_random=False),
)
def test_any_order_of_the_events_gives_the_same_rows_and_eligibility(
    events: list[AnyEvent], random: Random
) -> None:
    """What is written to PostgreSQL, and every verdict, is a function of the set of events."""
    shuffled = events[:]
    random.shuffle(shuffled)
    first, second = fold(events), fold(shuffled)
    assert first.keys() == second.keys()
    for subject_id, state in first.items():
        assert canonical(second[subject_id]) == canonical(state)
        for purpose in PURPOSES:
            assert eligibility(second[subject_id], purpose) == eligibility(state, purpose)
