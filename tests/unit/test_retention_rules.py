"""The retention job's rules, over rows folded from real events (no database, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from events.catalog import EVENT_ADAPTER, AnyEvent
from events.envelope import Envelope
from events.ids import uuid7
from events.register import Purpose, Register, load_register
from projections.rows import purposes_to_json
from projections.state import fold
from services.retention.job import Erase, Expire, SubjectRow, due_actions, rule_arrays

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
SEED = load_register()
NOTICE = {"notice_version": "2022-02-22", "language": "fi", "method": "web_form"}


def event(kind: str, at: datetime, purpose: str | None = "newsletter", **fields: Any) -> AnyEvent:
    body: dict[str, Any] = {
        "type": kind,
        "subject_id": "crm-1",
        "occurred_at": at,
        "source": {"system": "test", "actor": "tester"},
        "event_id": uuid7(),
        "schema_version": Envelope.SCHEMA_VERSION,
        "recorded_at": at,
        **fields,
    }
    if purpose is not None:
        body["purpose"] = purpose
    return EVENT_ADAPTER.validate_python(body)


def given(at: datetime, purpose: str = "newsletter", **data: Any) -> AnyEvent:
    email = {"email": "maija@example.com"} if purpose == "newsletter" else {}
    return event("consent.given", at, purpose, data={**NOTICE, **data}, personal=email)


def withdrawn(at: datetime, purpose: str = "newsletter") -> AnyEvent:
    return event("consent.withdrawn", at, purpose, data={"channel": "email"})


def objected(at: datetime, purpose: str = "newsletter") -> AnyEvent:
    data = {"scope": "direct_marketing", "channel": "email"}
    return event("objection.received", at, purpose, data=data)


def expired(at: datetime, purpose: str = "newsletter") -> AnyEvent:
    return event("consent.expired", at, purpose, data={"valid_until": at})


def erased(at: datetime) -> AnyEvent:
    return event("subject.erased", at, None, data={"grounds": "request"})


def row(*events: AnyEvent) -> SubjectRow:
    """The row the projector would write after these events."""
    state = fold(events)["crm-1"]
    return SubjectRow(
        state.subject_id,
        state.email is not None,
        state.restricted_since is not None,
        purposes_to_json(state),
    )


def with_purpose(register: Register, purpose_id: str, **changes: Any) -> Register:
    """The register with one purpose changed (``retention`` takes a dict of its fields)."""
    purposes: list[Purpose] = []
    for p in register.purposes:
        if p.id == purpose_id:
            retention = p.retention.model_copy(update=changes.pop("retention", {}))
            p = p.model_copy(update={"retention": retention, **changes})
        purposes.append(p)
    return register.model_copy(update={"purposes": purposes})


def with_second_email_purpose(register: Register) -> Register:
    """The seed plus ``crm_sync``, a consent purpose that also uses the e-mail address."""
    newsletter = register.purpose("newsletter")
    assert newsletter is not None
    extra = newsletter.model_copy(update={"id": "crm_sync", "legal_basis": "consent"})
    return register.model_copy(update={"purposes": [*register.purposes, extra]})


def test_a_withdrawal_erases_at_once_under_the_seed_rule() -> None:
    out = withdrawn(T0 + timedelta(days=1))
    actions = due_actions([row(given(T0), out)], SEED, T0 + timedelta(days=2))
    assert actions == [Erase("crm-1", "newsletter", str(out.event_id), out.occurred_at)]
    assert actions[0].idempotency_key == f"retention:erase:crm-1:{out.event_id}"
    submission = actions[0].submission()
    assert submission.type == "subject.erased"
    assert submission.model_dump(mode="json")["data"] == {
        "grounds": "retention",
        "purpose": "newsletter",
        "request_id": None,
        "key_generation": None,
    }
    assert submission.personal.model_dump(exclude_none=True) == {}


def test_an_objection_erases() -> None:
    objection = objected(T0 + timedelta(hours=1))
    actions = due_actions([row(given(T0), objection)], SEED, T0 + timedelta(days=1))
    assert actions == [Erase("crm-1", "newsletter", str(objection.event_id), objection.occurred_at)]


def test_an_expired_consent_erases_only_when_erase_on_names_expiry() -> None:
    lapse = expired(T0 + timedelta(days=30))
    rows = [row(given(T0, valid_until=lapse.occurred_at), lapse)]
    now = T0 + timedelta(days=31)
    assert due_actions(rows, SEED, now) == []  # the seed's newsletter: withdrawal, objection
    by_expiry = with_purpose(
        SEED,
        "newsletter",
        consent_validity_days=30,
        retention={"erase_on": ["withdrawal", "objection", "expiry"]},
    )
    assert due_actions(rows, by_expiry, now) == [
        Erase("crm-1", "newsletter", str(lapse.event_id), lapse.occurred_at)
    ]


def test_grace_days_are_waited_for() -> None:
    out = withdrawn(T0 + timedelta(days=1))
    rows = [row(given(T0), out)]
    register = with_purpose(SEED, "newsletter", retention={"grace_days": 30})
    due = out.occurred_at + timedelta(days=30)
    assert due_actions(rows, register, due - timedelta(seconds=1)) == []
    assert due_actions(rows, register, due) == [
        Erase("crm-1", "newsletter", str(out.event_id), due)
    ]
    # The moment the rule fired, not the moment the job ran: the same body on every run.
    assert due_actions(rows, register, due + timedelta(days=5)) == due_actions(rows, register, due)


def test_another_purpose_using_the_email_and_still_given_keeps_it() -> None:
    register = with_second_email_purpose(SEED)
    still = row(given(T0), given(T0, "crm_sync"), withdrawn(T0 + timedelta(days=1)))
    assert due_actions([still], register, T0 + timedelta(days=2)) == []


def test_the_latest_end_of_the_purposes_using_the_email_is_when_the_rule_fired() -> None:
    register = with_second_email_purpose(SEED)
    first, last = withdrawn(T0 + timedelta(days=1)), withdrawn(T0 + timedelta(days=3), "crm_sync")
    both = row(given(T0), given(T0, "crm_sync"), first, last)
    (action,) = due_actions([both], register, T0 + timedelta(days=4))
    # Both rules fire when the last purpose using the e-mail ended; that one decides.
    assert action == Erase("crm-1", "crm_sync", str(last.event_id), last.occurred_at)
    later = due_actions([both], register, T0 + timedelta(days=40))
    assert later == [action]


def test_an_analytics_consent_does_not_keep_the_newsletters_email() -> None:
    out = withdrawn(T0 + timedelta(days=1))
    rows = [row(given(T0), given(T0, "analytics"), out)]
    assert due_actions(rows, SEED, T0 + timedelta(days=2)) == [
        Erase("crm-1", "newsletter", str(out.event_id), out.occurred_at)
    ]


def test_an_analytics_withdrawal_does_not_erase_a_subscribers_email() -> None:
    rows = [row(given(T0), given(T0, "analytics"), withdrawn(T0 + timedelta(days=1), "analytics"))]
    assert due_actions(rows, SEED, T0 + timedelta(days=2)) == []


def test_an_erased_subject_is_left_alone() -> None:
    rows = [row(given(T0), withdrawn(T0 + timedelta(days=1)), erased(T0 + timedelta(days=1)))]
    assert rows[0].holds_data is False
    assert due_actions(rows, SEED, T0 + timedelta(days=2)) == []


def test_a_restricted_subject_is_not_erased() -> None:
    restriction = event(
        "restriction.applied", T0 + timedelta(hours=1), None, data={"grounds": "legal_claims"}
    )
    rows = [row(given(T0), restriction, withdrawn(T0 + timedelta(days=1)))]
    assert due_actions(rows, SEED, T0 + timedelta(days=2)) == []


def test_a_consent_past_its_valid_until_expires() -> None:
    valid_until = T0 + timedelta(days=395)
    consent = given(T0, "analytics", valid_until=valid_until)
    rows = [row(consent)]
    assert due_actions(rows, SEED, valid_until - timedelta(seconds=1)) == []
    (action,) = due_actions(rows, SEED, valid_until)
    assert action == Expire("crm-1", "analytics", str(consent.event_id), valid_until, valid_until)
    assert action.idempotency_key == f"retention:expire:crm-1:analytics:{consent.event_id}"
    submission = action.submission()
    assert submission.type == "consent.expired"
    assert submission.source.actor == "retention-job"


def test_an_expiry_is_recorded_once_the_projection_shows_it() -> None:
    valid_until = T0 + timedelta(days=10)
    rows = [row(given(T0, "analytics", valid_until=valid_until), expired(valid_until, "analytics"))]
    assert rows[0].purposes["analytics"]["status"] == "expired"
    assert due_actions(rows, SEED, T0 + timedelta(days=11)) == []


def test_a_registration_under_legitimate_interest_does_not_lapse() -> None:
    crm = given(T0, legal_basis="legitimate_interest", valid_until=T0 + timedelta(days=1))
    assert due_actions([row(crm)], SEED, T0 + timedelta(days=2)) == []


def test_a_lapsed_consent_ends_no_earlier_than_it_was_given() -> None:
    consent = given(T0, "analytics", valid_until=T0 - timedelta(days=1))
    (action,) = due_actions([row(consent)], SEED, T0 + timedelta(days=1))
    assert isinstance(action, Expire)
    assert action.valid_until == T0 - timedelta(days=1)
    assert action.occurred_at == T0  # else the fold would let the consent outlive it


def test_a_lapsed_sharing_purpose_no_longer_keeps_the_email() -> None:
    register = with_second_email_purpose(SEED)
    lapse_at = T0 + timedelta(days=5)
    out = withdrawn(T0 + timedelta(days=1))
    rows = [row(given(T0), given(T0, "crm_sync", valid_until=lapse_at), out)]
    actions = due_actions(rows, register, T0 + timedelta(days=6))
    assert [a.kind for a in actions] == ["expire", "erase"]
    assert actions[1] == Erase("crm-1", "newsletter", str(out.event_id), lapse_at)


def test_the_query_gets_only_rules_about_held_data() -> None:
    now = T0 + timedelta(days=1)
    purposes, statuses, cutoffs = rule_arrays(SEED, now)
    assert list(zip(purposes, statuses, cutoffs, strict=True)) == [
        ("newsletter", "withdrawn", now),
        ("newsletter", "objected", now),
    ]
