"""Hypothesis strategies: random, valid ledgers of every event type, in log order."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from events.catalog import EVENT_TYPES, AnyEvent
from events.envelope import Envelope
from events.ids import uuid7

BASE = datetime(2024, 1, 1, tzinfo=UTC)
SUBJECTS = ["crm-1", "crm-2", "crm-3"]
PURPOSES = ["newsletter", "analytics"]
REQUEST_IDS = [UUID(int=1), UUID(int=2)]
EMAILS = ["a@example.com", "b@example.org"]
REASONS = ["archives", "manifestly unfounded"]
NOTICE = {"notice_version": "2022-02-22", "language": "fi", "method": "web_form"}

#: For each event type: its ``data`` and ``personal`` sections, drawn at random.
SECTIONS: dict[str, Any] = {
    "consent.requested": st.fixed_dictionaries({"data": st.just(NOTICE)}),
    "consent.confirmed": st.just(
        {"data": {"notice_version": "2022-02-22", "language": "fi", "confirmation": "email_link"}}
    ),
    "consent.given": st.fixed_dictionaries(
        {
            "data": st.builds(
                lambda basis, until: {**NOTICE, "legal_basis": basis, "valid_until": until},
                st.sampled_from(["consent", "legitimate_interest"]),
                st.sampled_from([None, (BASE + timedelta(days=400)).isoformat()]),
            )
        }
    ),
    "consent.withdrawn": st.just({"data": {"channel": "email"}}),
    "consent.expired": st.just({"data": {"valid_until": BASE.isoformat()}}),
    "objection.received": st.fixed_dictionaries(
        {
            "data": st.builds(
                lambda a: {"scope": "direct_marketing", "channel": "phone", "automated": a},
                st.booleans(),
            )
        }
    ),
    "restriction.applied": st.just({"data": {"grounds": "accuracy_contested"}}),
    "restriction.lifted": st.just({"data": {"reason": "accuracy_verified"}}),
    "subject.rectified": st.fixed_dictionaries(
        {
            "data": st.just({"fields": ["email"]}),
            "personal": st.sampled_from(EMAILS).map(lambda e: {"email": e}),
        }
    ),
    "subject.erased": st.just({"data": {"grounds": "request"}}),
    "subject.exported": st.just({"data": {"kind": "access", "formats": ["json"]}}),
    "subject.accessed": st.just(
        {"data": {"reader": "tok-1", "role": "auditor", "scope": "history", "reason": "audit"}}
    ),
    "request.received": st.fixed_dictionaries(
        {
            "data": st.sampled_from(REQUEST_IDS).map(
                lambda r: {
                    "request_id": str(r),
                    "right": "access",
                    "channel": "letter",
                    "written": True,
                    "signed": True,
                    "received_by": "dpo",
                    "due_on": date(2024, 2, 1).isoformat(),
                }
            )
        }
    ),
    "request.identity_verified": st.sampled_from(REQUEST_IDS).map(
        lambda r: {"data": {"request_id": str(r), "method": "signature"}}
    ),
    "request.extended": st.builds(
        lambda r, reasons, due: {
            "data": {"request_id": str(r), "reasons": reasons, "extended_due_on": due}
        },
        st.sampled_from(REQUEST_IDS),
        st.sampled_from(REASONS),
        st.sampled_from(["2024-04-01", "2024-04-02"]),
    ),
    "request.fulfilled": st.sampled_from(REQUEST_IDS).map(
        lambda r: {"data": {"request_id": str(r), "outcome": "granted"}}
    ),
    "request.rejected": st.builds(
        lambda r, reasons: {"data": {"request_id": str(r), "reasons": reasons}},
        st.sampled_from(REQUEST_IDS),
        st.sampled_from(REASONS),
    ),
    "recipient.notified": st.just(
        {
            "data": {
                "recipient_id": "newsletter_tool",
                "action": "erasure",
                "about_event_id": str(UUID(int=9)),
            }
        }
    ),
}
PURPOSE_LEVEL = {
    "consent.requested",
    "consent.confirmed",
    "consent.given",
    "consent.withdrawn",
    "consent.expired",
    "objection.received",
}
WITH_EMAIL = {"consent.requested", "consent.confirmed", "consent.given"}


@st.composite
def any_event(draw: st.DrawFn, step: int, types: list[str] | None = None) -> AnyEvent:
    """One random event of any (or the given) types; ``step`` orders recording times."""
    tag = draw(st.sampled_from(types or list(EVENT_TYPES)))
    raw: dict[str, Any] = {
        "type": tag,
        "event_id": str(uuid7()),
        "schema_version": Envelope.SCHEMA_VERSION,
        "subject_id": draw(st.sampled_from(SUBJECTS)),
        # occurrence is independent of recording (ids and recording times follow ``step``),
        # and coarse, so that ties of occurrence are decided by the event id
        "occurred_at": (BASE + timedelta(minutes=5 * draw(st.integers(0, 120)))).isoformat(),
        "recorded_at": (BASE + timedelta(days=1, seconds=step)).isoformat(),
        "source": {"system": "test", "actor": "hypothesis"},
        **draw(SECTIONS[tag]),
    }
    if tag in PURPOSE_LEVEL:
        raw["purpose"] = draw(st.sampled_from(PURPOSES))
    if tag in WITH_EMAIL:
        raw["personal"] = {"email": draw(st.sampled_from([*EMAILS, None]))}
    model = EVENT_TYPES[tag]
    event = model.model_validate(raw)
    assert isinstance(event, AnyEvent)
    return event


@st.composite
def ledger(draw: st.DrawFn, max_size: int = 40, types: list[str] | None = None) -> list[AnyEvent]:
    """A random ledger: events of many types in log order."""
    size = draw(st.integers(0, max_size))
    return [draw(any_event(step, types)) for step in range(size)]


def consent_log(max_size: int = 40) -> st.SearchStrategy[list[AnyEvent]]:
    """A random ledger of consent events only."""
    return ledger(max_size, ["consent.given", "consent.withdrawn"])
