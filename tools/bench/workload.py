"""The benchmark's events: realistic ``consent.given`` submissions over a set of subjects.

Submissions are plain dicts (cheap to make on the fly by a load generator); ``events`` turns
them into recorded ledger events the way intake does, for the raw limits and the pre-fill.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from events.catalog import SUBMISSION_ADAPTER, AnyEvent
from services.messaging.recording import record_event

BASE = datetime(2024, 1, 1, tzinfo=UTC)
PURPOSES = ("newsletter", "analytics", "analytics_demographics")
METHODS = ("web_form", "checkbox", "double_opt_in")
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def subject_id(n: int) -> str:
    return f"crm-{n:07d}"


def submission(i: int, subjects: int) -> dict[str, Any]:
    """The i-th submission of a run: subjects in turn, purposes and methods mixed.

    Phases use disjoint ranges of i, so every event of a run occurs at its own second.
    """
    n = i % subjects
    subject = subject_id(n)
    occurred = BASE + timedelta(seconds=i)
    return {
        "type": "consent.given",
        "subject_id": subject,
        "occurred_at": occurred.isoformat(),
        "source": {"system": "signup-form", "actor": "web-visitor"},
        "purpose": PURPOSES[(i // subjects) % len(PURPOSES)],
        "data": {
            "notice_version": "2022-02-22",
            "language": "fi",
            "method": METHODS[i % len(METHODS)],
            "legal_basis": "consent",
        },
        "personal": {
            "email": f"{subject}@example.com",
            "ip_address": f"192.0.2.{n % 250 + 1}",
            "user_agent": USER_AGENT,
        },
    }


def submissions(start: int, count: int, subjects: int) -> list[dict[str, Any]]:
    return [submission(i, subjects) for i in range(start, start + count)]


def event(i: int, subjects: int) -> AnyEvent:
    """The ledger event intake would record for submission i (fresh id, recorded now)."""
    return record_event(SUBMISSION_ADAPTER.validate_python(submission(i, subjects)))


def event_chunks(start: int, count: int, subjects: int, chunk: int) -> Iterator[list[AnyEvent]]:
    """Events start .. start + count in lists of at most ``chunk``, made lazily (5 M with
    ``--large``)."""
    end = start + count
    for first in range(start, end, chunk):
        yield [event(i, subjects) for i in range(first, min(first + chunk, end))]
