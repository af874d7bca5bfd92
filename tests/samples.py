"""Sample submissions and events, written once for every test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from events.catalog import EVENT_ADAPTER, AnyEvent
from events.consent import ConsentGiven, ConsentWithdrawn
from events.envelope import Envelope
from events.ids import uuid7
from projections.feed import FeedEntry, FeedPurpose

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
        "schema_version": Envelope.SCHEMA_VERSION,
        "recorded_at": T0 + timedelta(days=1),
    }


def given_event(subject_id: str = "crm-1", minutes: int = 0) -> ConsentGiven:
    return ConsentGiven.model_validate(_recorded(given_json(subject_id), minutes))


def withdrawn_event(subject_id: str = "crm-1", minutes: int = 0) -> ConsentWithdrawn:
    return ConsentWithdrawn.model_validate(_recorded(withdrawn_json(subject_id), minutes))


REQUEST_ID = "01a2145e-bae9-706e-a524-6315bf1696f6"
#: A valid ``data`` section (and purpose, where the type has one) for every event type.
VALID: dict[str, dict[str, Any]] = {
    "consent.requested": {
        "purpose": "newsletter",
        "data": {"notice_version": "2022-02-22", "language": "fi", "method": "double_opt_in"},
    },
    "consent.confirmed": {
        "purpose": "newsletter",
        "data": {"notice_version": "2022-02-22", "language": "fi", "confirmation": "email_link"},
    },
    "consent.given": {
        "purpose": "newsletter",
        "data": {"notice_version": "2022-02-22", "language": "fi", "method": "web_form"},
    },
    "consent.withdrawn": {"purpose": "newsletter", "data": {"channel": "email"}},
    "consent.expired": {"purpose": "analytics", "data": {"valid_until": "2024-01-01T00:00:00Z"}},
    "objection.received": {
        "purpose": "newsletter",
        "data": {"scope": "direct_marketing", "channel": "phone"},
    },
    "restriction.applied": {"data": {"grounds": "accuracy_contested"}},
    "restriction.lifted": {"data": {"reason": "accuracy_verified"}},
    "subject.rectified": {"data": {"fields": ["email"]}, "personal": {"email": "x@example.fi"}},
    "subject.erased": {"data": {"grounds": "request"}},
    "subject.exported": {"data": {"kind": "access", "formats": ["json"]}},
    "subject.accessed": {
        "data": {"reader": "tok-1 (dpo)", "role": "dpo", "scope": "subject", "reason": "audit"}
    },
    "request.received": {
        "data": {
            "request_id": REQUEST_ID,
            "right": "access",
            "channel": "letter",
            "written": True,
            "signed": True,
            "received_by": "dpo",
        }
    },
    "request.identity_verified": {"data": {"request_id": REQUEST_ID, "method": "signature"}},
    "request.extended": {"data": {"request_id": REQUEST_ID, "reasons": "archives"}},
    "request.fulfilled": {"data": {"request_id": REQUEST_ID, "outcome": "granted"}},
    "request.rejected": {"data": {"request_id": REQUEST_ID, "reasons": "unfounded"}},
    "recipient.notified": {
        "data": {
            "recipient_id": "newsletter_tool",
            "action": "erasure",
            "about_event_id": REQUEST_ID,
        }
    },
}


def valid_json(kind: str, subject_id: str = "crm-1", **overrides: Any) -> dict[str, Any]:
    """A valid submission of any event type (shape only: lifecycle checks may still refuse)."""
    body = {
        "type": kind,
        "subject_id": subject_id,
        "occurred_at": "2024-03-04T11:00:00+02:00",
        "source": {"system": "test", "actor": "tester"},
        **VALID[kind],
    }
    body.update(overrides)
    return body


def recorded_event(kind: str, subject_id: str = "crm-1", minutes: int = 0) -> AnyEvent:
    """Any valid event as the ledger records it, to write to the ledger topic directly."""
    return EVENT_ADAPTER.validate_python(_recorded(valid_json(kind, subject_id), minutes))


def feed_entry(subject: str, version: int = 1) -> FeedEntry:
    """An entry eligible for the newsletter, its address naming the version."""
    return FeedEntry(
        subject_id=subject,
        email=f"{subject}.v{version}@example.fi",
        purposes={"newsletter": FeedPurpose(eligible=True, reason="consent given")},
        version=version,
        last_event_id=uuid7(),
        updated_at=T0,
    )
