"""Intake's side of recording: events for its prepared drafts, sealed as the log stores them.

The submission-to-event and event-to-record steps every appender shares are in
:mod:`services.messaging.recording`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from uuid import UUID

from events.catalog import AnyEvent
from events.requests import RecipientNotifiedIn
from events.sealing import DataKey, seal_event
from events.subject import Erased
from services.intake.policy import Draft
from services.messaging.recording import record_event


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
