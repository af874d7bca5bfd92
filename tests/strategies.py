"""Hypothesis strategies for consent events: random, valid, and in log order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from events.catalog import AnyEvent, ConsentGiven, ConsentWithdrawn
from events.envelope import PersonalData, Source
from events.ids import uuid7

BASE = datetime(2024, 1, 1, tzinfo=UTC)
SUBJECTS = ["crm-1", "crm-2", "crm-3"]
PURPOSES = ["newsletter", "analytics"]


@st.composite
def consent_event(draw: st.DrawFn, step: int) -> AnyEvent:
    """One random consent event; ``step`` orders recording times like a log would."""
    common = {
        "event_id": uuid7(),
        "schema_version": 1,
        "subject_id": draw(st.sampled_from(SUBJECTS)),
        "purpose": draw(st.sampled_from(PURPOSES)),
        "occurred_at": BASE + timedelta(minutes=draw(st.integers(0, 600))),
        "recorded_at": BASE + timedelta(days=1, seconds=step),
        "source": Source(system="test", actor="hypothesis"),
    }
    if draw(st.booleans()):
        email = draw(st.sampled_from(["a@example.com", "b@example.org", None]))
        return ConsentGiven(
            type="consent.given",
            personal=PersonalData(email=email),
            data={
                "notice_version": draw(st.sampled_from(["2022-02-22", "2024-01-01"])),
                "language": "fi",
                "method": "web_form",
                "legal_basis": draw(st.sampled_from(["consent", "legitimate_interest"])),
            },
            **common,
        )
    return ConsentWithdrawn(type="consent.withdrawn", data={"channel": "email"}, **common)


@st.composite
def consent_log(draw: st.DrawFn, max_size: int = 40) -> list[AnyEvent]:
    """A random ledger: a list of consent events in log order."""
    size = draw(st.integers(0, max_size))
    return [draw(consent_event(step)) for step in range(size)]
