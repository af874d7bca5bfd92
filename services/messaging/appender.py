"""Atomic appends to Kafka: every call's records land together or not at all.

Concurrent callers are grouped into one Kafka transaction (group commit), so a burst of single
HTTP requests costs one transaction, not one each. The producer is idempotent and
transactional; a caller hears back only after the transaction committed, that is after the
broker acknowledged every record. When anything fails, the open transaction is dropped with
its producer; the next producer, with the same transactional id, fences it, and the broker
aborts it, so a failed call leaves nothing a ``read_committed`` reader can see.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from services.config import Settings
from services.messaging.producers import started_producer, stop_quietly
from services.messaging.records import AppendError, OutRecord, Receipt
from services.messaging.unreachable import failure_reason
from services.metrics import APPEND_BATCH_RECORDS, APPEND_SECONDS

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConsumedOffsets:
    """Input positions to commit in the same transaction (consume-transform-produce)."""

    group_id: str
    offsets: dict[TopicPartition, int]


@dataclass
class _Job:
    records: Sequence[OutRecord]
    consumed: ConsumedOffsets | None
    done: asyncio.Future[list[Receipt]]


class Appender:
    """Group-committing transactional producer."""

    def __init__(
        self,
        kafka: Mapping[str, Any],
        transactional_id: str,
        *,
        timeout_s: float = 10.0,
        max_records_per_transaction: int = 5000,
        explain: Callable[[Exception], str] = repr,
    ) -> None:
        self._kafka = dict(kafka)
        self._transactional_id = transactional_id
        self._timeout_s = timeout_s
        self._max_records = max_records_per_transaction
        self._explain = explain
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._producer: AIOKafkaProducer | None = None
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the worker; the producer connects on first use (Kafka may be down now)."""
        self._worker = asyncio.create_task(self._run(), name="appender")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        await self._drop_producer()

    async def append(
        self, records: Sequence[OutRecord], consumed: ConsumedOffsets | None = None
    ) -> list[Receipt]:
        """Append all records atomically; raises :class:`AppendError` if none were appended."""
        done: asyncio.Future[list[Receipt]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(records, consumed, done))
        return await asyncio.shield(done)

    async def _run(self) -> None:
        while True:
            jobs = [await self._queue.get()]
            size = len(jobs[0].records)
            while size < self._max_records and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
                size += len(jobs[-1].records)
            await self._commit_jobs(jobs, size)

    async def _commit_jobs(self, jobs: list[_Job], size: int) -> None:
        started = time.perf_counter()
        try:
            receipts = await asyncio.wait_for(self._transaction(jobs), self._timeout_s)
        except Exception as exc:  # every failure means: nothing of these jobs was committed
            log.warning("append failed, dropping the producer", extra={"error": self._explain(exc)})
            await self._drop_producer()
            for job in jobs:
                if not job.done.done():
                    job.done.set_exception(AppendError(f"Kafka did not accept the events: {exc!r}"))
            return
        APPEND_BATCH_RECORDS.observe(size)
        APPEND_SECONDS.observe(time.perf_counter() - started)
        position = 0
        for job in jobs:
            if not job.done.done():
                job.done.set_result(receipts[position : position + len(job.records)])
            position += len(job.records)

    async def _transaction(self, jobs: list[_Job]) -> list[Receipt]:
        producer = await self._ensure_producer()
        await producer.begin_transaction()
        futures = [
            await producer.send(r.topic, value=r.value, key=r.key, headers=r.headers)
            for job in jobs
            for r in job.records
        ]
        for group_id, offsets in _merge_offsets(jobs).items():
            await producer.send_offsets_to_transaction(offsets, group_id)
        await producer.commit_transaction()
        metadata = [await f for f in futures]
        return [Receipt(m.topic, m.partition, m.offset) for m in metadata]

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            self._producer = await started_producer(
                **self._kafka,
                transactional_id=self._transactional_id,
                linger_ms=2,
                request_timeout_ms=int(self._timeout_s * 1000),
                # A transaction left open by a crashed process holds back read_committed
                # readers until the broker aborts it: keep that short.
                transaction_timeout_ms=int(self._timeout_s * 2000),
            )
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        await stop_quietly(producer)


def service_appender(settings: Settings, transactional_id: str) -> Appender:
    """A service's appender: its Kafka settings and produce timeout, and failures logged with
    the settings to check when Kafka refuses it or does not answer."""
    return Appender(
        settings.kafka_options(),
        transactional_id,
        timeout_s=settings.produce_timeout_s,
        explain=partial(failure_reason, settings),
    )


def _merge_offsets(jobs: list[_Job]) -> dict[str, dict[TopicPartition, int]]:
    merged: dict[str, dict[TopicPartition, int]] = {}
    for job in jobs:
        if job.consumed is not None:
            group = merged.setdefault(job.consumed.group_id, {})
            for tp, offset in job.consumed.offsets.items():
                group[tp] = max(group.get(tp, 0), offset)
    return merged
