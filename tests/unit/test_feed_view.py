"""What the eligibility feed says about a person, derived from the pure fold's state."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given

from events.catalog import EVENT_TYPES, AnyEvent
from events.ids import uuid7
from projections.feed import FeedEntry, export_feed_schemas, feed_entry, feed_view
from projections.state import SubjectState, eligibility, evolve, fold
from tests.samples import T0, valid_json
from tests.strategies import ledger

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "feed-schemas"
#: Event types that change nothing a mail tool can see.
INVISIBLE = [
    "subject.exported",
    "recipient.notified",
    "request.received",
    "request.identity_verified",
    "request.extended",
    "request.fulfilled",
    "request.rejected",
]


def recorded(kind: str, subject: str = "crm-1", minutes: int = 0, **fields: Any) -> AnyEvent:
    body = {
        **valid_json(kind, subject, **fields),
        "occurred_at": T0 + timedelta(minutes=minutes),
        "event_id": uuid7(),
        "schema_version": 1,
        "recorded_at": T0 + timedelta(days=1),
    }
    event = EVENT_TYPES[kind].model_validate(body)
    assert isinstance(event, AnyEvent)
    return event


def given_with(email: str, minutes: int = 0, **data: Any) -> AnyEvent:
    notice = {"notice_version": "2022-02-22", "language": "fi", "method": "web_form"}
    return recorded(
        "consent.given", minutes=minutes, personal={"email": email}, data={**notice, **data}
    )


def entry_of(state: SubjectState) -> FeedEntry | None:
    text = feed_entry(state, feed_view(state))
    return None if text is None else FeedEntry.model_validate_json(text)


def state_after(*events: AnyEvent) -> SubjectState:
    return fold(events)["crm-1"]


def test_an_eligible_person_comes_with_the_address_and_why() -> None:
    entry = entry_of(state_after(given_with("a@example.com")))
    assert entry is not None
    assert entry.email == "a@example.com"
    assert entry.purposes["newsletter"].eligible
    assert (
        entry.purposes["newsletter"].reason == "consent given on 2024-03-04 under notice 2022-02-22"
    )
    assert entry.version == 1


def test_withdrawal_objection_and_restriction_keep_the_reason_and_drop_the_address() -> None:
    consent = given_with("a@example.com")
    for block in ("consent.withdrawn", "objection.received", "restriction.applied"):
        entry = entry_of(state_after(consent, recorded(block, minutes=5)))
        assert entry is not None, block
        assert entry.email is None, block
        assert not entry.purposes["newsletter"].eligible, block


def test_erasure_is_a_tombstone_until_a_new_explicit_consent() -> None:
    erased = state_after(given_with("a@example.com"), recorded("subject.erased", minutes=5))
    assert entry_of(erased) is None
    again = evolve(erased, given_with("new@example.com", minutes=10))
    entry = entry_of(again)
    assert entry is not None
    assert entry.email == "new@example.com"


def test_a_repeated_sign_up_on_the_same_day_changes_nothing_another_day_does() -> None:
    first = state_after(given_with("a@example.com"))
    assert feed_view(evolve(first, given_with("a@example.com", minutes=30))) == feed_view(first)
    next_day = evolve(first, given_with("a@example.com", minutes=24 * 60))
    assert feed_view(next_day) != feed_view(first)


def test_a_consent_with_a_validity_says_until_when() -> None:
    entry = entry_of(state_after(given_with("a@example.com", valid_until=T0 + timedelta(days=9))))
    assert entry is not None
    assert entry.purposes["newsletter"].valid_until == T0 + timedelta(days=9)


@given(ledger(max_size=30))
def test_the_feed_agrees_with_the_fold_and_ignores_what_mail_tools_cannot_see(
    events: list[AnyEvent],
) -> None:
    for subject, state in fold(events).items():
        text = feed_entry(state, feed_view(state))
        if text is None:
            assert state.erased is not None
            assert not any(eligibility(state, p).eligible for p in state.purposes)
            continue
        entry = FeedEntry.model_validate_json(text)  # the wire model (no extra fields) takes it
        assert orjson.loads(text) == entry.model_dump(mode="json")  # and would write the same
        for purpose, said in entry.purposes.items():
            assert said.eligible == eligibility(state, purpose).eligible
        anywhere = any(p.eligible for p in entry.purposes.values())
        assert entry.email == (state.email if anywhere else None)
        for kind in INVISIBLE:
            assert feed_view(evolve(state, recorded(kind, subject, minutes=700))) == feed_view(
                state
            ), kind


def test_the_committed_feed_schemas_are_the_generated_ones(tmp_path: Path) -> None:
    """A change of the feed's wire format must be exported and reviewed, never silent
    (``consent-ledger feed --export-schemas``)."""
    for generated in export_feed_schemas(tmp_path):
        committed = SCHEMA_DIR / generated.name
        assert committed.exists(), f"{committed.name} is missing"
        assert committed.read_bytes() == generated.read_bytes(), f"{committed.name} is stale"
