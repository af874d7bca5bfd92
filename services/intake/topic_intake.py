"""The Kafka intake topic: producers that prefer Kafka write submissions here.

Each input batch is admitted and sealed as an HTTP batch is (services/intake/admission.py),
except that a refused record is refused alone. Each input batch becomes one Kafka transaction
holding the valid events (to the ledger), the invalid records (to the dead-letter topic, with the
origin and the reason in headers) and the consumer group's new input offsets. So every input
record is handled exactly once, and a poison record never stops intake. A transient failure
rewinds to the last committed input position and retries with backoff: nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from pydantic import ValidationError

from events.catalog import SUBMISSION_ADAPTER, AnyEvent, AnySubmission
from services.config import Settings
from services.errors import describe
from services.intake.admission import Admission, Admitted
from services.intake.ports import DataKeys
from services.intake.recording import erasures, seal_all
from services.messaging.appender import Appender, ConsumedOffsets
from services.messaging.dead_letters import dead_letter
from services.messaging.recording import to_records
from services.messaging.records import AppendError, OutRecord
from services.messaging.unreachable import failure_reason
from services.metrics import DEAD_LETTERS, EVENTS_ACCEPTED, EVENTS_REJECTED

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


@dataclass(frozen=True, slots=True)
class Translation:
    """The output records of one input batch, and per input record its type and fate."""

    records: list[OutRecord]
    outcomes: list[tuple[str, str | None]]  # (event type, rejection reason or None)
    erasures: list[tuple[str, int, UUID]]  # the data keys the batch's erasures destroy
    admitted: Admitted | None = None  # what admission committed, if any item was valid

    def count(self) -> None:
        """Update the metrics, once the output is committed."""
        for event_type, reason in self.outcomes:
            if reason is None:
                EVENTS_ACCEPTED.labels(event_type, "kafka").inc()
            else:
                EVENTS_REJECTED.labels(event_type, reason, "kafka").inc()
                DEAD_LETTERS.labels("intake").inc()


@dataclass(frozen=True, slots=True)
class Translator:
    """Turns input batches into ledger records through the same admission as HTTP intake;
    only the answer differs: each refused record goes to the dead-letter topic alone."""

    settings: Settings
    admission: Admission
    keys: DataKeys

    async def translate(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> Translation:
        """Ledger or dead-letter records for one input batch, in input order."""
        refused: dict[int, OutRecord] = {}
        outcomes: dict[int, tuple[str, str | None]] = {}
        submissions: dict[int, AnySubmission] = {}
        for index, record in enumerate(records):
            try:
                submissions[index] = SUBMISSION_ADAPTER.validate_json(record.value or b"")
            except ValidationError as exc:
                errors = describe(exc.errors())
                json_error = any(e["type"] == "json_invalid" for e in errors)
                reason = "malformed_json" if json_error else "validation_failed"
                refused[index] = self._dead(record, reason, _text(errors))
                outcomes[index] = (_type_of(record.value), reason)
        order = list(submissions)
        admitted = (
            await self.admission.admit([submissions[i] for i in order], whole=False)
            if order
            else None
        )
        events: dict[int, list[AnyEvent]] = {}
        for item, index in enumerate(order):
            assert admitted is not None
            problems = admitted.decision.refusals(item)
            outcomes[index] = (submissions[index].type, "policy" if problems else None)
            if problems:
                detail = _text([p.as_json() for p in problems])
                refused[index] = self._dead(records[index], "policy", detail)
            else:
                span = admitted.decision.spans[item]
                events[index] = admitted.events[span.start : span.stop]
        subjects = {e.subject_id for batch in events.values() for e in batch}
        current = await self.keys.current(subjects)
        sealed = {index: seal_all(batch, current) for index, batch in events.items()}
        out: list[OutRecord] = []
        for index in range(len(records)):
            if index in refused:
                out.append(refused[index])
            else:
                out.extend(to_records(sealed[index], self.settings.ledger_topic))
        destroyed = [e for batch in sealed.values() for e in erasures(batch)]
        return Translation(out, [outcomes[i] for i in range(len(records))], destroyed, admitted)

    def _dead(self, record: ConsumerRecord[bytes, bytes], reason: str, detail: str) -> OutRecord:
        return dead_letter(record, self.settings.dead_letter_topic, reason, detail)


def _text(errors: list[dict[str, object]]) -> str:
    return "; ".join(f"{e['field'] or '(body)'}: {e['reason']}" for e in errors)


def _type_of(value: bytes | None) -> str:
    try:
        raw = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return "unknown"
    kind = raw.get("type") if isinstance(raw, dict) else None
    return kind if isinstance(kind, str) and len(kind) <= 64 else "unknown"


class TopicIntake:
    """Consumes the intake topic until stopped."""

    def __init__(self, settings: Settings, appender: Appender, translator: Translator) -> None:
        self._settings = settings
        self._appender = appender
        self._translator = translator
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="topic-intake")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            consumer = AIOKafkaConsumer(
                self._settings.intake_topic,
                **self._settings.kafka_options(),
                group_id=self._settings.intake_group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
            )
            try:
                await consumer.start()
                backoff = 0.5
                await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = failure_reason(self._settings, exc)
                log.warning("intake topic consumer failed; retrying", extra={"error": reason})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        backoff = 0.5
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            records = [r for part in batches.values() for r in part]
            if not records:
                continue
            ends = {tp: part[-1].offset + 1 for tp, part in batches.items()}
            translation = await self._translator.translate(records)
            try:
                await self._appender.append(
                    translation.records, ConsumedOffsets(self._settings.intake_group, ends)
                )
            except AppendError as exc:
                log.warning("intake batch not appended; rewinding", extra={"error": str(exc)})
                if translation.admitted is not None:
                    await self._translator.admission.withdraw(translation.admitted)
                for tp, part in batches.items():
                    consumer.seek(tp, part[0].offset)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            translation.count()
            backoff = 0.5
            await self._shred(translation.erasures)

    async def _shred(self, destroyed: list[tuple[str, int, UUID]]) -> None:
        """Destroy the erased subjects' keys at once, as HTTP intake does; if PostgreSQL fails
        now, the projector destroys them when it folds the erasure."""
        try:
            await self._translator.keys.shred(destroyed)
        except Exception as exc:
            log.warning("data keys not destroyed yet", extra={"error": repr(exc)})
