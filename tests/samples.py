"""Sample submissions and events, written once for every test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from events.consent import ConsentGiven, ConsentWithdrawn
from events.ids import uuid7

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


def given_json(subject_id: str = "crm-1", **overrides: Any) -> dict[str, Any]:
    """A valid ``consent.given`` submission as a producer would send it."""
    body: dict[str, Any] = {
        "type": "consent.given",
        "subject_id": subject_id,
        "occurred_at": "2024-03-04T11:00:00+02:00",
        "source": {"system": "signup-form", "actor": "web-visitor"},
        "purpose": "newsletter",
        "data": {"notice_version": "2022-02-22", "language": "fi", "method": "double_opt_in"},
        "personal": {"email": f"{subject_id}@example.com", "ip_address": "192.0.2.7"},
    }
    body.update(overrides)
    return body


def withdrawn_json(subject_id: str = "crm-1", **overrides: Any) -> dict[str, Any]:
    """A valid ``consent.withdrawn`` submission."""
    body: dict[str, Any] = {
        "type": "consent.withdrawn",
        "subject_id": subject_id,
        "occurred_at": "2024-03-05T11:00:00+02:00",
        "source": {"system": "newsletter-tool", "actor": "list-unsubscribe"},
        "purpose": "newsletter",
        "data": {"channel": "unsubscribe_link"},
    }
    body.update(overrides)
    return body


def _recorded(body: dict[str, Any], minutes: int) -> dict[str, Any]:
    return {
        **body,
        "occurred_at": T0 + timedelta(minutes=minutes),
        "event_id": uuid7(),
        "schema_version": 1,
        "recorded_at": T0 + timedelta(days=1),
    }


def given_event(subject_id: str = "crm-1", minutes: int = 0) -> ConsentGiven:
    return ConsentGiven.model_validate(_recorded(given_json(subject_id), minutes))


def withdrawn_event(subject_id: str = "crm-1", minutes: int = 0) -> ConsentWithdrawn:
    return ConsentWithdrawn.model_validate(_recorded(withdrawn_json(subject_id), minutes))
