"""The intake service layer: validated submissions in, acknowledged ledger positions out."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from events.catalog import AnyEvent, AnySubmission
from services.intake.admission import Admission, Reserve, fresh_ids
from services.intake.policy import Decision, PolicyError
from services.intake.ports import AdmissionBatch, DataKeys, IdempotencyKeys, LedgerAppender
from services.intake.recording import erasures, seal_all
from services.messaging.recording import to_records
from services.messaging.records import Receipt
from services.metrics import EVENTS_ACCEPTED

log = logging.getLogger(__name__)


class IdempotencyConflictError(Exception):
    """The idempotency key cannot be used for this request now."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Accepted:
    """The answer to an accepted submission."""

    body: dict[str, Any]
    replayed: bool


def receipt_json(event: AnyEvent, receipt: Receipt) -> dict[str, Any]:
    return {
        "event_id": str(event.event_id),
        "type": event.type,
        "subject_id": event.subject_id,
        "recorded_at": event.recorded_at.isoformat(),
        "topic": receipt.topic,
        "partition": receipt.partition,
        "offset": receipt.offset,
    }


def request_hash(canonical_body: bytes) -> bytes:
    """Fingerprint of a request, to spot a key reused for a different request."""
    return hashlib.sha256(canonical_body).digest()


def _fingerprint(submissions: Sequence[AnySubmission]) -> bytes:
    """What an idempotency key is bound to: the request's canonical body."""
    return request_hash(orjson.dumps([s.model_dump(mode="json") for s in submissions]))


class _Replayed(Exception):  # noqa: N818 - control flow, not an error
    """The idempotency key was answered before: the stored answer, to give again."""

    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__("replayed")
        self.response = response


class IntakeService:
    """Appends submissions to the ledger, once per idempotency key."""

    def __init__(
        self,
        appender: LedgerAppender,
        keys: IdempotencyKeys,
        admission: Admission,
        ledger_topic: str,
        data_keys: DataKeys,
    ) -> None:
        self._appender = appender
        self._keys = keys
        self._admission = admission
        self._data_keys = data_keys
        self._topic = ledger_topic

    async def submit(
        self, submissions: Sequence[AnySubmission], idempotency_key: str | None, channel: str
    ) -> Accepted:
        """Append all submissions (and the events they bring) or none; answer only after the
        broker acknowledged them."""
        digest = _fingerprint(submissions) if idempotency_key is not None else b""
        reserve = fresh_ids if idempotency_key is None else self._claim(idempotency_key, digest)
        try:
            admitted = await self._admission.admit(submissions, whole=True, reserve=reserve)
        except _Replayed as replayed:
            return Accepted(replayed.response, replayed=True)
        except PolicyError:
            # A retry of a request that succeeded may no longer pass (the request it answered
            # is answered now): give the stored answer rather than an error.
            done = await self._keys.answered(idempotency_key, digest) if idempotency_key else None
            if done is None:
                raise
            return Accepted(done, replayed=True)
        events = admitted.events
        try:
            sealed = seal_all(events, await self._data_keys.current(e.subject_id for e in events))
            receipts = await self._appender.append(to_records(sealed, self._topic))
        except BaseException:
            await self._admission.withdraw(admitted)
            if idempotency_key is not None:
                await self._keys.release(idempotency_key)
            raise
        # At once rather than when projected: later events get a new key at once. (The projector
        # destroys them too, so a crash right here loses nothing.)
        await self._data_keys.shred(erasures(sealed))
        body = {"events": [receipt_json(e, r) for e, r in zip(events, receipts, strict=True)]}
        if idempotency_key is not None:
            await self._keys.complete(idempotency_key, body)
        for event in events:
            EVENTS_ACCEPTED.labels(event.type, channel).inc()
        log.info(
            "events appended",
            extra={
                "channel": channel,
                "subject_ids": sorted({e.subject_id for e in events}),
                "event_ids": [str(e.event_id) for e in events],
            },
        )
        return Accepted(body, replayed=False)

    def _claim(self, key: str, digest: bytes) -> Reserve:
        """Claim the idempotency key inside admission's transaction: its event ids are the ones
        a takeover of an unfinished request must reuse."""

        async def reserve(batch: AdmissionBatch, decision: Decision) -> tuple[list[UUID], datetime]:
            ids, recorded_at = await fresh_ids(batch, decision)
            claim = await batch.claim(key, digest, ids, recorded_at)
            if claim.outcome == "replay":
                assert claim.response is not None
                raise _Replayed(claim.response)
            if claim.outcome == "mismatch":
                raise IdempotencyConflictError(
                    422, "Idempotency-Key was already used for a different request body"
                )
            if claim.outcome == "in_progress":
                raise IdempotencyConflictError(
                    409, "a request with this Idempotency-Key is still in progress; retry later"
                )
            if len(claim.event_ids) != len(ids):  # the batch now brings other derived events
                return ids, recorded_at
            return claim.event_ids, claim.recorded_at or recorded_at

        return reserve
