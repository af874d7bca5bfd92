"""From a producer's submission to a ledger event and its Kafka record.

The ledger, not the producer, mints the event id and the recording time; the record is keyed by
subject id so that all of one person's events share a partition and stay in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from uuid import UUID

from events.catalog import EVENT_TYPES, AnyEvent, AnySubmission
from events.codec import encode
from events.ids import uuid7
from events.requests import RecipientNotifiedIn
from events.sealing import DataKey, seal_event
from events.subject import Erased
from services.intake.policy import Draft
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


def materialize(
    drafts: Sequence[Draft], event_ids: Sequence[UUID], recorded_at: datetime
) -> list[AnyEvent]:
    """Events for prepared drafts, with the given ids; an event the ledger added names its
    cause's id, and an Art. 19 notice, dated when it is recorded, says what it is about."""
    events = []
    for draft, event_id in zip(drafts, event_ids, strict=True):
        submission = draft.submission
        if draft.cause is not None:
            cause = event_ids[draft.cause]
            update: dict[str, object] = {"causation_id": cause}
            if isinstance(submission, RecipientNotifiedIn):
                data = submission.data.model_copy(update={"about_event_id": cause})
                update |= {"data": data, "occurred_at": recorded_at}
            submission = submission.model_copy(update=update)
        events.append(record_event(submission, event_id, recorded_at))
    return events


def seal_all(events: Sequence[AnyEvent], keys: Mapping[str, DataKey]) -> list[AnyEvent]:
    """The events as the log stores them: personal sections sealed under each subject's current
    data key; an erasure names the key generation it destroys."""
    sealed: list[AnyEvent] = []
    for event in events:
        key = keys[event.subject_id]
        if isinstance(event, Erased):
            data = event.data.model_copy(update={"key_generation": key.generation})
            sealed.append(event.model_copy(update={"data": data}))
        else:
            sealed.append(seal_event(event, key))
    return sealed


def erasures(events: Sequence[AnyEvent]) -> list[tuple[str, int, UUID]]:
    """What each erasure among ``events`` destroys: (subject, key generation, erasure id)."""
    return [
        (e.subject_id, e.data.key_generation or 0, e.event_id)
        for e in events
        if isinstance(e, Erased)
    ]
