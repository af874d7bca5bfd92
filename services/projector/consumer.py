"""The projector: consumes the ledger in batches and folds it into PostgreSQL.

Kafka offsets are never committed to Kafka: they are stored by the store in the same
transaction as the rows, and every assigned partition is sought to its stored offset. So a
redelivered batch, a second instance, or a crash at any instant changes nothing. A record that
can never be decoded goes to the dead-letter topic (with its origin and the reason) and its
position is passed; any other failure is retried with backoff, never skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord
from aiokafka.structs import TopicPartition
from pydantic import ValidationError

from events.catalog import AnyEvent
from events.codec import DecodeError, decode_raw
from events.sealing import DataKey, TamperedError, open_event
from projections.state import FOLDED_PERSONAL
from projections.store import PROJECTION, LedgerRecord, SubscriberStore
from services.messaging.appender import Appender
from services.messaging.dead_letters import dead_letter
from services.metrics import (
    DEAD_LETTERS,
    PROJECTION_LAG,
    PROJECTOR_BATCH_RECORDS,
    PROJECTOR_BATCH_SECONDS,
    PROJECTOR_RETRIES,
)
from services.privacy.keystore import KeyRef, KeyStore

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
Record: TypeAlias = ConsumerRecord[bytes, bytes]


def decode_record(record: Record) -> LedgerRecord:
    """A ledger record as the store wants it; raises ``ValueError`` when it is poison."""
    try:
        payload = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise DecodeError("an event must be a JSON object")
    event = decode_raw(payload)  # validates schema_version too
    version = int(payload["schema_version"])
    return LedgerRecord(record.partition, record.offset, event, version, record.value or b"")


def sealed_ref(event: AnyEvent) -> KeyRef | None:
    """Which data key opens the event's personal section, if it has one."""
    return (event.subject_id, event.sealed.key_generation) if event.sealed else None


def opened(record: LedgerRecord, keys: Mapping[KeyRef, DataKey]) -> LedgerRecord:
    """The record with what the fold reads of its personal section opened (the rest stays
    sealed); a destroyed key leaves it empty (erased).
    Raises :class:`TamperedError` when the ciphertext or what it is bound to was changed."""
    ref = sealed_ref(record.event)
    if ref is None or ref not in keys:
        return record
    return replace(record, event=open_event(record.event, keys[ref], FOLDED_PERSONAL))


async def open_all(
    records: Sequence[LedgerRecord], keys: KeyStore
) -> list[LedgerRecord | TamperedError]:
    """Each record opened (one key lookup for all), or why it was refused."""
    refs = {ref for r in records if (ref := sealed_ref(r.event)) is not None}
    found = await keys.find_exact(refs)
    out: list[LedgerRecord | TamperedError] = []
    for record in records:
        try:
            out.append(opened(record, found))
        except TamperedError as exc:
            out.append(exc)
    return out


async def retry_forever(action: Callable[[], Any], what: str) -> Any:
    """Run ``action`` until it succeeds, backing off exponentially between tries."""
    delay = 0.2
    attempt = 1
    while True:
        try:
            return await action()
        except Exception as exc:
            PROJECTOR_RETRIES.inc()
            log.warning(f"{what} failed; retrying", extra={"error": repr(exc), "attempt": attempt})
            await asyncio.sleep(delay)
            delay, attempt = min(delay * 2, MAX_BACKOFF_S), attempt + 1


@dataclass(frozen=True, slots=True)
class Prepared:
    """A consumed batch made ready to write: decoded and opened, its poison dead-lettered."""

    records: Sequence[Record]
    good: Sequence[LedgerRecord]
    consumer: AIOKafkaConsumer | None
    started: float

    def split(self, ways: int) -> list[Prepared]:
        """The batch cut by partition into ``ways`` parts (partition ``p`` goes to part
        ``p % ways``), each in log order."""
        return [
            replace(
                self,
                records=[r for r in self.records if r.partition % ways == part],
                good=[r for r in self.good if r.partition % ways == part],
            )
            for part in range(ways)
        ]


class Projector:
    """Handles consumed batches of ledger records in two stages joined by bounded queues.

    The consumer's handler *prepares* a batch (decode, open, dead-letter the poison) and hands
    it on, cut by partition, to ``writers`` writer tasks; each writes its batches in order, one
    transaction each. So the next batch is decoded while PostgreSQL writes, and one writer folds
    while another waits for PostgreSQL. A person's events share a partition (the key is the
    subject id), so no two writers touch the same subject, and each transaction locks only its
    own partitions' offset rows.

    A handed-on batch is not yet stored, but nothing counts it as done before its transaction
    commits: the offsets that count are the ones that transaction writes, and after a crash the
    batch is read again.
    """

    def __init__(
        self,
        store: SubscriberStore,
        keys: KeyStore,
        dead_letters: Appender,
        dlq_topic: str,
        *,
        writers: int = 2,
        depth: int = 1,
    ) -> None:
        """``depth``: prepared batches that may wait for each writer (memory: one batch each)."""
        self._store = store
        self._keys = keys
        self._dead_letters = dead_letters
        self._dlq_topic = dlq_topic
        self._queues: list[asyncio.Queue[Prepared]] = [
            asyncio.Queue(maxsize=depth) for _ in range(writers)
        ]
        self._writers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._writers = [
            asyncio.create_task(self._write_all(queue), name=f"projector-writer-{n}")
            for n, queue in enumerate(self._queues)
        ]

    async def stop(self) -> None:
        """Write what was handed on (the consumer has stopped by now), then end the writers."""
        if all(not writer.done() for writer in self._writers):
            for queue in self._queues:
                await queue.join()
        for writer in self._writers:
            writer.cancel()
        await asyncio.gather(*self._writers, return_exceptions=True)
        self._writers = []

    async def handle(self, records: Sequence[Record], consumer: AIOKafkaConsumer | None) -> None:
        """Prepare a batch and queue its parts for the writers (waits while a queue is full)."""
        if not self._writers or any(writer.done() for writer in self._writers):
            raise RuntimeError("the projector's writers are not running")
        prepared = await self._prepare(records, consumer)
        for queue, part in zip(self._queues, prepared.split(len(self._queues)), strict=True):
            if part.records:
                await queue.put(part)

    async def _prepare(
        self, records: Sequence[Record], consumer: AIOKafkaConsumer | None
    ) -> Prepared:
        started = time.perf_counter()
        decoded: list[tuple[Record, LedgerRecord]] = []
        poison = []
        for record in records:
            try:
                decoded.append((record, decode_record(record)))
            except (ValueError, ValidationError) as exc:
                poison.append(dead_letter(record, self._dlq_topic, "undecodable_event", str(exc)))
        results = await retry_forever(
            lambda: open_all([r for _, r in decoded], self._keys), "reading data keys"
        )
        good: list[LedgerRecord] = []
        for (record, _), result in zip(decoded, results, strict=True):
            if isinstance(result, TamperedError):
                poison.append(dead_letter(record, self._dlq_topic, "tampered_event", str(result)))
            else:
                good.append(result)
        if poison:
            await retry_forever(lambda: self._dead_letters.append(poison), "dead-lettering")
            DEAD_LETTERS.labels("projector").inc(len(poison))
        return Prepared(records, good, consumer, started)

    async def _write_all(self, queue: asyncio.Queue[Prepared]) -> None:
        while True:
            batch = await queue.get()
            try:
                await self._write(batch)
            finally:
                queue.task_done()

    async def _write(self, batch: Prepared) -> None:
        records = batch.records
        ends = _ends(records)
        result = await retry_forever(
            lambda: self._store.apply(batch.good, ends), "projecting a batch"
        )
        PROJECTOR_BATCH_RECORDS.observe(len(records))
        PROJECTOR_BATCH_SECONDS.observe(time.perf_counter() - batch.started)
        if batch.consumer is not None:
            _record_lag(batch.consumer, records[0].topic, ends)
        log.debug(
            "batch projected",
            extra={"records": len(records), "applied": result.applied, "skipped": result.skipped},
        )


def _ends(records: Sequence[Record]) -> dict[int, int]:
    ends: dict[int, int] = {}
    for record in records:
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    return ends


def _record_lag(consumer: AIOKafkaConsumer, topic: str, ends: dict[int, int]) -> None:
    for partition, end in ends.items():
        last = consumer.last_stable_offset(TopicPartition(topic, partition))
        if last is not None:
            PROJECTION_LAG.labels(PROJECTION, str(partition)).set(max(last - end, 0))


class SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, resume each partition where PostgreSQL says the projection stands."""

    def __init__(
        self, store: SubscriberStore, consumer: Callable[[], AIOKafkaConsumer | None]
    ) -> None:
        self._store = store
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        if not assigned:
            return
        stored = await retry_forever(
            lambda: self._store.claim_partitions(tp.partition for tp in assigned),
            "reading stored offsets",
        )
        consumer = self._consumer()
        if consumer is None:
            return
        for tp in assigned:
            consumer.seek(tp, stored[tp.partition])
        log.info(
            "partitions assigned",
            extra={"partitions": {tp.partition: stored[tp.partition] for tp in assigned}},
        )
