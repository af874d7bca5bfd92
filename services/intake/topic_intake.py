"""The Kafka intake topic: producers that prefer Kafka write submissions here.

Each input batch becomes one Kafka transaction holding the valid events (to the ledger), the
invalid records (to the dead-letter topic, with the origin and the reason in headers) and the
consumer group's new input offsets. So every input record is handled exactly once, and a
poison record never stops intake. A transient failure rewinds to the last committed input
position and retries with backoff: nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from pydantic import ValidationError

from events.catalog import SUBMISSION_ADAPTER
from events.ids import uuid7
from services.config import Settings
from services.errors import describe
from services.intake.policy import LedgerPolicy, PolicyError
from services.intake.recording import materialize, to_records
from services.messaging.appender import Appender, AppendError, ConsumedOffsets, OutRecord
from services.messaging.dead_letters import dead_letter
from services.metrics import DEAD_LETTERS, EVENTS_ACCEPTED, EVENTS_REJECTED

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


@dataclass(frozen=True, slots=True)
class Translation:
    """The output records of one input batch, and per input record its type and fate."""

    records: list[OutRecord]
    outcomes: list[tuple[str, str | None]]  # (event type, rejection reason or None)

    def count(self) -> None:
        """Update the metrics, once the output is committed."""
        for event_type, reason in self.outcomes:
            if reason is None:
                EVENTS_ACCEPTED.labels(event_type, "kafka").inc()
            else:
                EVENTS_REJECTED.labels(event_type, reason, "kafka").inc()
                DEAD_LETTERS.labels("intake").inc()


async def translate(
    records: Sequence[ConsumerRecord[bytes, bytes]], settings: Settings, policy: LedgerPolicy
) -> Translation:
    """Ledger or dead-letter records for one input batch, in input order.

    Each input record is one submission, checked and completed by the same policy as HTTP
    intake; a record the policy refuses is dead-lettered with the reasons.
    """
    out: list[OutRecord] = []
    outcomes: list[tuple[str, str | None]] = []
    recorded_at = datetime.now(UTC)
    for record in records:
        try:
            submission = SUBMISSION_ADAPTER.validate_json(record.value or b"")
            drafts = await policy.prepare([submission])
        except ValidationError as exc:
            errors = describe(exc.errors())
            json_error = any(e["type"] == "json_invalid" for e in errors)
            reason = "malformed_json" if json_error else "validation_failed"
            out.append(dead_letter(record, settings.dead_letter_topic, reason, _text(errors)))
            outcomes.append((_type_of(record.value), reason))
            continue
        except PolicyError as exc:
            detail = _text([p.as_json() for p in exc.problems])
            out.append(dead_letter(record, settings.dead_letter_topic, "policy", detail))
            outcomes.append((submission.type, "policy"))
            continue
        events = materialize(drafts, [uuid7() for _ in drafts], recorded_at)
        out.extend(to_records(events, settings.ledger_topic))
        outcomes.append((submission.type, None))
    return Translation(out, outcomes)


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

    def __init__(self, settings: Settings, appender: Appender, policy: LedgerPolicy) -> None:
        self._settings = settings
        self._appender = appender
        self._policy = policy
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
                log.warning("intake topic consumer failed; retrying", extra={"error": repr(exc)})
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
            translation = await translate(records, self._settings, self._policy)
            try:
                await self._appender.append(
                    translation.records, ConsumedOffsets(self._settings.intake_group, ends)
                )
            except AppendError as exc:
                log.warning("intake batch not appended; rewinding", extra={"error": str(exc)})
                for tp, part in batches.items():
                    consumer.seek(tp, part[0].offset)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            translation.count()
            backoff = 0.5
