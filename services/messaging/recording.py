"""From a producer's submission to a ledger event and its Kafka record.

The ledger, not the producer, mints the event id and the recording time; the record is keyed by
subject id so that all of one person's events share a partition and stay in order. Shared by
every service that appends to the ledger (intake, the read API's access records).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from events.catalog import EVENT_TYPES, AnyEvent, AnySubmission
from events.codec import encode
from events.ids import uuid7
from services.messaging.records import OutRecord


def record_event(
    submission: AnySubmission, event_id: UUID | None = None, recorded_at: datetime | None = None
) -> AnyEvent:
    """The stored event for a submission; ids and times are minted unless given (a retry)."""
    model = EVENT_TYPES[submission.type]
    event = model.model_validate(
        {
            **dict(submission),
            "event_id": event_id or uuid7(),
            "schema_version": model.SCHEMA_VERSION,
            "recorded_at": recorded_at or datetime.now(UTC),
        }
    )
    assert isinstance(event, AnyEvent)
    return event


def to_records(events: Sequence[AnyEvent], topic: str) -> list[OutRecord]:
    """Kafka records for the ledger topic, keyed by subject id."""
    return [
        OutRecord(
            topic=topic,
            key=event.subject_id.encode(),
            value=encode(event),
            headers=[
                ("event-type", event.type.encode()),
                ("event-id", str(event.event_id).encode()),
            ],
        )
        for event in events
    ]
